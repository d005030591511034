"""``host.farm`` exports exactly its ``__all__``."""

from __future__ import annotations

import host.farm


def test_all_matches_the_public_names() -> None:
    public = {name for name in vars(host.farm) if not name.startswith("_") and name != "annotations"}
    public -= {"host"}  # submodules imported by the package itself
    assert sorted(host.farm.__all__) == sorted(public)
