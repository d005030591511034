"""``python -m device_agent {emulator,bench,facts} ...``"""

from __future__ import annotations

import sys

USAGE = """usage: python -m device_agent COMMAND [ARGS]

commands:
  emulator   serve an emulated Android device over the ADB device protocol
  bench      benchmark a .tflite model with LiteRT + XNNPACK (benchmark_model's flags and output)
  facts      print this machine's CPU, frequencies, thermal zones and memory
  qemu       arm64 userland under QEMU: prepare [DIR], bench, info
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "emulator":
        from device_agent.emulator.server import main as run
    elif command == "bench":
        from device_agent.bench import main as run
    elif command == "facts":
        from device_agent.facts import main as run
    elif command == "qemu":
        from device_agent.qemu import main as run
    else:
        print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr, end="")
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
