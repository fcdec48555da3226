#!/usr/bin/env bash
# Prepare this checkout on a fresh Debian 12 machine: system packages, the venv, the guest kit.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install system packages" >&2; exit 1; }
  SUDO="sudo"
fi

# Debian packages Ember needs on the host (the guest kit's own are checked by `ember setup`).
PKGS="python3 python3-venv python3-pip qemu-system-x86 qemu-utils busybox-static e2fsprogs cpio mmdebstrap nftables iproute2"
# Headless Chromium drives the web console's end-to-end test (through the playwright package, never its downloads).
PKGS="$PKGS chromium fonts-dejavu-core"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "==> installing Debian packages:$missing"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing Ember and its test dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  rm -f .venv/.installed-*; touch "$stamp"
fi

echo "==> ember setup"
.venv/bin/ember setup
