#!/usr/bin/env bash
# CI: QEMU user-mode emulation for the arm64 emulated core. Installs Debian's qemu-user,
# qemu-user-static, debootstrap and gcc when missing, then prepares the arm64 userland with LiteRT
# once, in $LAB_QEMU_CACHE (default ~/.cache/lab/qemu-arm64: keep that folder between CI runs and a
# later run only checks it). Needs root (or sudo) and the Debian mirror and PyPI.
#   .ci/qemu.sh [PYTHON]    PYTHON: the interpreter with the lab installed (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-.venv/bin/python}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for pair in qemu-aarch64:qemu-user qemu-aarch64-static:qemu-user-static debootstrap:debootstrap gcc:gcc; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

dest="${LAB_QEMU_CACHE:-$HOME/.cache/lab/qemu-arm64}"
echo "== arm64 userland in $dest"
$sudo env "PATH=$PATH" "$python" -m device_agent qemu prepare "$dest"
