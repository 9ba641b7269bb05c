#!/usr/bin/env bash
# The two commands of the README:
#   ./dev.sh demo   set up, then run mlspec's main job (validate, run, gates, report) on examples/iris
#   ./dev.sh test   set up, then lint, type-check and run the test suite
#   ./dev.sh setup  only set up (.venv with mlspec and the dev tools)
# Needs only Python 3.11 (with venv) and git. Tests that need Docker, act or gitlab-ci-local skip
# when those are missing (and fail under CI, where .ci/run installs them).
#
# Setup installs mlspec (editable, with the dev extra) into .venv once, then only when
# pyproject.toml or the interpreter changes: .venv/.dev-stamp holds the hash it was installed
# from. pip's output goes to .venv/pip.log and is shown only when the install fails.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
STAMP=.venv/.dev-stamp
LOG=.venv/pip.log

say() { printf 'dev.sh: %s\n' "$*" >&2; }

stamp() {
  # what the install depends on: pyproject.toml and the interpreter's version
  .venv/bin/python - <<'EOF'
import hashlib, sys
h = hashlib.sha256(open("pyproject.toml", "rb").read())
h.update(sys.version.encode())
print(h.hexdigest())
EOF
}

pip_quiet() {
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check "$@" >>"$LOG" 2>&1; then
    say "pip install $* failed; its output:"
    cat "$LOG" >&2
    exit 1
  fi
}

setup() {
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $("$PY" --version 2>&1)"
    if ! "$PY" -m venv .venv; then
      say "python's venv module is missing: on Debian/Ubuntu, apt-get install python3-venv"
      exit 1
    fi
  fi
  if [ -f "$STAMP" ] && [ -x .venv/bin/mlspec ] && [ "$(cat "$STAMP")" = "$(stamp)" ]; then
    return 0  # installed from this pyproject.toml already: nothing to do
  fi
  : >"$LOG"
  local started=$SECONDS
  say "installing mlspec and its dev tools into .venv (first time: about a minute)..."
  pip_quiet --upgrade pip
  pip_quiet -e ".[dev]"
  stamp >"$STAMP"
  say "installed in $((SECONDS - started)) s (next runs skip this until pyproject.toml changes)"
}

case "${1:-}" in
  setup)
    setup
    ;;
  demo)
    setup
    cd examples/iris
    say "mlspec validate"
    ../../.venv/bin/mlspec validate
    say "mlspec graph"
    ../../.venv/bin/mlspec graph
    say "mlspec run (the first run trains every step; later runs skip what is up to date)"
    ../../.venv/bin/mlspec run
    say "mlspec status"
    ../../.venv/bin/mlspec status
    ;;
  test)
    setup
    say "ruff"
    .venv/bin/ruff check .
    say "mypy"
    .venv/bin/mypy
    shift
    say "pytest $*"
    .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh setup|demo|test [pytest args]" >&2
    exit 2
    ;;
esac
