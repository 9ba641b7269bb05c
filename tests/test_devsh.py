"""issue 12.11: `./dev.sh` installs once, then only when pyproject.toml changes; pip stays quiet
and the long steps say what they are doing. Run for real in a copy of the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO


def _copy_repo(dest: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO, capture_output=True, check=True)
    for rel in filter(None, listed.stdout.decode().split("\0")):
        src = REPO / rel
        if not src.is_file() or rel.startswith(".venv/"):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    return dest


def _dev(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PYTHON"] = sys.executable
    start = time.monotonic()
    r = subprocess.run(["bash", "dev.sh", *args], cwd=root, capture_output=True, text=True,
                       env=env, timeout=900)
    return r, time.monotonic() - start


@pytest.mark.slow
def test_setup_installs_once_and_again_only_when_pyproject_changes(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path / "mlspec")
    r, first = _dev(root, "setup")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dev.sh: creating .venv" in r.stderr
    assert "dev.sh: installing mlspec and its dev tools" in r.stderr
    assert "Location 'file" not in r.stderr + r.stdout and "editable" not in r.stderr.lower()
    assert (root / ".venv" / "bin" / "mlspec").exists()

    r, second = _dev(root, "setup")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r.stderr
    assert second < 5, second  # nothing changed: no pip at all

    with (root / "pyproject.toml").open("a") as fh:
        fh.write("\n# a new dependency would go here\n")
    r, _ = _dev(root, "setup")
    assert r.returncode == 0, r.stderr
    assert "installing mlspec" in r.stderr and "creating .venv" not in r.stderr
    print(f"dev.sh setup: first {first:.1f} s, unchanged {second:.2f} s")


def test_a_failing_install_shows_pips_output(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path / "mlspec")
    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(text.replace('"typer>=0.12",', '"typer>=0.12", "[",'))
    r, _ = _dev(root, "setup")
    assert r.returncode == 1
    assert "dev.sh: pip install -e .[dev] failed; its output:" in r.stderr
