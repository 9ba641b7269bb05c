"""The one way bench scripts build mlspec's wheel: `pip wheel --no-deps` of a copy of the tree.

Building from a copy keeps the checkout clean and keeps setuptools' in-tree `build/` (which can
still hold modules deleted since) out of the wheel. Import it from a bench script (the script's
own folder is first on sys.path): `from wheelbuild import build_wheel`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                                ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
                                "tests", "bench", "examples")


def build_wheel(tmp: Path) -> Path:
    """Build the wheel under `tmp` (src/ and dist/) and return its path."""
    src = tmp / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(REPO, src, ignore=IGNORE)
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "-q",
                    "--no-deps", "-w", str(tmp / "dist"), str(src)], check=True)
    (wheel,) = (tmp / "dist").glob("mlspec_gitops-*.whl")
    return wheel
