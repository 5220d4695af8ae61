#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One place that installs everything edgepack needs on a fresh Debian 12 machine:
# system packages by apt, Python packages by pip into .venv. Safe to run again: it only
# installs what is missing. Used by `make demo`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # native build of the C++ SDK and agent
  build-essential cmake ninja-build pkg-config libssl-dev
  # sanitizers and the libFuzzer targets
  clang libclang-rt-14-dev
  # C/C++ formatting, checked by `make lint` (.clang-format)
  clang-format
  # cross compilers for the ARM boards (aarch64 and 32-bit armhf)
  g++-aarch64-linux-gnu g++-arm-linux-gnueabihf
  # running ARM code without a board
  qemu-user qemu-user-static binfmt-support
  # virtual boards: a real sshd on 127.0.0.1 and pty pairs for serial consoles
  openssh-server openssh-client socat
  # the board-farm tests: a virtual board's console exported over TCP as labgrid expects
  ser2net
  # fetching target-architecture Debian packages for sysroots (apt-get download + dpkg -x)
  dpkg-dev ca-certificates
  # rendering the HTML bench report headless in its test
  chromium
  # the OpenCL backend: ICD loader + headers to build it, PoCL (CPU OpenCL) to test it
  ocl-icd-opencl-dev opencl-c-headers opencl-clhpp-headers pocl-opencl-icd
  # benchmarks/xnnpack_layers.py: Debian's XNNPACK (2022 snapshot) and the pthreadpool header
  libxnnpack-dev libpthreadpool-dev
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Board sysroots come from `apt-get download <pkg>:arm64|armhf` + `dpkg -x` (never installed:
# multiarch installs fail on version skew); apt only needs to know those architectures' lists.
foreign_missing=()
for a in arm64 armhf; do
  dpkg --print-foreign-architectures | grep -qx "$a" || foreign_missing+=("$a")
done
if [ ${#foreign_missing[@]} -gt 0 ]; then
  echo "setup: adding package lists for sysroot architectures: ${foreign_missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  for a in "${foreign_missing[@]}"; do $SUDO dpkg --add-architecture "$a"; done
  $SUDO apt-get update -q || true  # a partial update still serves the packages we download
fi
# binfmt handlers let ARM ELF files run directly (qemu-user-static registers them).
if [ -d /proc/sys/fs/binfmt_misc ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  update-binfmts --enable qemu-arm >/dev/null 2>&1 || true
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.edgepack-setup
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
echo "setup: ok"
