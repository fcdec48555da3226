#!/usr/bin/env bash
# Run Ember's whole test suite on this machine: set-up, lint, unit tests, then tests with real VMs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

echo "==> ruff"
.venv/bin/ruff check ember tests bench

status=0
echo "==> unit tests"
.venv/bin/pytest tests/unit -q "$@" || status=$?
echo "==> tests with real VMs"
.venv/bin/pytest tests/vm -q -m vm "$@" || status=$?
echo "==> end-to-end tests (ember serve, boto3, CLI)"
.venv/bin/pytest tests/e2e -q -m vm "$@" || status=$?
echo "==> tenant-boundary suite (each attack refused, and succeeding with its protection off)"
.venv/bin/pytest tests/security -q -m vm "$@" || status=$?
exit $status
