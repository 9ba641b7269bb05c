#!/usr/bin/env bash
# The two commands of the README:
#   ./dev.sh demo   set up, then run mlspec's main job (validate, run, gates, report) on examples/iris
#   ./dev.sh test   set up, then lint, type-check and run the test suite
# Needs only Python 3.11 (with venv) and git. Tests that need Docker, act or gitlab-ci-local skip
# when those are missing (and fail under CI, where .ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

setup() {
  if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
}

case "${1:-}" in
  demo)
    setup
    cd examples/iris
    ../../.venv/bin/mlspec validate
    ../../.venv/bin/mlspec graph
    ../../.venv/bin/mlspec run
    ../../.venv/bin/mlspec status
    ;;
  test)
    setup
    .venv/bin/ruff check .
    .venv/bin/mypy
    shift
    .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo|test [pytest args]" >&2
    exit 2
    ;;
esac
