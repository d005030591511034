"""HTML from Jinja2 templates (autoescaped: model names, device names and raw outputs are data, never
markup), shared by the site (`lab publish`) and the single-run report (`lab report --format html`)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from host import __version__
from host.bench.stats import Estimate
from host.figures import HEADLINE, label
from host.report import _format as f

__all__ = ["render", "macro", "asset", "standalone_css", "ASSETS", "templates_digest"]

ASSETS = ("site.css", "site.js")
"""Files under ``assets/``, written once per site (each page links them)."""


def asset(name: str) -> str:
    return files("host.publish").joinpath("assets", name).read_text(encoding="utf-8")


def _estimate(value: tuple[float, float, float] | None) -> Estimate | None:
    return Estimate(*value) if value is not None else None


def _when(value: str | datetime) -> str:
    return f.when(datetime.fromisoformat(value) if isinstance(value, str) else value)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("host.publish", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # package files: no stat of each template per page (2,000 pages a site)
    )
    env.filters.update(
        us=f.us,
        ms=f.ms,
        number=f.number,
        size=f.size,
        percent=f.percent,
        when=_when,
        label=label,
        estimate=lambda v, n=None: f.estimate_us(_estimate(v) if isinstance(v, tuple) else v, n),
        ratio=lambda v, n=None: f.ratio(_estimate(v) if isinstance(v, tuple) else v, n),
        short=lambda sha: (sha or "")[:12],
    )
    env.globals.update(version=__version__, headline=label(HEADLINE), DASH=f.DASH, f=f)
    return env


def render(template: str, **context: Any) -> str:
    """The page ``template`` with ``context``; ``root`` is the relative path from the page to the site's top."""
    context.setdefault("root", "")
    context.setdefault("inline_css", None)
    return _environment().get_template(template).render(**context)


def macro(name: str, *args: Any) -> Markup:
    """The macro ``name`` of ``_macros.html`` rendered alone: a part of a page the site keeps between
    publishes instead of rendering it again (a history page's row of a run)."""
    return Markup(getattr(_environment().get_template("_macros.html").module, name)(*args))


def standalone_css() -> Markup:
    """The site's stylesheet, for a page that must stand alone (no other file next to it)."""
    return Markup(asset("site.css"))


def templates_digest() -> str:
    """Changes when a template or asset changes: pages made with other ones are all rewritten."""
    digest = hashlib.sha256()
    for folder in ("templates", "assets"):
        for item in sorted(files("host.publish").joinpath(folder).iterdir(), key=lambda p: p.name):
            digest.update(item.name.encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()[:16]
