#!/usr/bin/env bash
# Node tools and services for the end-to-end tests (sourced by .ci/run; safe to rerun by hand).
set -euo pipefail
echo "== services"

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
  python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:5000/v2/", timeout=2)' \
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
