"""The published site in headless Chromium from file://: real `lab bench` runs on an emulated device
(and a failed one), a synthetic store for a regression and a hostile model name, and a 404-free
site after an incremental publish."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from host.cli.main import app
from host.publish import publish
from host.store import Store
from tests.host.publish.conftest import open_page
from tests.host.synthetic import add_synthetic_run, emulated_device, model_file

pytestmark = pytest.mark.browser

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"
SCRIPT_NAME = "<script>alert(1)</script>.tflite"


def _pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def _check_every_page(driver: Any, site: Path) -> None:
    """Each page loads without console errors or failed requests, and each link it holds is a file."""
    for page in _pages(site):
        open_page(driver, page)
        links = driver.execute_script(
            "return [...document.querySelectorAll('a[href], link[href], script[src]')]"
            ".map(e => new URL(e.getAttribute('href') || e.getAttribute('src'), document.baseURI).href)"
        )
        for link in links:
            assert link.startswith("file://"), f"{page.relative_to(site)} links outside the site: {link}"
            target = Path(unquote(link.removeprefix("file://").split("#")[0]))
            assert target.is_file(), f"{page.relative_to(site)} links to a missing {target}"


def _bench(home: Path, serial: str, *models: str) -> int:
    args = ["--home", str(home), "bench", *(str(MODELS / m) for m in models), "--device", serial,
            "--trials", "2", "--runs", "20", "--warmup", "2"]  # fmt: skip
    return CliRunner().invoke(app, args).exit_code


def test_site_of_real_runs(browser: Any, adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    home, site = tmp_path / "home", tmp_path / "site"
    assert _bench(home, emulated_device.serial, "add.tflite", "conv.tflite") == 0, emulated_device.log_text()
    assert _bench(home, emulated_device.serial, "add.tflite", "conv.tflite") == 0
    assert _bench(home, emulated_device.serial, "flex.tflite") != 0  # every trial fails: a failed run
    runner = CliRunner()
    assert runner.invoke(app, ["--home", str(home), "publish", str(site)]).exit_code == 0
    _check_every_page(browser, site)

    (history,) = [p for p in (site / "history").glob("add--*.html")]
    open_page(browser, history)
    dots = browser.execute_script("return [...document.querySelectorAll('svg.chart circle')].map(c => c.dataset.run)")
    rows = browser.execute_script("return [...document.querySelectorAll('table.history tr[data-run]')].length")
    assert len(dots) == len(set(dots)) == rows == 2  # one point per stored run

    open_page(browser, site / "runs" / "3.html")  # the failed run: its trials and why they failed
    trials = browser.find_element("css selector", "table.trials").text
    assert "failed" in trials and "Select TensorFlow op" in trials
    open_page(browser, site / "runs" / "1.html")
    details = browser.find_element("css selector", "details.raw")
    details.find_element("tag name", "summary").click()
    pre = details.find_element("tag name", "pre")
    browser.implicitly_wait(0)
    for _ in range(50):
        if pre.text:
            break
        browser.execute_script("return new Promise(r => setTimeout(r, 100))")
    assert "count=20" in pre.text  # the raw output, unpacked in the browser

    assert _bench(home, emulated_device.serial, "add.tflite", "conv.tflite") == 0
    before = {p: p.read_bytes() for p in _pages(site)}
    assert runner.invoke(app, ["--home", str(home), "publish", str(site)]).exit_code == 0
    rewritten = {p.relative_to(site).as_posix() for p in _pages(site) if before.get(p) != p.read_bytes()}
    assert {"runs/4.html", "compare/4.html", "index.html"} <= rewritten
    assert not any(p.startswith("runs/") and p != "runs/4.html" for p in rewritten)
    _check_every_page(browser, site)


def test_regression_and_hostile_names(browser: Any, store: Store, tmp_path: Path) -> None:
    site = tmp_path / "site"
    for seed in range(3):
        add_synthetic_run(store, trials=3, seed=seed)
    slow = add_synthetic_run(store, trials=3, seed=3, slowdown=1.2)
    add_synthetic_run(store, trials=2, seed=4, models=(model_file(SCRIPT_NAME, None),), devices=(emulated_device(),))
    publish(store, site)
    _check_every_page(browser, site)

    open_page(browser, site / "index.html")
    flagged = browser.find_elements("css selector", "td.grid.flagged")
    assert len(flagged) == 4 and all("REGRESSION" in cell.text for cell in flagged)
    assert SCRIPT_NAME in browser.find_element("css selector", "table.grid").text  # shown as text
    scripts = browser.execute_script("return [...document.scripts].map(s => s.src.split('/').pop())")
    assert scripts == ["site.js"]  # the name added no script element, so nothing ran
    open_page(browser, site / "compare" / f"{slow}.html")
    rows = browser.find_elements("css selector", "table.compare tr.flagged")
    assert len(rows) >= 4 and any("1.2" in r.text for r in rows)
    for page in (site / "history").glob("script-alert*.html"):
        open_page(browser, page)
        assert browser.find_element("tag name", "h1").text.startswith(SCRIPT_NAME)
