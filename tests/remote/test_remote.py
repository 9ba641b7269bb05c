"""`mlspec push` / `pull` against a real registry (docker-registry with htpasswd auth) and a
file:// directory: a fresh clone pulls instead of executing; wrong password, unreachable
registry, deleted manifest and corrupted blob are each a clear error with nothing partial left
in the working tree."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BIN, git, mlspec
from remote_registry import PASSWORD, USER, Registry, free_port, make_repo, running_registry

from mlspec.run.lock import read_lock

SPEC = """
version: 1
project: {{name: store, remote: "{remote}"}}
model:
  steps:
    make:
      command: python src/make.py
      deps: [src/make.py]
      outs: [out/made.txt, out/dir]
    use:
      command: python src/use.py
      deps: [src/use.py, out/made.txt]
      outs: [out/used.txt]
"""
FILES = {
    "src/make.py": """
        import os, pathlib
        open(os.environ["COUNTER"], "a").write("make\\n")
        pathlib.Path("out/made.txt").write_text("made\\n" * 1000)
        d = pathlib.Path("out/dir/sub")
        d.mkdir(parents=True, exist_ok=True)
        (d / "a.bin").write_bytes(bytes(range(256)) * 64)
        (d.parent / "b.txt").write_text("b\\n")
    """,
    "src/use.py": """
        import os, pathlib
        open(os.environ["COUNTER"], "a").write("use\\n")
        n = len(pathlib.Path("out/made.txt").read_text())
        pathlib.Path("out/used.txt").write_text(f"{n}\\n")
    """,
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {"COUNTER": str(tmp / "counter"), "MLSPEC_REGISTRY_USER": USER,
            "MLSPEC_REGISTRY_PASSWORD": PASSWORD, "DOCKER_CONFIG": str(tmp / "nodocker"),
            **extra}


def _count(tmp: Path) -> int:
    c = tmp / "counter"
    return len(c.read_text().splitlines()) if c.exists() else 0


def _origin(tmp: Path, remote: str, env: dict[str, str]) -> Path:
    """A repository whose steps ran and whose mlspec.lock is committed."""
    repo = make_repo(tmp / "origin", SPEC.format(remote=remote), FILES)
    r = mlspec("run", cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "lock", cwd=repo)
    return repo


def _clone(origin: Path, dest: Path) -> Path:
    git("clone", "-q", str(origin), str(dest), cwd=origin.parent)
    return dest


def _lock(repo: Path) -> dict[str, dict[str, dict[str, object]]]:
    lock = read_lock(repo)
    assert lock is not None
    return {"steps": {n: e.to_data() for n, e in lock.steps.items()}}


def _no_traceback(r: object) -> None:
    assert "Traceback" not in r.stderr + r.stdout  # type: ignore[attr-defined]


def _untouched(repo: Path) -> None:
    """No out and no temporary file anywhere in the working tree (outside .mlspec)."""
    left = [str(p.relative_to(repo)) for p in repo.rglob("*")
            if ".git" not in p.parts and ".mlspec" not in p.parts
            and not p.is_dir() and p.relative_to(repo).parts[0] not in ("src",)
            and p.name not in ("mlspec.yaml", "mlspec.lock", ".gitignore")]
    assert left == [], left


def _push(repo: Path, env: dict[str, str], *steps: str) -> None:
    r = mlspec("push", *steps, cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_push_then_a_fresh_clone_pulls_and_runs_nothing(registry: Registry,
                                                         tmp_path: Path) -> None:
    env = _env(tmp_path)
    origin = _origin(tmp_path, f"oci://{registry.host}/t1/store", env)
    assert _count(tmp_path) == 2
    r = mlspec("push", cwd=origin, env=env)
    assert r.returncode == 0, r.stderr
    assert "pushed make" in r.stdout and "pushed use" in r.stdout
    again = mlspec("push", "--json", cwd=origin, env=env)
    assert json.loads(again.stdout)["present"] == ["make", "use"]

    clone = _clone(origin, tmp_path / "clone")
    st = mlspec("status", cwd=clone, env=env)
    assert "make: stale — available in the remote" in st.stdout, st.stdout
    r = mlspec("pull", cwd=clone, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "restored make" in r.stdout and "restored use" in r.stdout
    assert (clone / "out/dir/sub/a.bin").read_bytes() == bytes(range(256)) * 64
    st = mlspec("status", cwd=clone, env=env)
    assert "everything is up to date" in st.stdout, st.stdout
    run = mlspec("run", cwd=clone, env=env)
    assert run.returncode == 0 and "ran 0" in run.stdout, run.stdout + run.stderr
    assert _count(tmp_path) == 2  # nothing executed in the clone

    # the manifest: an OCI artifact with the mlspec annotations, tagged by the step key
    lock = _lock(origin)
    key = lock["steps"]["make"]["key"]
    code, _, body = registry.request(
        "GET", f"/v2/t1/store/manifests/{key.replace(':', '-')}",
        {"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert code == 200
    manifest = json.loads(body)
    assert manifest["artifactType"] == "application/vnd.mlspec.step-run.v1+json"
    assert manifest["annotations"]["dev.mlspec.step"] == "make"
    assert manifest["annotations"]["dev.mlspec.commit"] == git("rev-parse", "HEAD", cwd=origin)
    assert [la["annotations"]["org.opencontainers.image.title"] for la in manifest["layers"]] \
        == ["out/dir", "out/made.txt"]


def test_run_pulls_before_executing_unless_no_pull(registry: Registry, tmp_path: Path) -> None:
    env = _env(tmp_path)
    origin = _origin(tmp_path, f"oci://{registry.host}/t2/store", env)
    _push(origin, env)
    clone = _clone(origin, tmp_path / "clone")
    r = mlspec("run", cwd=clone, env=env)
    assert r.returncode == 0, r.stderr
    assert "restored 2" in r.stdout, r.stdout
    assert _count(tmp_path) == 2
    other = _clone(origin, tmp_path / "other")
    r = mlspec("run", "--no-pull", cwd=other, env=env)
    assert r.returncode == 0, r.stderr
    assert _count(tmp_path) == 4  # executed both steps


def test_wrong_password_is_an_auth_error(registry: Registry, tmp_path: Path) -> None:
    env = _env(tmp_path)
    origin = _origin(tmp_path, f"oci://{registry.host}/t3/store", env)
    _push(origin, env)
    clone = _clone(origin, tmp_path / "clone")
    bad = {**env, "MLSPEC_REGISTRY_PASSWORD": "wrong"}
    r = mlspec("pull", cwd=clone, env=bad)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "remote.auth" in r.stderr and "refused the credentials" in r.stderr
    _no_traceback(r)
    _untouched(clone)
    # no credentials at all: said as such; docker's config.json auths are read
    none = {k: v for k, v in env.items() if not k.startswith("MLSPEC_REGISTRY")}
    r = mlspec("push", cwd=origin, env=none)
    assert r.returncode == 3 and "none are set" in r.stderr, r.stderr
    cfg = tmp_path / "docker"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"auths": {registry.host: {
        "auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}))
    r = mlspec("pull", cwd=clone, env={**none, "DOCKER_CONFIG": str(cfg)})
    assert r.returncode == 0 and "restored make" in r.stdout, r.stdout + r.stderr


# A credential helper as the docker CLI runs one (the helper protocol: `get`, the server on
# stdin, {"Username", "Secret"} on stdout, "credentials not found" and exit 1 when it has none).
# A stand-in: the real helpers (pass, secretservice, osxkeychain) need a keyring.
HELPER = """#!/bin/sh
[ "$1" = get ] || exit 2
read -r host
printf '%s\\n' "$host" >> "$HELPER_LOG"
if [ "$host" = "$KNOWN_HOST" ]; then
  printf '{"ServerURL": "%s", "Username": "%s", "Secret": "%s"}' \\
    "$host" "$HELPER_USER" "$HELPER_SECRET"
else
  echo "credentials not found in native keychain"; exit 1
fi
"""


def test_docker_credential_helpers_are_run(registry: Registry, tmp_path: Path) -> None:
    env = _env(tmp_path)
    origin = _origin(tmp_path, f"oci://{registry.host}/t3h/store", env)
    _push(origin, env)
    clone = _clone(origin, tmp_path / "clone")
    bin_dir, cfg, log = tmp_path / "bin", tmp_path / "docker", tmp_path / "helper.log"
    bin_dir.mkdir()
    cfg.mkdir()
    for name in ("mlspectest", "mlspecstore"):
        exe = bin_dir / f"docker-credential-{name}"
        exe.write_text(HELPER)
        exe.chmod(0o755)
    base = {k: v for k, v in env.items() if not k.startswith("MLSPEC_REGISTRY")}
    helper_env = {**base, "DOCKER_CONFIG": str(cfg), "HELPER_LOG": str(log),
                  "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                  "KNOWN_HOST": registry.host, "HELPER_USER": USER, "HELPER_SECRET": PASSWORD}

    def pull(config: dict[str, object], **extra: str) -> subprocess.CompletedProcess[str]:
        (cfg / "config.json").write_text(json.dumps(config))
        for done in ("out", ".mlspec"):  # nothing restored yet, not even in the local cache
            shutil.rmtree(clone / done, ignore_errors=True)
        return mlspec("pull", "make", cwd=clone, env={**helper_env, **extra})

    # the host's helper (credHelpers) wins over the default store (credsStore)
    r = pull({"credHelpers": {registry.host: "mlspectest"}, "credsStore": "nosuchstore"})
    assert r.returncode == 0 and "restored make" in r.stdout, r.stdout + r.stderr
    assert log.read_text().splitlines() == [registry.host]  # the server, on stdin
    # the default store, for a host without its own helper
    r = pull({"credsStore": "mlspecstore"})
    assert r.returncode == 0 and "restored make" in r.stdout, r.stdout + r.stderr
    assert len(log.read_text().splitlines()) == 2
    # a helper that has nothing for this host: the auths entry is used
    r = pull({"credsStore": "mlspecstore", "auths": {registry.host: {"auth": base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode()}}}, KNOWN_HOST="other.example")
    assert r.returncode == 0 and "restored make" in r.stdout, r.stdout + r.stderr
    assert len(log.read_text().splitlines()) == 3
    # a helper with wrong credentials is refused like a wrong password; a missing one is named
    r = pull({"credsStore": "mlspecstore"}, HELPER_SECRET="wrong")
    assert r.returncode == 3 and "refused the credentials" in r.stderr, r.stderr
    r = pull({"credHelpers": {registry.host: "nosuchhelper"}})
    assert r.returncode == 3 and "remote.auth" in r.stderr, r.stderr
    assert "docker-credential-nosuchhelper is not on PATH" in r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    _no_traceback(r)


def test_unreachable_registry(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = make_repo(tmp_path / "repo", SPEC.format(
        remote=f"oci://127.0.0.1:{free_port()}/t/store"), FILES)
    r = mlspec("pull", cwd=repo, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "remote.unreachable" in r.stderr
    _no_traceback(r)
    # run goes on without the remote: says so once, executes the steps
    r = mlspec("run", cwd=repo, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("remote.unreachable") == 1 and _count(tmp_path) == 2


def test_deleted_manifest_is_not_in_the_remote(registry: Registry, tmp_path: Path) -> None:
    env = _env(tmp_path)
    origin = _origin(tmp_path, f"oci://{registry.host}/t4/store", env)
    _push(origin, env)
    key = _lock(origin)["steps"]["make"]["key"]
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    code, headers, _ = registry.request(
        "HEAD", f"/v2/t4/store/manifests/{key.replace(':', '-')}", accept)
    assert code == 200
    digest = {k.lower(): v for k, v in headers.items()}["docker-content-digest"]
    assert registry.request("DELETE", f"/v2/t4/store/manifests/{digest}")[0] == 202
    clone = _clone(origin, tmp_path / "clone")
    r = mlspec("pull", cwd=clone, env=env)
    assert r.returncode == 0, r.stderr
    assert "make: stale and not in the remote" in r.stdout
    r = mlspec("pull", "make", cwd=clone, env=env)
    assert r.returncode == 1 and "remote.missing" in r.stderr, r.stderr
    _untouched(clone)


def test_corrupted_blob_is_refused(registry: Registry, tmp_path: Path) -> None:
    env = _env(tmp_path)
    origin = _origin(tmp_path, f"oci://{registry.host}/t5/store", env)
    _push(origin, env)
    lock = _lock(origin)
    blob = registry.blob_file(lock["steps"]["make"]["outs"]["out/made.txt"])
    data = blob.read_bytes()
    blob.write_bytes(data.replace(b"made", b"evil"))  # same size, other content
    clone = _clone(origin, tmp_path / "clone")
    r = mlspec("pull", cwd=clone, env=env)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "remote.corrupt" in r.stderr and "out/made.txt" in r.stderr
    _no_traceback(r)
    _untouched(clone)
    # `run` does not trust it either: it executes the steps
    r = mlspec("run", cwd=clone, env=env)
    assert r.returncode == 0 and "remote.corrupt" in r.stderr, r.stderr
    assert (clone / "out/made.txt").read_text() == "made\n" * 1000


def test_file_remote_and_a_truncated_blob(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    env = _env(tmp_path, MLSPEC_REMOTE=f"file://{store}")
    origin = _origin(tmp_path, "oci://unused.example/x/y", env)
    _push(origin, env)
    clone = _clone(origin, tmp_path / "clone")
    r = mlspec("pull", cwd=clone, env=env)
    assert r.returncode == 0 and "restored use" in r.stdout, r.stdout + r.stderr
    assert mlspec("run", cwd=clone, env=env).returncode == 0 and _count(tmp_path) == 2
    # a truncated blob in the store: refused, nothing lands
    lock = _lock(origin)
    blob = store / "blobs/sha256" / lock["steps"]["use"]["outs"]["out/used.txt"].split(":")[1]
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-1])
    fresh = _clone(origin, tmp_path / "fresh")
    r = mlspec("pull", "use", cwd=fresh, env=env)
    assert r.returncode == 4 and "remote.corrupt" in r.stderr, r.stdout + r.stderr
    assert not (fresh / "out/used.txt").exists()


def test_bad_remote_is_a_located_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", SPEC.format(remote="oci://user:pw@ghcr.io/a/b"), FILES)
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 2 and "spec.remote" in r.stderr and "mlspec.yaml:2" in r.stderr, \
        r.stderr
    good = make_repo(tmp_path / "good", SPEC.format(remote="file:///nowhere"), FILES)
    r = mlspec("pull", cwd=good, env={"MLSPEC_REMOTE": "http://example.com/x"})
    assert r.returncode == 2 and "remote.url" in r.stderr, r.stderr
    r = mlspec("pull", cwd=good, env={"MLSPEC_REMOTE": ""})
    assert r.returncode == 2 and "remote.none" in r.stderr, r.stderr


def test_two_clones_push_the_same_run_at_once(registry: Registry, tmp_path: Path) -> None:
    env = _env(tmp_path)
    origin = _origin(tmp_path, f"oci://{registry.host}/t6/store", env)
    clones = [_clone(origin, tmp_path / f"c{i}") for i in range(2)]
    for c in clones:
        assert mlspec("pull", cwd=c, env={**env, "MLSPEC_REMOTE": ""}).returncode == 2
        assert mlspec("run", cwd=c, env={**env, "MLSPEC_REMOTE": ""}).returncode == 0
    procs = [subprocess.Popen([str(BIN / "mlspec"), "push"], cwd=c, env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in clones]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    code, _, body = registry.request("GET", "/v2/t6/store/tags/list")
    assert code == 200
    lock = _lock(origin)
    assert sorted(json.loads(body)["tags"]) == sorted(
        e["key"].replace(":", "-") for e in lock["steps"].values())


def test_chunked_upload_and_streamed_download(registry: Registry, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Blobs over MONOLITHIC_MAX go up in PATCH chunks (small sizes here, same code path)."""
    import hashlib

    from mlspec.remote import oci
    from mlspec.remote.url import parse

    monkeypatch.setattr(oci, "MONOLITHIC_MAX", 1000)
    monkeypatch.setattr(oci, "CHUNK_BYTES", 1500)
    monkeypatch.setenv("MLSPEC_REGISTRY_USER", USER)
    monkeypatch.setenv("MLSPEC_REGISTRY_PASSWORD", PASSWORD)
    data = os.urandom(4000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (tmp_path / "blob").write_bytes(data)
    reg = oci.Registry(parse(f"oci://{registry.host}/t7/store"), push=True)
    assert not reg.has_blob(digest)
    reg.put_blob(tmp_path / "blob", digest, len(data))
    assert reg.has_blob(digest)
    assert reg.get_blob(digest, tmp_path / "back") == digest
    assert (tmp_path / "back").read_bytes() == data
    # a download cut at max_size hashes to something else: the caller refuses it
    assert reg.get_blob(digest, tmp_path / "cut", max_size=100) != digest
    # a wrong digest at the end of an upload is refused by the registry
    wrong = "sha256:" + "0" * 64
    with pytest.raises(oci.RemoteError) as err:
        reg.put_blob(tmp_path / "blob", wrong, len(data))
    assert err.value.rule == "remote.corrupt"


def test_bearer_token_flow(tmp_path: Path) -> None:
    """A registry with token auth (as ghcr.io, GitLab, Docker Hub): the 401's Bearer challenge
    sends mlspec to the realm for a token; a wrong password is refused there."""
    from remote_registry import token_registry

    (tmp_path / "reg").mkdir()
    with token_registry(tmp_path / "reg") as reg:
        env = _env(tmp_path)
        origin = _origin(tmp_path, f"oci://{reg.host}/tok/store", env)
        _push(origin, env)
        clone = _clone(origin, tmp_path / "clone")
        bad = mlspec("pull", cwd=clone, env={**env, "MLSPEC_REGISTRY_PASSWORD": "nope"})
        assert bad.returncode == 3 and "remote.auth" in bad.stderr, bad.stderr
        _untouched(clone)
        r = mlspec("pull", cwd=clone, env=env)
        assert r.returncode == 0 and "restored use" in r.stdout, r.stdout + r.stderr
