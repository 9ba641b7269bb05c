"""The distribution name: ours on PyPI, pinned exactly in every generated install line.

The PyPI name `mlspec` belongs to another project (checked with `pip index versions mlspec`:
0.12.6, 0.12.7, 0.13.0 on 2026-11-30), so `pip install mlspec==…` in generated CI would fail
today and, the day versions met, run someone else's code with the pipeline's secrets.
"""

from __future__ import annotations

import re
import tomllib

from conftest import EXAMPLES, REPO

import mlspec
from mlspec.spec.loader import load_spec

EXTRA_ONLY = {"scikit-learn", "numpy", "scipy", "joblib"}


def _names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[;\s]", r, maxsplit=1)[0].lower() for r in reqs}


def test_pyproject_names_the_distribution_the_code_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == mlspec.DISTRIBUTION != "mlspec"
    assert project["version"] == mlspec.__version__
    assert project["scripts"] == {"mlspec": "mlspec.cli:main"}


def test_sklearn_is_an_extra_not_a_core_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not _names(project["dependencies"]) & EXTRA_ONLY
    extras = project["optional-dependencies"]
    assert {"scikit-learn", "joblib"} <= _names(extras[mlspec.SKLEARN_EXTRA])
    # `mlspec serve`'s /metrics: every server has the extra; the core does not pay for it
    assert "prometheus-client" in _names(extras[mlspec.SKLEARN_EXTRA])
    assert "prometheus-client" not in _names(project["dependencies"])
    assert f"{mlspec.DISTRIBUTION}[{mlspec.SKLEARN_EXTRA}]" in extras["dev"]


def test_requirement_names_the_extras() -> None:
    v = mlspec.__version__
    assert mlspec.requirement() == f"mlspec-gitops=={v}"
    assert mlspec.requirement(("sklearn",)) == f"mlspec-gitops[sklearn]=={v}"
    assert mlspec.requirement(["sklearn", "sklearn"]) == f"mlspec-gitops[sklearn]=={v}"


def test_a_spec_needs_the_extra_for_estimators_or_mlspec_serve() -> None:
    iris = load_spec(EXAMPLES / "iris" / "mlspec.yaml").spec
    assert mlspec.spec_extras(iris) == ("sklearn",)  # serves with `mlspec serve`
    scripts_only = iris.model_copy(update={"inference": None})
    assert mlspec.spec_extras(scripts_only) == ()
    assert iris.inference is not None
    own = iris.inference.serve.model_copy(update={"command": "uvicorn app:api"})
    other = iris.model_copy(update={"inference": iris.inference.model_copy(
        update={"serve": own})})
    assert mlspec.spec_extras(other) == ()
    assert iris.model is not None
    (name, step), *_ = iris.model.steps.items()
    builtin = step.model_copy(update={"estimator": "sklearn.svm.SVC", "command": None})
    with_estimator = scripts_only.model_copy(update={"model": iris.model.model_copy(
        update={"steps": {name: builtin}})})
    assert mlspec.spec_extras(with_estimator) == ("sklearn",)


def test_generated_install_lines_pin_our_distribution() -> None:
    req = mlspec.requirement(("sklearn",))  # iris serves a pickled model with `mlspec serve`
    assert req == f"mlspec-gitops[sklearn]=={mlspec.__version__}"
    iris = EXAMPLES / "iris"
    for rel in (".github/workflows/mlspec-experiment.yml", ".gitlab-ci.yml",
                "docker/train.Dockerfile", "docker/serve.Dockerfile"):
        text = (iris / rel).read_text()
        assert req in text, rel
        assert "mlspec==" not in text, rel
