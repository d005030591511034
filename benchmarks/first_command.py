"""The README's first command on a fresh machine: wall time to the table, download size, then a cached run.

    .venv/bin/python benchmarks/first_command.py                  # lab run, fresh caches, then cached
    .venv/bin/python benchmarks/first_command.py --with-install   # also: venv + pip install -e '.[build]', clean pip cache
    .venv/bin/python benchmarks/first_command.py --user labtest   # as that (unprivileged) user; needs root

"Fresh" is a new HOME (so pip's cache and the arm64 userland's ``~/.cache/lab/qemu-arm64`` start
empty), a new LAB_HOME (the models are built) and a private adb server with nothing attached; the
command is the README's ``lab run --quick --dataset synthetic``, in a fresh process as a user runs
it. The second run reuses everything. Downloads: the userland's own count (``userland.json``:
Debian's index and packages, the wheels), and with ``--with-install`` pip's wheel cache.
Targets (issue 20): the first run to the table ≤ 150 s, the cached one ≤ 45 s. The load average
before and after is printed: on a shared machine other work slows both runs.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMAND = ["run", "--quick", "--dataset", "synthetic"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) if folder.exists() else 0


def _timed(argv: list[str], env: dict[str, str], user: pwd.struct_passwd | None, cwd: Path) -> tuple[float, str, str]:
    switch = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, **switch)  # type: ignore[call-overload]
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-install", action="store_true", help="also time a fresh venv and pip install -e '.[build]'")
    parser.add_argument("--user", help="run as this user (the script must run as root)")
    parser.add_argument("--show", action="store_true", help="print the first run's table")
    options = parser.parse_args()
    user = pwd.getpwnam(options.user) if options.user else None
    adb = __import__("adbutils").adb_path()
    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="lab-first-command-", dir="/tmp"))
    if user:
        os.chown(home, user.pw_uid, user.pw_gid)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "XDG_", "PIP_"))}
    env.update(HOME=str(home), LAB_HOME=str(home / "lab"), ANDROID_ADB_SERVER_PORT=str(port))
    subprocess.run([adb, "-P", str(port), "start-server"], env={**env, "ADB_EMU": "0", "ADB_MDNS": "0"}, check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)  # fmt: skip
    load_before = os.getloadavg()
    try:
        python = sys.executable
        if options.with_install:
            venv = home / "venv"
            install = f"{sys.executable} -m venv {venv} && {venv}/bin/pip install -q -e '{REPO}[build]'"
            seconds, _, _ = _timed(["bash", "-c", install], env, user, REPO)
            pip_cache = _size(home / ".cache" / "pip")
            print(f"install: venv + pip install -e '.[build]' with a clean pip cache: {seconds:.0f} s, pip downloaded ≈ {pip_cache / 1e6:.0f} MB")
            python = str(venv / "bin" / "python")
        lab = [python, "-m", "host.cli", *COMMAND]
        first, out, err = _timed(lab, env, user, REPO)
        info = json.loads((home / ".cache" / "lab" / "qemu-arm64" / "userland.json").read_text())
        second, out2, _ = _timed(lab, env, user, REPO)
    finally:
        subprocess.run([adb, "-P", str(port), "kill-server"], capture_output=True, stdin=subprocess.DEVNULL)
        load_after = os.getloadavg()
        shutil.rmtree(home, ignore_errors=True)
    devices = out.count("(emulated):")
    print(f"lab {' '.join(COMMAND)}   ({os.cpu_count()} CPUs, as {options.user or pwd.getpwuid(os.getuid()).pw_name})")
    print(
        f"  first run  (clean pip cache, clean userland cache, models built): {first:6.1f} s to the table, "
        f"{devices} devices; the arm64 userland took {info['prepare_seconds']} s, downloaded {info['downloaded_mb']} MB, "
        f"{info['size_mb']} MB on disk; instruction counts: {'yes' if info.get('plugin_error') is None else 'no'}"
    )
    print(f"  second run (everything cached):                                 {second:6.1f} s to the table")
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    print(f"  targets: first ≤ 150 s -> {'met' if first <= 150 else 'MISSED'}; cached ≤ 45 s -> {'met' if second <= 45 else 'MISSED'}")
    finding = next((line for line in out2.splitlines() if line.startswith("finding:")), None)
    if finding:
        print(f"  {finding}")
    if options.show:
        print(out)
        print(err[-2000:], file=sys.stderr)


if __name__ == "__main__":
    main()
