"""A pull cut short, end to end against the real registry: killed (SIGKILL, as a lost runner)
or interrupted (Ctrl-C) while a 256 MiB layer streams in, it leaves no out and no partial file in
the working tree; the next pull restores the run whole; `mlspec gc --yes` removes what a killed
pull left in the cache."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BIN, git, mlspec
from remote_registry import PASSWORD, USER, Registry, make_repo, running_registry

SPEC = """
version: 1
project: {{name: big, remote: "{remote}"}}
model:
  steps:
    make:
      command: python src/make.py
      deps: [src/make.py]
      outs: [out/big.bin]
"""
MAKE = """
import os, pathlib
pathlib.Path("out").mkdir(exist_ok=True)
with open("out/big.bin", "wb") as fh:
    for _ in range(256):
        fh.write(os.urandom(1 << 20))
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _size(f: Path) -> int:
    try:
        return f.stat().st_size if f.is_file() else 0
    except OSError:  # gone: the pull finished with it
        return 0


def _pull_until_streaming(clone: Path, env: dict[str, str],
                          old: tuple[Path, ...] = ()) -> subprocess.Popen[str]:
    """`mlspec pull`, returned once its download has written at least 8 MiB to its scratch
    directory in the cache (and before it has finished); `old`: earlier pulls' leftovers."""
    exe = BIN / "mlspec"
    proc = subprocess.Popen([str(exe), "pull"], cwd=clone, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        files = [f for d in (clone / ".mlspec" / "cache").glob(".remote-*") if d not in old
                 for f in d.rglob("*")]
        if any(_size(f) >= 8 << 20 for f in files):
            return proc
        assert proc.poll() is None, "the pull ended before it was interrupted: " + \
            proc.communicate()[1]
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("the download never started")


def test_a_pull_killed_or_interrupted_mid_download(registry: Registry, tmp_path: Path) -> None:
    import os

    env = {**os.environ, "MLSPEC_REGISTRY_USER": USER, "MLSPEC_REGISTRY_PASSWORD": PASSWORD,
           "DOCKER_CONFIG": str(tmp_path / "nodocker")}
    origin = make_repo(tmp_path / "origin", SPEC.format(
        remote=f"oci://{registry.host}/cut/store"), {"src/make.py": MAKE})
    for args in (("run",), ("push",)):
        r = mlspec(*args, cwd=origin, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
    git("add", "-A", cwd=origin)
    git("commit", "-q", "-m", "lock", cwd=origin)
    want = _sha(origin / "out" / "big.bin")
    clone = tmp_path / "clone"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    big = clone / "out" / "big.bin"

    # killed: nothing in the working tree, its scratch directory stays in the cache
    proc = _pull_until_streaming(clone, env)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not big.exists()
    left = sorted((clone / ".mlspec" / "cache").glob(".remote-*"))
    assert len(left) == 1

    # Ctrl-C: exit 130, nothing in the working tree, its own scratch directory removed
    proc = _pull_until_streaming(clone, env, tuple(left))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not big.exists()
    assert sorted((clone / ".mlspec" / "cache").glob(".remote-*")) == left

    # the next pull restores the run whole, and nothing runs
    r = mlspec("pull", cwd=clone, env=env)
    assert r.returncode == 0 and "restored make" in r.stdout, r.stdout + r.stderr
    assert _sha(big) == want
    r = mlspec("status", "--exit-code", cwd=clone, env=env)
    assert r.returncode == 0, r.stdout + r.stderr

    # gc names what the killed pull left, then removes it
    r = mlspec("gc", cwd=clone, env=env)
    assert r.returncode == 0 and "1 unfinished transfer(s)" in r.stdout, r.stdout + r.stderr
    assert left[0].relative_to(clone).as_posix() in r.stdout
    r = mlspec("gc", "--yes", cwd=clone, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not left[0].exists() and _sha(big) == want
