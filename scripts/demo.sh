#!/usr/bin/env bash
# Set this machine up (packages, venv, guest kit) and run Ember's demo: a VM serving HTTP,
# snapshotted, cloned, suspended and resumed, with the time each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/ember demo "$@"
