"""`lab publish` at scale: a store of 1,000 runs × 2 models × 2 devices (synthetic trials, 3 per model ×
device), published from scratch, then again after one new run; the site's size; the index page's
load time in headless Chromium from file://.

    .venv/bin/python benchmarks/publish_site.py                  # 1,000 runs
    .venv/bin/python benchmarks/publish_site.py --runs 200 --keep /tmp/site

Targets: full build ≤ 10 s, incremental ≤ 1 s, site ≤ 20 MB (shared assets counted once; the
publish state under .lab-publish/ not counted), index load ≤ 1 s. Needs chromium and
chromium-driver (Debian) and selenium for the load time. Each time is printed with the CPU time
the publish used: on a shared machine the wall time follows the others' load, the CPU time less so.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for its tests' synthetic trials
from host.publish import STATE_DIR, publish  # noqa: E402
from host.store import open_store  # noqa: E402
from tests.host.synthetic import add_synthetic_run  # noqa: E402

TRIALS = 3


def _size(site: Path) -> int:
    files = (p for p in site.rglob("*") if p.is_file() and STATE_DIR not in p.relative_to(site).parts)
    return sum(p.stat().st_size for p in files)


def _index_load_s(index: Path, repeats: int = 5) -> float:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    try:
        times = []
        for _ in range(repeats):
            driver.get("about:blank")
            driver.get(index.as_uri())
            timing = driver.execute_script(
                "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime"
            )
            times.append(timing / 1000)
        return sorted(times)[len(times) // 2]
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="Write the site here (kept) instead of a temporary folder.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = args.keep or Path(tmp) / "site"
        with open_store(f"sqlite:///{Path(tmp) / 'lab.db'}") as store:
            start = time.perf_counter()
            for i in range(args.runs):
                add_synthetic_run(store, trials=TRIALS, seed=i, slowdown=1.0 + (0.2 if i == args.runs - 1 else 0.0))
            print(f"store: {args.runs} runs × 2 models × 2 devices × {TRIALS} trials, filled in "
                  f"{time.perf_counter() - start:.1f} s")  # fmt: skip
            start, cpu = time.perf_counter(), time.process_time()
            full = publish(store, site)
            full_s, full_cpu = time.perf_counter() - start, time.process_time() - cpu
            add_synthetic_run(store, trials=TRIALS, seed=args.runs)
            start, cpu = time.perf_counter(), time.process_time()
            incremental = publish(store, site)
            incremental_s, incremental_cpu = time.perf_counter() - start, time.process_time() - cpu
        size = _size(site)
        print(f"full build:  {full_s:6.2f} s  (CPU {full_cpu:.2f} s; {full.written} files)        target ≤ 10 s")
        print(f"incremental: {incremental_s:6.2f} s  (CPU {incremental_cpu:.2f} s; {incremental.written} written, "
              f"{incremental.unchanged} unchanged)   target ≤ 1 s")  # fmt: skip
        print(f"site size:   {size / 1e6:6.2f} MB                                 target ≤ 20 MB")
        print(f"index load:  {_index_load_s(site / 'index.html'):6.3f} s (headless chromium, file://)    target ≤ 1 s")


if __name__ == "__main__":
    main()
