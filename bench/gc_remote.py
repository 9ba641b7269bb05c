"""Time `mlspec gc --remote` over a remote holding N step runs, of which the lock keeps K.

A throw-away Debian `docker-registry` (deletes enabled, no auth, storage in a temporary
directory) on a free 127.0.0.1 port, or a file:// directory (`--store file`); N synthetic step
runs pushed through mlspec's own Store (a distinct 1 KiB record and a 64 KiB layer each, plus
one 64 KiB layer every run shares); a one-commit git repository whose mlspec.lock names K of
the keys. Prints the wall time of the dry run (`--json`) and of the delete, and what they
reported.

Usage: .venv/bin/python bench/gc_remote.py [--tags 500] [--keep 50] [--store registry|file]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from mlspec.remote.transfer import MANIFEST_TYPE, STEP_RUN, open_store
from mlspec.remote.url import parse
from mlspec.run.lock import Lock, StepLock

BIN = Path(sys.executable).parent


def start_registry(tmp: Path) -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp / "storage").mkdir()
    (tmp / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp / 'storage'}}}, "
        "delete: {enabled: true}}\n"
        f'http: {{addr: "127.0.0.1:{port}"}}\n')
    proc = subprocess.Popen(["docker-registry", "serve", str(tmp / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host = f"127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(100):
        try:
            with opener.open(f"http://{host}/v2/", timeout=5):
                return host, proc
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("docker-registry did not start")


def put(store: object, tmp: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = tmp / "blob"
    path.write_bytes(data)
    store.put_blob(path, digest, len(data))  # type: ignore[attr-defined]
    return digest, len(data)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tags", type=int, default=500)
    ap.add_argument("--keep", type=int, default=50)
    ap.add_argument("--store", choices=["registry", "file"], default="registry")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gc-bench-"))
    proc = None
    try:
        if args.store == "registry":
            host, proc = start_registry(tmp)
            remote = f"oci://{host}/bench/store"
        else:
            (tmp / "store").mkdir()
            remote = f"file://{tmp / 'store'}"
        store = open_store(parse(remote), push=True)
        shared = put(store, tmp, b"s" * 65536)
        keys = []
        t = time.perf_counter()
        for i in range(args.tags):
            key = "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
            keys.append(key)
            config = put(store, tmp, json.dumps({"key": key, "pad": "x" * 1000}).encode())
            layer = put(store, tmp, i.to_bytes(4, "big") * 16384)
            store.put_manifest(key.replace(":", "-"), json.dumps({
                "schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": STEP_RUN,
                "config": {"mediaType": STEP_RUN, "digest": config[0], "size": config[1]},
                "layers": [{"mediaType": "application/octet-stream", "digest": d, "size": n}
                           for d, n in (layer, shared)],
                "annotations": {"dev.mlspec.step": "train", "dev.mlspec.commit": "a" * 40}
            }).encode())
        print(f"pushed {args.tags} runs in {time.perf_counter() - t:.1f} s ({args.store})")
        repo = tmp / "repo"
        repo.mkdir()
        (repo / "mlspec.yaml").write_text(
            f'version: 1\nproject: {{name: bench, remote: "{remote}"}}\n'
            "model:\n  steps:\n    train: {command: python t.py}\n")
        (repo / "mlspec.lock").write_text(Lock(steps={
            f"s{i}": StepLock(key=k, command="x") for i, k in enumerate(keys[:args.keep])
        }).dump())
        env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
               "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
        for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "x"]):
            subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
        for extra in ([], ["--yes"]):
            t = time.perf_counter()
            r = subprocess.run([str(BIN / "mlspec"), "gc", "--remote", "--json", *extra],
                               cwd=repo, capture_output=True, text=True, env=env)
            took = time.perf_counter() - t
            if r.returncode != 0:
                print(r.stdout, r.stderr)
                return 1
            data = json.loads(r.stdout)
            print(f"gc --remote {' '.join(extra) or '(dry run)'}: {took:.2f} s, "
                  f"{len(data['runs'])} runs, {data['bytes']} bytes, kept {data['kept_runs']}")
        print(f"left: {len(store.tags())} tags")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
