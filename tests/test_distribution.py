"""The distribution name: ours on PyPI, pinned exactly in every generated install line.

The PyPI name `mlspec` belongs to another project (checked with `pip index versions mlspec`:
0.12.6, 0.12.7, 0.13.0 on 2026-11-30), so `pip install mlspec==…` in generated CI would fail
today and, the day versions met, run someone else's code with the pipeline's secrets.
"""

from __future__ import annotations

import tomllib

from conftest import EXAMPLES, REPO

import mlspec


def test_pyproject_names_the_distribution_the_code_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == mlspec.DISTRIBUTION != "mlspec"
    assert project["version"] == mlspec.__version__
    assert project["scripts"] == {"mlspec": "mlspec.cli:main"}


def test_generated_install_lines_pin_our_distribution() -> None:
    req = mlspec.requirement()
    assert req == f"mlspec-gitops=={mlspec.__version__}"
    iris = EXAMPLES / "iris"
    for rel in (".github/workflows/mlspec-experiment.yml", ".gitlab-ci.yml",
                "docker/train.Dockerfile", "docker/serve.Dockerfile"):
        text = (iris / rel).read_text()
        assert req in text, rel
        assert "mlspec==" not in text, rel
