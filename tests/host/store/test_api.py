"""The public surfaces of host.store and host.report: __all__ is exactly what the packages export
(``dir()`` counts the names they load on first use, PEP 562)."""

from __future__ import annotations

import importlib
import types

import pytest


@pytest.mark.parametrize("name", ["host.store", "host.report"])
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        attr
        for attr in dir(module)
        if not attr.startswith("_") and not isinstance(getattr(module, attr), types.ModuleType) and attr != "annotations"
    }
    assert set(module.__all__) == public
    for attr in module.__all__:
        assert getattr(module, attr) is not None
