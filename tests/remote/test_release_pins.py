"""Promotion without retraining (issue 13): `mlspec release` pins every step run of the lock
by manifest digest in the tag; `mlspec pull --release TAG` in a fresh clone at the tag restores
exactly those (status clean, `mlspec run` executes nothing); a tampered tag, a manifest deleted
from the registry and an unreachable remote are each a clear error — against the real
docker-registry (htpasswd) and a file:// store."""

from __future__ import annotations

import hashlib
import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import git, mlspec, tool
from remote_registry import PASSWORD, USER, Registry, free_port, make_repo, running_registry

SPEC = """
version: 1
project: {{name: promo, remote: "{remote}"}}
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
        pathlib.Path("out").mkdir(exist_ok=True)
        pathlib.Path("out/made.txt").write_text("made\\n" * 100)
        d = pathlib.Path("out/dir")
        d.mkdir(parents=True, exist_ok=True)
        (d / "a.bin").write_bytes(bytes(range(256)))
    """,
    "src/use.py": """
        import os, pathlib
        open(os.environ["COUNTER"], "a").write("use\\n")
        n = len(pathlib.Path("out/made.txt").read_text())
        pathlib.Path("out/used.txt").write_text(f"{n}\\n")
    """,
}
MANIFEST = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


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


def _released(tmp: Path, remote: str, env: dict[str, str], version: str = "1.0.0") -> Path:
    """A repository whose steps ran, lock committed, released (the release pushes the runs)."""
    repo = make_repo(tmp / "origin", SPEC.format(remote=remote), FILES)
    r = mlspec("run", cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "lock", cwd=repo)
    r = mlspec("release", version, cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pinned 2 step runs" in r.stdout, r.stdout
    return repo


def _message(repo: Path, tag: str) -> str:
    return git("cat-file", "tag", tag, cwd=repo).partition("\n\n")[2]


def _pins(repo: Path, tag: str) -> dict[str, dict[str, str]]:
    r = mlspec("lineage", tag, "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["pins"]["runs"]  # type: ignore[no-any-return]


def _at_tag(origin: Path, dest: Path, tag: str) -> Path:
    git("clone", "-q", str(origin), str(dest), cwd=origin.parent)
    git("checkout", "-q", tag, cwd=dest)
    return dest


def _retag(repo: Path, tag: str, message: str) -> None:
    msg = repo.parent / f"{tag}.msg"
    msg.write_text(message)
    git("tag", "-a", "--cleanup=verbatim", "-F", str(msg), tag, "HEAD", cwd=repo)


def _no_outs(repo: Path) -> None:
    assert not (repo / "out").exists() or not any((repo / "out").rglob("*"))


def test_release_pins_and_a_clone_at_the_tag_pulls_exactly_those(registry: Registry,
                                                                    tmp_path: Path) -> None:
    env = _env(tmp_path)
    origin = _released(tmp_path, f"oci://{registry.host}/p1/promo", env)
    assert _count(tmp_path) == 2
    pins = _pins(origin, "v1.0.0")
    lock = json.loads(mlspec("lineage", "v1.0.0", "--json", cwd=origin).stdout)["steps"]
    for step in ("make", "use"):
        key = lock[step]["key"]
        assert pins[step]["key"] == key
        # the pinned digest is the registry's own digest of the run's manifest
        code, headers, body = registry.request(
            "GET", f"/v2/p1/promo/manifests/{key.replace(':', '-')}", MANIFEST)
        assert code == 200
        got = {k.lower(): v for k, v in headers.items()}["docker-content-digest"]
        assert pins[step]["digest"] == got == "sha256:" + hashlib.sha256(body).hexdigest()
    message = _message(origin, "v1.0.0")
    assert "## Pinned runs" in message and "<!-- mlspec:pinned-runs v1" in message
    card = mlspec("lineage", "v1.0.0", "--model-card", cwd=origin).stdout
    assert pins["make"]["digest"] in card and "mlspec pull --release v1.0.0" in card
    text = mlspec("lineage", "1.0.0", cwd=origin).stdout
    assert f"run  {pins['use']['digest']}  (pinned manifest)" in text, text
    models = json.loads(mlspec("models", "--json", cwd=origin).stdout)
    assert models[0]["pins"]["runs"] == pins
    assert "make@sha256:" in mlspec("models", cwd=origin).stdout

    clone = _at_tag(origin, tmp_path / "clone", "v1.0.0")
    r = mlspec("pull", "--release", "v1.0.0", "--json", cwd=clone, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["restored"] == ["make", "use"]
    assert (clone / "out/dir/a.bin").read_bytes() == bytes(range(256))
    st = mlspec("status", cwd=clone, env=env)
    assert "everything is up to date" in st.stdout, st.stdout
    run = mlspec("run", cwd=clone, env=env)
    assert run.returncode == 0 and "ran 0" in run.stdout, run.stdout + run.stderr
    assert _count(tmp_path) == 2  # the clone executed no step


def test_tag_moved_in_the_registry_still_pulls_the_pinned_manifest(registry: Registry,
                                                                      tmp_path: Path) -> None:
    """The key's tag is mutable; the release pulls by digest, not by the tag."""
    env = _env(tmp_path)
    origin = _released(tmp_path, f"oci://{registry.host}/p2/promo", env)
    pins = _pins(origin, "v1.0.0")
    key = pins["make"]["key"].replace(":", "-")
    # point the key's tag at another (valid) manifest: the one of step `use`
    _, _, other = registry.request("GET", f"/v2/p2/promo/manifests/{pins['use']['digest']}",
                                   MANIFEST)
    import urllib.request

    req = urllib.request.Request(f"http://{registry.host}/v2/p2/promo/manifests/{key}",
                                 data=other, method="PUT", headers={
                                     "Content-Type": MANIFEST["Accept"],
                                     "Authorization": _basic()})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        assert resp.status == 201
    # the pinned manifest is still tagged (pin-<release>-<step>), so the registry's own
    # collection of untagged manifests keeps it
    code, _, body = registry.request("GET", "/v2/p2/promo/tags/list")
    assert code == 200 and {"pin-v1.0.0-make", "pin-v1.0.0-use"} <= set(
        json.loads(body)["tags"]), body
    r = subprocess.run([tool("docker-registry"), "garbage-collect", "--delete-untagged",
                        str(registry.storage.parent / "config.yml")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    clone = _at_tag(origin, tmp_path / "clone", "v1.0.0")
    r = mlspec("pull", "--release", "v1.0.0", cwd=clone, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (clone / "out/made.txt").read_text() == "made\n" * 100


def _basic() -> str:
    import base64

    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def test_deleted_manifest_gives_remote_missing(registry: Registry, tmp_path: Path) -> None:
    env = _env(tmp_path)
    origin = _released(tmp_path, f"oci://{registry.host}/p3/promo", env)
    digest = _pins(origin, "v1.0.0")["make"]["digest"]
    assert registry.request("DELETE", f"/v2/p3/promo/manifests/{digest}")[0] == 202
    clone = _at_tag(origin, tmp_path / "clone", "v1.0.0")
    r = mlspec("pull", "--release", "v1.0.0", cwd=clone, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "remote.missing" in r.stderr and digest[:19] in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    _no_outs(clone)


def test_release_refuses_an_unreachable_remote_and_makes_no_tag(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = make_repo(tmp_path / "origin", SPEC.format(
        remote=f"oci://127.0.0.1:{free_port()}/x/promo"), FILES)
    assert mlspec("run", "--no-pull", cwd=repo, env=env).returncode == 0
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "lock", cwd=repo)
    r = mlspec("release", "1.0.0", cwd=repo, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "remote.unreachable" in r.stderr and "no tag created: v1.0.0" in r.stdout
    assert git("tag", "--list", cwd=repo) == ""


def test_file_remote_pins_and_tampered_tags_are_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    env = _env(tmp_path)
    origin = _released(tmp_path, f"file://{store}", env)
    pins = _pins(origin, "v1.0.0")
    for run in pins.values():  # the file store keeps every manifest by digest too
        assert (store / "manifests/sha256" / f"{run['digest'][7:]}.json").is_file()
    message = _message(origin, "v1.0.0")
    make, use = (f"run {s} {pins[s]['key']} {pins[s]['digest']}" for s in ("make", "use"))
    line_of = message.split("\n").index(make) + 1
    bogus = "sha256:" + "0" * 64
    tampered = {
        # a digest nobody stored: not in the remote (exit 1)
        "v2.0.0": message.replace(make, f"run make {pins['make']['key']} {bogus}"),
        # the other step's manifest: its bytes are fine, its key is not (exit 4)
        "v3.0.0": message.replace(make, f"run make {pins['make']['key']} "
                                  f"{pins['use']['digest']}"),
        # hostile text: each a located diagnostic (exit 2)
        "v4.0.0": message.replace(use, use + "\nrun ghost " + " ".join(use.split()[2:])),
        "v5.0.0": message.replace(make, "rm -rf / $(whoami)"),
        "v6.0.0": message.replace(make, make.replace("sha256:", "SHA256:", 1)),
        "v7.0.0": message.replace(use, make),
        "v8.0.0": message.replace("\n-->", ""),
        "v9.0.0": message + "\n<!-- mlspec:pinned-runs v1\nremote x\n-->\n",
        "v10.0.0": message.replace("\n" + use, ""),
    }
    for tag, text in tampered.items():
        _retag(origin, tag, text)
    clone = tmp_path / "clone"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)

    def pull(tag: str) -> tuple[int, str]:
        r = mlspec("pull", "--release", tag, cwd=clone, env=env)
        assert "Traceback" not in r.stderr + r.stdout
        return r.returncode, r.stderr

    code, err = pull("v2.0.0")
    assert code == 1 and "remote.missing" in err, err
    code, err = pull("v3.0.0")
    assert code == 4 and "remote.corrupt" in err and "not the run of step key" in err, err
    where = "refs/tags/v4.0.0:"
    code, err = pull("v4.0.0")
    assert code == 2 and f"{where}{line_of + 2}:1: step 'ghost' is pinned, but" in err, err
    code, err = pull("v5.0.0")
    assert code == 2 and f"refs/tags/v5.0.0:{line_of}:1: unexpected line" in err, err
    code, err = pull("v6.0.0")
    assert code == 2 and "step key malformed" in err, err
    code, err = pull("v7.0.0")
    assert code == 2 and "pinned twice" in err, err
    code, err = pull("v8.0.0")
    assert code == 2 and "has no end" in err, err
    code, err = pull("v9.0.0")
    assert code == 2 and "second pinned-runs section" in err, err
    code, err = pull("v10.0.0")
    assert code == 2 and "are not pinned: use" in err, err
    _no_outs(clone)
    # lineage refuses the tampered section; models lists the release and says so
    r = mlspec("lineage", "v5.0.0", cwd=origin)
    assert r.returncode == 2 and "release.pins" in r.stderr, r.stderr
    listing = mlspec("models", cwd=origin)
    assert listing.returncode == 0 and "refused: see `mlspec lineage v5.0.0`" in listing.stdout

    # the genuine tag, from a clone checked out elsewhere: told to check it out first
    git("checkout", "-q", "-b", "other", cwd=clone)
    (clone / "src/make.py").write_text((clone / "src/make.py").read_text() + "# edit\n")
    git("commit", "-qam", "edit", cwd=clone)
    assert mlspec("run", "--no-pull", cwd=clone, env=env).returncode == 0
    git("commit", "-qam", "relock", cwd=clone)
    code, err = pull("v1.0.0")
    assert code == 2 and "git checkout v1.0.0" in err, err
    git("checkout", "-q", "v1.0.0", cwd=clone)
    code, err = pull("v1.0.0")
    assert code == 0, err
    assert mlspec("status", "--exit-code", cwd=clone, env=env).returncode == 0


def test_release_without_remote_pins_nothing_and_pull_release_says_so(tmp_path: Path) -> None:
    spec = textwrap.dedent(SPEC.format(remote="x")).replace(', remote: "x"', "")
    env = _env(tmp_path)
    repo = make_repo(tmp_path / "origin", spec, FILES)
    assert mlspec("run", cwd=repo, env=env).returncode == 0
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "lock", cwd=repo)
    r = mlspec("release", "1.0.0", cwd=repo, env=env)
    assert r.returncode == 0 and "pinned" not in r.stdout, r.stdout
    assert "pinned-runs" not in _message(repo, "v1.0.0")
    store = tmp_path / "store"
    store.mkdir()
    r = mlspec("pull", "--release", "v1.0.0", cwd=repo, env=_env(
        tmp_path, MLSPEC_REMOTE=f"file://{store}"))
    assert r.returncode == 2 and "release.unpinned" in r.stderr, r.stderr
    r = mlspec("release", "1.0.1", "-m", "<!-- mlspec:pinned-runs v1", cwd=repo, env=env)
    assert r.returncode == 2 and "release.message" in r.stderr, r.stderr
