"""`lab publish`: a static results site from the store (index, history, runs, comparisons), viewable
from ``file://`` or any static host, and its live server.

    with open_store(url) as store:
        counts = publish(store, Path("site"), SiteFilter(model="dense"))
"""

from __future__ import annotations

from host.publish.site import SiteFilter, publish
from host.publish.writer import STATE_DIR, WriteCounts

__all__ = ["publish", "SiteFilter", "WriteCounts", "STATE_DIR"]
