"""``python -m device_agent qemu {prepare,bench,info}``: the arm64 userland from the command line.

    python -m device_agent qemu prepare [DIR] [--mirror URL]
    python -m device_agent qemu bench [--dir DIR] [--cpu CPU] [--no-count] -- --graph=m.tflite [FLAGS...]
    python -m device_agent qemu info [DIR]

DIR defaults to $LAB_QEMU_CACHE, else ~/.cache/lab/qemu-arm64. Exit status: 0 done; 1 an error
(one line on stderr); 2 bad usage; ``bench`` returns the runner's own status.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from device_agent.qemu.cpus import CPUS, DEFAULT_CPU
from device_agent.qemu.errors import QemuError
from device_agent.qemu.bootstrap import prepare
from device_agent.qemu.userland import default_dest, require_userland

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m device_agent qemu",
        description="An arm64 userland with LiteRT under QEMU user-mode emulation, with instruction counts.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dest_help = "the userland's folder (default: $LAB_QEMU_CACHE or ~/.cache/lab/qemu-arm64)"
    prep = commands.add_parser(
        "prepare", help="build the userland (idempotent; no root: Debian packages and PyPI wheels, ≈ 95 MB)"
    )
    prep.add_argument("dest", nargs="?", type=Path, help=dest_help)
    prep.add_argument("--mirror", help="Debian mirror (default: $LAB_DEBIAN_MIRROR or https://deb.debian.org/debian)")
    bench = commands.add_parser("bench", help="run `python -m device_agent bench` inside the userland under QEMU")
    bench.add_argument("--dir", dest="dest", type=Path, help=dest_help)
    bench.add_argument("--cpu", default=DEFAULT_CPU, choices=list(CPUS), help=f"emulated core (default {DEFAULT_CPU})")
    bench.add_argument("--no-count", action="store_true", help="no instruction counting (no plugin)")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="benchmark_model flags, after --")
    info = commands.add_parser("info", help="print the userland's userland.json")
    info.add_argument("dest", nargs="?", type=Path, help=dest_help)
    return parser


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    dest = args.dest or default_dest()
    try:
        if args.command == "prepare":
            userland = prepare(dest, mirror=args.mirror)
            print(userland.root)
            return 0
        userland = require_userland(dest)
        if args.command == "info":
            print(json.dumps(dict(userland.info), indent=2))
            return 0
        flags = args.args[1:] if args.args[:1] == ["--"] else args.args
        command, env = userland.bench_command(flags, cpu=args.cpu, count_instructions=not args.no_count)
        return subprocess.run(command, env={**os.environ, **env}, check=False).returncode
    except QemuError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
