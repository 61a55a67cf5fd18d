#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, starts the local
# Kubernetes cluster (building it the first time), runs the linters and every test, and stops
# the cluster again if this script started it.
#
#   hack/test.sh                 everything (unit, local runner, integration, e2e)
#   hack/test.sh -m "not e2e"    extra arguments go to pytest
#   CONVEYOR_TEST_NO_CLUSTER=1 hack/test.sh -m "not integration and not e2e"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n== %s\n' "$*"; }

step "python packages"
python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"

step "lint: ruff, mypy, import contracts"
ruff check operator tests bench
ruff format --check operator tests bench
mypy
lint-imports

started_cluster=0
if [ -z "${CONVEYOR_TEST_NO_CLUSTER:-}" ]; then
  if ! hack/cluster.sh status >/dev/null 2>&1; then
    step "local Kubernetes cluster"
    started_cluster=1
    hack/cluster.sh up
  fi
  eval "$(hack/cluster.sh env)"
fi
stop_cluster() {
  if [ "$started_cluster" = 1 ] && [ -z "${CONVEYOR_KEEP_CLUSTER:-}" ]; then
    step "stopping the local cluster"
    hack/cluster.sh down || true
  fi
}
trap stop_cluster EXIT

step "tests"
python3 -m pytest "$@"
