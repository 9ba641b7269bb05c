"""Session fixtures shared by the tests that run generated pipelines and build images.

- `wheel_dir`: the folder holding only the suite's one wheel (conftest's `mlspec_wheel`).
  Pipelines get it as `PIP_FIND_LINKS`, so the generated install line
  (`pip install mlspec-gitops==<version>`) is what installs mlspec: a wrong distribution name
  or version finds nothing there (and nothing on the registry) and fails the job.
- `wheelhouse`: that wheel plus every runtime dependency as wheels, for image builds, which
  cannot reach a package index here (docker/wheels/ + pip.conf, the generated Dockerfile's
  documented offline mode).
- `docker_client` / `base_image`: the Docker engine, and the ONE base image of the suite
  (nothing can be pulled here): a debootstrap of Debian bookworm with python3, venv and pip,
  `docker import`ed as BASE, built once per machine and reused.
- `job_path` / `fresh_venv`: what a job on this machine finds: PATH without the test venv nor any
  directory holding an `mlspec` executable, behind a fresh virtualenv's bin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import need, tool

BASE = "mlspec-test/python:3.11-slim"
REGISTRY = "127.0.0.1:5000"


@pytest.fixture(scope="session")
def wheel_dir(mlspec_wheel: Path) -> Path:
    """The folder holding only the suite's one built wheel (conftest's `mlspec_wheel`)."""
    assert [p.name for p in mlspec_wheel.parent.iterdir()] == [mlspec_wheel.name]
    return mlspec_wheel.parent


@pytest.fixture(scope="session")
def wheelhouse(mlspec_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mlspec (the session's wheel) and every runtime dependency, with the [sklearn] extra the
    iris serve image installs, as wheels, plus a pip.conf for docker/wheels/ (installs offline
    from /tmp/deps inside the image build)."""
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                    "-w", str(out), f"{mlspec_wheel}[sklearn]"], check=True, capture_output=True,
                   timeout=900)
    (out / "pip.conf").write_text("[global]\nno-index = true\nfind-links = /tmp/deps\n")
    return out


def _daemon() -> Any:
    try:
        import docker

        client = docker.from_env(timeout=600)
        client.ping()
        return client
    except Exception:
        return None


@pytest.fixture(scope="session")
def docker_client() -> Any:
    found = _daemon()
    need(found is not None, "no Docker engine reachable (.ci/services.sh starts one)")
    return found


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """BASE, built once per machine: debootstrap bookworm + python3/venv/pip, docker import."""
    import docker.errors

    try:
        docker_client.images.get(BASE)
        return BASE
    except docker.errors.ImageNotFound:
        pass
    debootstrap = tool("debootstrap")
    need(os.geteuid() == 0, "debootstrap needs root")
    with tempfile.TemporaryDirectory(prefix="mlspec-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run([debootstrap, "--variant=minbase",
                        "--include=python3,python3-venv,python3-pip,ca-certificates",
                        "bookworm", str(rootfs)], check=True, capture_output=True, timeout=900)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                     "usr/share/man", "usr/share/locale", "usr/share/info"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run([tool("docker"), "import", "-c", "ENV LANG=C.UTF-8", "-", BASE],
                       stdin=tar.stdout, check=True, capture_output=True, timeout=600)
        assert tar.wait() == 0
    return BASE


GITLAB_CI_LOCAL = "4.73.0"  # the version .ci/services.sh installs


def gitlab_ci_local() -> str:
    """The gitlab-ci-local executable, of the version the pipeline tests were written for
    (rsync too, which its --shell-isolation copies with); skip or fail (CI) otherwise."""
    exe = tool("gitlab-ci-local")
    tool("rsync")
    found = subprocess.run([exe, "--version"], capture_output=True, text=True,
                           env=job_env(None)).stdout.strip()
    need(found == GITLAB_CI_LOCAL,
         f"gitlab-ci-local {GITLAB_CI_LOCAL} is needed, found {found!r}")
    return exe


def job_path() -> str:
    """PATH for jobs run on this machine: without the test venv's bin, any active virtualenv,
    and any directory that holds an `mlspec` executable."""
    venv_bins = {Path(sys.executable).parent.resolve(), Path(sys.prefix, "bin").resolve()}
    if os.environ.get("VIRTUAL_ENV"):
        venv_bins.add(Path(os.environ["VIRTUAL_ENV"], "bin").resolve())
    kept = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or Path(entry).resolve() in venv_bins:
            continue
        if shutil.which("mlspec", path=entry) is not None:
            continue
        kept.append(entry)
    path = os.pathsep.join(kept)
    assert shutil.which("mlspec", path=path) is None
    return path


def fresh_venv(dest: Path) -> Path:
    """A new virtualenv (with pip) from the base interpreter, not the test venv; its bin dir."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(dest)], check=True, capture_output=True, timeout=300)
    bin_dir = dest / "bin"
    assert (bin_dir / "pip").exists() and not (bin_dir / "mlspec").exists()
    return bin_dir


def job_env(venv_bin: Path | None, **extra: str) -> dict[str, str]:
    """The environment pipelines run in: no test venv, mlspec nowhere on PATH; a fresh venv's
    bin first when given."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    path = job_path()
    env["PATH"] = f"{venv_bin}{os.pathsep}{path}" if venv_bin else path
    if venv_bin is not None:
        env["VIRTUAL_ENV"] = str(venv_bin.parent)
    assert shutil.which("mlspec", path=env["PATH"]) is None
    env.update(extra)
    return env
