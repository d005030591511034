"""A store per test (the reports' fixtures), and a headless Chromium driven by Selenium for the browser tests.

Chromium and its driver come from Debian (``apt-get install -y chromium chromium-driver``); Selenium
is given both paths, so it never downloads a browser or a driver. Without them the browser tests
skip saying how to install them, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.host.report.conftest import db_url, store

__all__ = ["db_url", "store", "open_page"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
_INSTALL = "apt-get install -y chromium chromium-driver && .venv/bin/pip install -e '.[test]'"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() or shutil.which(Path(path).name)):
            return f"{path} is missing"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium that logs console messages and network events."""
    missing = _missing()
    if missing is not None:
        message = f"browser tests need Chromium and Selenium ({missing}): {_INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).is_file() else str(shutil.which("chromium"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).is_file() else str(shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: Any, path: Path) -> None:
    """Loads ``path`` from file:// and fails on any console error or failed request it caused."""
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, f"{path.name}: console errors {errors}"
    failed = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.loadingFailed":
            failed.append(message["params"])
        elif message["method"] == "Network.responseReceived" and message["params"]["response"].get("status", 200) >= 400:
            failed.append(message["params"]["response"]["url"])
    assert not failed, f"{path.name}: failed requests {failed}"
