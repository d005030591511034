"""`lab publish --serve`: the site over HTTP, brought up to date on request when the store changed."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from host.errors import UsageError

__all__ = ["make_server", "LOOPBACK"]

LOOPBACK = "127.0.0.1"
_MIN_CHECK_INTERVAL_S = 1.0  # a page and its assets arrive together: look at the store once for them


class _Refresher:
    """Calls ``refresh`` before serving a page, at most once a second, one request at a time."""

    def __init__(self, refresh: Callable[[], None]) -> None:
        self._refresh = refresh
        self._lock = threading.Lock()
        self._last = 0.0

    def __call__(self) -> None:
        with self._lock:
            if time.monotonic() - self._last >= _MIN_CHECK_INTERVAL_S:
                self._refresh()
                self._last = time.monotonic()


class _Handler(SimpleHTTPRequestHandler):
    refresher: _Refresher

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.endswith((".html", "/")):
            self.refresher()
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a request log per asset would drown the one line that says where the site is


def make_server(root: Path, host: str, port: int, refresh: Callable[[], None]) -> ThreadingHTTPServer:
    """A server of ``root`` on ``host``:``port`` (0: a free port) that calls ``refresh`` before pages.

    Raises:
        UsageError: the port is in use, or the address cannot be bound.
    """
    handler = type("Handler", (_Handler,), {"refresher": _Refresher(refresh)})
    try:
        return ThreadingHTTPServer((host, port), partial(handler, directory=str(root)))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use: pick another with --port") from None
        raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
