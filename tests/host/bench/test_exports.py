"""The public surface of host.bench and host.devices is what their ``__all__`` says (``dir()``
counts the names a package loads on first use, as host.bench does for its runner)."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["host.bench", "host.devices"])
def test_all_matches_the_exports(name: str) -> None:
    package = importlib.import_module(name)
    public = {
        attr
        for attr in dir(package)
        if not attr.startswith("_")
        and not isinstance(getattr(package, attr), type(importlib))
        and attr != "annotations"
    }
    assert set(package.__all__) == public
    for attr in package.__all__:
        assert getattr(package, attr) is not None
