#!/usr/bin/env bash
# CI: the arm64 emulated device, prepared the way a user's first `lab run` prepares it — without
# root and without system packages: QEMU user-mode and a Debian arm64 userland are downloaded from
# the Debian mirror's index and unpacked, LiteRT's aarch64 wheels come from PyPI (about 95 MB; see
# device_agent/qemu/bootstrap.py). It goes to $LAB_QEMU_CACHE (default ~/.cache/lab/qemu-arm64: keep
# that folder between CI runs and a later run only checks it).
# The instruction-counting plugin needs a C compiler; as root this installs gcc when none is there
# (optional: without one the arm64 device runs and says that it counts no instructions).
#   .ci/qemu.sh [PYTHON]    PYTHON: the interpreter with the lab installed (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-.venv/bin/python}"

if ! command -v cc >/dev/null && ! command -v gcc >/dev/null && ! command -v clang >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "== installing gcc (the QEMU instruction-counting plugin is built with it)"
    apt-get update -qq && env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null || echo "== no gcc: instruction counts will be unavailable"
fi

dest="${LAB_QEMU_CACHE:-$HOME/.cache/lab/qemu-arm64}"
echo "== arm64 userland in $dest"
"$python" -m device_agent qemu prepare "$dest"
