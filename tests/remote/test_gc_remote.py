"""`mlspec gc --remote` against a real registry (docker-registry, htpasswd, deletes enabled) and
a file:// directory: a repository with a release tag and five commits, each commit's run
pushed. With `--keep-last 2` the runs of the two middle commits are unreferenced: the dry run
lists exactly those and deletes nothing; `--yes` deletes them and keeps the release's and the
recent commits' (a fresh clone at the release tag still pulls); tags that are not step runs
are untouched; a registry with deletes disabled is `remote.delete-disabled`, exit 3."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import git, mlspec, tool
from remote_registry import PASSWORD, USER, Registry, make_repo, running_registry

from mlspec.remote.retention import parse
from mlspec.remote.transfer import MANIFEST_TYPE, STEP_RUN, open_store
from mlspec.remote.url import parse as parse_remote

SPEC = """
version: 1
project: {{name: store, remote: "{remote}"}}
model:
  steps:
    make:
      command: python src/make.py
      deps: [src/make.py]
      outs: [out/made.txt, out/same.txt]
"""
MAKE = """
import pathlib
VERSION = {v}
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/made.txt").write_text(f"version {{VERSION}}\\n" * 4000)
pathlib.Path("out/same.txt").write_text("shared by every run\\n" * 100)
"""
OTHER_BLOB = b'{"monitor": "record"}'


def _env(tmp: Path) -> dict[str, str]:
    return {"MLSPEC_REGISTRY_USER": USER, "MLSPEC_REGISTRY_PASSWORD": PASSWORD,
            "DOCKER_CONFIG": str(tmp / "nodocker")}


def _ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return r


def _history(tmp: Path, remote: str, env: dict[str, str]) -> tuple[Path, list[str], dict[int, str]]:
    """origin: 5 commits on main, each changing make.py, running, committing the lock and
    pushing; v1.0.0 (annotated) on the first. (origin, commit shas, key by commit index)."""
    repo = make_repo(tmp / "origin", SPEC.format(remote=remote),
                     {"src/make.py": MAKE.format(v=0)})
    shas: list[str] = []
    keys: dict[int, str] = {}
    for v in range(1, 6):
        (repo / "src/make.py").write_text(MAKE.format(v=v))
        _ok(mlspec("run", cwd=repo, env=env))
        git("add", "-A", cwd=repo)
        git("commit", "-q", "-m", f"version {v}", cwd=repo)
        _ok(mlspec("push", cwd=repo, env=env))
        shas.append(git("rev-parse", "HEAD", cwd=repo))
        keys[v - 1] = json.loads(_ok(mlspec("status", "--json", cwd=repo, env=env)).stdout
                                 )["steps"]["make"]["key"]
        if v == 1:
            git("tag", "-a", "v1.0.0", "-m", "release", cwd=repo)
    return repo, shas, keys


def _other_tags(store: object, tmp: Path) -> list[str]:
    """A production monitor's record and an OCI referrers-index-shaped `sha256-…` tag: neither
    is a step run."""
    blob = tmp / "other.json"
    blob.write_bytes(OTHER_BLOB)
    digest = "sha256:" + hashlib.sha256(OTHER_BLOB).hexdigest()
    store.put_blob(blob, digest, len(OTHER_BLOB))  # type: ignore[attr-defined]
    tags = ["monitor-v1.0.0-1", "sha256-" + "e" * 64]
    for i, tag in enumerate(tags):
        store.put_manifest(tag, json.dumps({  # type: ignore[attr-defined]
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.example.monitor+json", "digest": digest,
                       "size": len(OTHER_BLOB)}, "layers": [],
            "annotations": {"n": str(i)}}).encode())
    return tags


def _flow(tmp: Path, remote: str, env: dict[str, str]) -> tuple[object, dict[int, str], list[str]]:
    """The shared scenario up to the delete: history pushed, other tags put, dry run checked.
    (store, keys by commit index, the other tags)."""
    origin, shas, keys = _history(tmp, remote, env)
    store = open_store(parse_remote(remote), push=True)
    others = _other_tags(store, tmp)
    before = store.tags()
    assert len(before) == 7
    dry = _ok(mlspec("gc", "--remote", "--keep-last", "2", "--json", cwd=origin, env=env))
    data = json.loads(dry.stdout)
    assert data["deleted"] is False
    assert sorted(r["key"] for r in data["runs"]) == sorted([keys[1], keys[2]])
    assert {r["commit"] for r in data["runs"]} == {shas[1], shas[2]}
    assert data["kept_runs"] == 3 and data["other_tags"] == 2
    assert data["history"]["branch"] == "main" and data["history"]["tags"] == ["v1.0.0"]
    # freed: each run's manifest and made.txt (16 KiB + the record); same.txt is shared
    assert 2 * 4000 * len("version 2\n") < data["bytes"] < 2 * 4000 * len("version 2\n") + 8192
    assert store.tags() == before  # a dry run deletes nothing
    text = _ok(mlspec("gc", "--remote", "--keep-last", "2", cwd=origin, env=env)).stdout
    assert "would delete 2 step run(s)" in text and "2 other tag(s) left alone" in text, text
    assert shas[1][:12] in text and shas[2][:12] in text and shas[3][:12] not in text
    # a clone has origin/main: that is the branch read
    clone = tmp / "clone"
    git("clone", "-q", str(origin), str(clone), cwd=tmp)
    r = _ok(mlspec("gc", "--remote", "--keep-last", "2", "--json", cwd=clone, env=env))
    assert json.loads(r.stdout)["history"]["branch"] == "origin/main"
    assert json.loads(r.stdout)["runs"] == data["runs"]
    deleted = _ok(mlspec("gc", "--remote", "--keep-last", "2", "--yes", "--json", cwd=origin,
                         env=env))
    after = json.loads(deleted.stdout)
    assert after["deleted"] is True and all(r["removed"] for r in after["runs"])
    assert sorted(store.tags()) == sorted(set(before) - {k.replace(":", "-") for k in
                                                         (keys[1], keys[2])})
    assert set(others) <= set(store.tags())
    again = json.loads(_ok(mlspec("gc", "--remote", "--keep-last", "2", "--json", cwd=origin,
                                  env=env)).stdout)
    assert again["runs"] == [] and again["kept_runs"] == 3
    # the release's run: a fresh clone at the tag pulls it; a deleted commit's run is gone
    rel = tmp / "release"
    git("clone", "-q", "--branch", "v1.0.0", str(origin), str(rel), cwd=tmp)
    r = _ok(mlspec("pull", cwd=rel, env=env))
    assert "restored make" in r.stdout, r.stdout
    assert (rel / "out/made.txt").read_text() == "version 1\n" * 4000
    old = tmp / "old"
    git("clone", "-q", str(origin), str(old), cwd=tmp)
    git("checkout", "-q", shas[1], cwd=old)
    r = mlspec("pull", "make", cwd=old, env=env)
    assert r.returncode == 1 and "not in the remote: make" in r.stderr, r.stdout + r.stderr
    return store, keys, others


def test_file_remote(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    _flow(tmp_path, f"file://{root}", _env(tmp_path))
    blobs = sorted(p.stat().st_size for p in (root / "blobs" / "sha256").iterdir())
    # left: the record and made.txt of the 3 kept runs, same.txt once, the monitor's blob
    assert len(blobs) == 3 * 2 + 1 + 1, blobs
    assert blobs.count(4000 * len("version 1\n")) == 3


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's own reads and writes of the registry (open_store) log in too."""
    monkeypatch.setenv("MLSPEC_REGISTRY_USER", USER)
    monkeypatch.setenv("MLSPEC_REGISTRY_PASSWORD", PASSWORD)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    (tmp_path / "reg").mkdir()
    with running_registry(tmp_path / "reg") as reg:
        yield reg


def _disk(registry: Registry) -> int:
    blobs = registry.storage / "docker" / "registry" / "v2" / "blobs"
    return sum(p.stat().st_size for p in blobs.rglob("data"))


def test_registry_remote_and_its_garbage_collection(registry: Registry, tmp_path: Path
                                                    ) -> None:
    env = _env(tmp_path)
    remote = f"oci://{registry.host}/gc/store"
    _flow(tmp_path, remote, env)
    gone = [registry.blob_file(_made(v)) for v in (2, 3)]
    kept = [registry.blob_file(_made(v)) for v in (1, 4, 5)]
    assert all(f.is_file() for f in gone + kept)  # deleting manifests frees no blob yet
    before = _disk(registry)
    r = subprocess.run([tool("docker-registry"), "garbage-collect",
                        str(tmp_path / "reg" / "config.yml")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    freed = before - _disk(registry)
    assert freed >= 2 * 4000 * len("version 2\n"), (before, freed)
    assert all(f.is_file() for f in kept) and not any(f.exists() for f in gone)
    # still pullable after the collection: the release's run
    rel = tmp_path / "release2"
    git("clone", "-q", "--branch", "v1.0.0", str(tmp_path / "origin"), str(rel), cwd=tmp_path)
    assert "restored make" in _ok(mlspec("pull", cwd=rel, env=env)).stdout
    print(f"registry garbage-collect freed {freed} bytes on disk")


def _made(v: int) -> str:
    """The digest of out/made.txt's layer (the file itself) in version v's run."""
    return "sha256:" + hashlib.sha256((f"version {v}\n" * 4000).encode()).hexdigest()


def test_registry_without_deletes(tmp_path: Path) -> None:
    (tmp_path / "reg").mkdir()
    env = _env(tmp_path)
    with running_registry(tmp_path / "reg", delete=False) as reg:
        origin, _, _ = _history(tmp_path, f"oci://{reg.host}/nodel/store", env)
        dry = _ok(mlspec("gc", "--remote", "--keep-last", "1", cwd=origin, env=env))
        assert "would delete 3 step run(s)" in dry.stdout, dry.stdout
        r = mlspec("gc", "--remote", "--keep-last", "1", "--yes", cwd=origin, env=env)
        assert r.returncode == 3, r.stdout + r.stderr
        assert "remote.delete-disabled" in r.stderr and "storage: {delete:" in r.stderr
        assert "Traceback" not in r.stderr + r.stdout
        assert len(open_store(parse_remote(f"oci://{reg.host}/nodel/store")).tags()) == 5


def test_history_that_cannot_say_what_to_keep(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    env = _env(tmp_path)
    origin, _, _ = _history(tmp_path, f"file://{root}", env)
    shallow = tmp_path / "shallow"
    git("clone", "-q", "--depth", "1", f"file://{origin}", str(shallow), cwd=tmp_path)
    r = mlspec("gc", "--remote", cwd=shallow, env=env)
    assert r.returncode == 2 and "gc.history" in r.stderr and "shallow" in r.stderr, r.stderr
    git("branch", "-q", "-m", "main", "work", cwd=origin)
    r = mlspec("gc", "--remote", "--yes", cwd=origin, env=env)
    assert r.returncode == 2 and "'main' is not in this clone" in r.stderr, r.stderr
    r = mlspec("gc", "--keep-last", "3", cwd=origin, env=env)
    assert r.returncode == 2 and "apply to --remote" in r.stderr, r.stderr
    assert len(list((root / "manifests").glob("*.json"))) == 5  # tags (by digest: sha256/)


def test_hostile_manifests_are_left_alone() -> None:
    good = {"schemaVersion": 2, "config": {"mediaType": STEP_RUN, "digest": "sha256:" + "a" * 64,
                                           "size": 5},
            "layers": [{"digest": "sha256:" + "b" * 64, "size": 7}],
            "annotations": {"dev.mlspec.step": "train", "dev.mlspec.commit": "c" * 40}}
    m = parse("t", json.dumps(good).encode())
    assert m.step_run and m.blobs == {"sha256:" + "a" * 64: 5, "sha256:" + "b" * 64: 7}
    assert (m.step, m.commit) == ("train", "c" * 40)
    hostile = [b"not json", b"[]", b"{}", json.dumps({**good, "layers": [{"digest": "x",
                                                                         "size": 1}]}).encode(),
               json.dumps({**good, "layers": [{"digest": "sha256:" + "b" * 64,
                                               "size": -1}]}).encode(),
               json.dumps({**good, "layers": [{"digest": "sha256:" + "b" * 64,
                                               "size": True}]}).encode(),
               b"[" * 100000]
    for body in hostile:
        assert parse("t", body).blobs is None, body[:40]
    odd = parse("t", json.dumps({**good, "annotations": {
        "dev.mlspec.step": "\x1b[31mred", "dev.mlspec.commit": "$(rm -rf ~)"}}).encode())
    assert (odd.step, odd.commit) == ("?", "")


def test_token_registry_grants_delete_only_when_asked(tmp_path: Path) -> None:
    """Bearer auth: the token asks for the delete action only when gc deletes; a token
    without it is refused by the registry (remote.auth), one with it deletes."""
    from remote_registry import token_registry

    from mlspec.remote.errors import RemoteError

    with token_registry(tmp_path, delete=True) as reg:
        remote = parse_remote(f"oci://{reg.host}/tok/store")
        writer = open_store(remote, push=True)
        blob = tmp_path / "rec"
        blob.write_bytes(OTHER_BLOB)
        digest = "sha256:" + hashlib.sha256(OTHER_BLOB).hexdigest()
        writer.put_blob(blob, digest, len(OTHER_BLOB))
        body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                           "config": {"mediaType": STEP_RUN, "digest": digest,
                                      "size": len(OTHER_BLOB)}, "layers": []}).encode()
        tag = "sha256-" + "f" * 64
        writer.put_manifest(tag, body)
        m = parse(tag, body)
        with pytest.raises(RemoteError) as err:
            open_store(remote).delete_manifest(tag, m.digest)
        assert err.value.rule == "remote.auth", err.value.message
        assert open_store(remote, delete=True).delete_manifest(tag, m.digest) is True
        assert open_store(remote).tags() == []
        assert open_store(remote, delete=True).delete_manifest(tag, m.digest) is False


def test_a_manifest_too_big_to_read_is_left_alone(tmp_path: Path) -> None:
    from mlspec.remote.retention import plan

    root = tmp_path / "store"
    (root / "manifests").mkdir(parents=True)
    remote = parse_remote(f"file://{root}")
    store = open_store(remote, push=True)
    body = json.dumps({"schemaVersion": 2, "config": {
        "mediaType": STEP_RUN, "digest": "sha256:" + "a" * 64, "size": 3}, "layers": []})
    store.put_manifest("sha256-" + "1" * 64, body.encode())
    (root / "manifests" / ("sha256-" + "2" * 64 + ".json")).write_bytes(b" " * (5 << 20))
    p = plan(store, remote, set())
    assert [m.tag for m in p.drop] == ["sha256-" + "1" * 64] and p.other == 1
    assert not p.blobs_known and "not a readable step run" in p.notes[0]
