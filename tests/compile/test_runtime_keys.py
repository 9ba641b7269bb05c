"""CI cache keys are computed at run time (`mlspec status --ci-keys`, mlspec.run.cikeys), never
baked into a generated file: a param, dep or data change leaves every generated file as it is
(`compile --check` clean on every target) and changes the keys of exactly the affected steps."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, mlspec

STEP = "MLSPEC_CACHE_STEP_"


def keys(root: Path) -> dict[str, str]:
    res = mlspec("status", "--ci-keys", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    return dict(line.split("=", 1) for line in res.stdout.splitlines())


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    assert set(before) == set(after)
    return {k for k in before if before[k] != after[k]}


def check_clean(root: Path) -> None:
    res = mlspec("compile", "--check", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture
def iris(tmp_path: Path) -> Path:
    """A copy of examples/iris (generated files included) whose prepare step also reads a
    committed data file, compiled."""
    root = tmp_path / "iris"
    shutil.copytree(EXAMPLES / "iris", root, ignore=shutil.ignore_patterns(
        "data", "model", ".mlspec", "__pycache__", "metrics.json"))
    (root / "raw").mkdir()
    (root / "raw" / "extra.csv").write_text("a,b\n1,2\n")
    spec = root / "mlspec.yaml"
    spec.write_text(spec.read_text().replace("deps: [src/prepare.py]",
                                             "deps: [src/prepare.py, raw/extra.csv]"))
    res = mlspec("compile", "--force", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    return root


def test_keys_are_printed_for_every_cache_the_pipelines_read(iris: Path) -> None:
    got = keys(iris)
    assert set(got) == {f"{STEP}PREPARE", f"{STEP}TRAIN", f"{STEP}EVALUATE",
                        "MLSPEC_CACHE_SWEEP_TRAIN", "MLSPEC_CACHE_SELECT_TRAIN"}
    assert all(re.match(r"^mlspec-[a-z-]+-[0-9a-f]{32}$", v) for v in got.values()), got
    assert keys(iris) == got  # deterministic
    for rel in (".gitlab-ci.yml", ".github/workflows/mlspec-experiment.yml"):
        text = (iris / rel).read_text()
        assert "mlspec status --ci-keys" in text
        assert not re.search(r"mlspec-[a-z-]+-[0-9a-f]{12}", text), f"a key baked into {rel}"
        assert "sha256sum" not in text


def test_a_param_change_leaves_generated_files_and_rekeys_its_step_and_downstream(
        iris: Path) -> None:
    before = keys(iris)
    model = iris / "specs" / "model.yaml"
    model.write_text(model.read_text().replace("max_depth: 5", "max_depth: 6"))
    check_clean(iris)
    assert changed(before, keys(iris)) == {f"{STEP}TRAIN", f"{STEP}EVALUATE",
                                           "MLSPEC_CACHE_SWEEP_TRAIN",
                                           "MLSPEC_CACHE_SELECT_TRAIN"}


def test_a_dep_change_rekeys_the_steps_that_read_it(iris: Path) -> None:
    before = keys(iris)
    evaluate = iris / "src" / "evaluate.py"
    evaluate.write_text(evaluate.read_text() + "\n# a change\n")
    check_clean(iris)
    assert changed(before, keys(iris)) == {f"{STEP}EVALUATE", "MLSPEC_CACHE_SWEEP_TRAIN",
                                           "MLSPEC_CACHE_SELECT_TRAIN"}
    train = iris / "src" / "train.py"  # read by train and evaluate
    before = keys(iris)
    train.write_text(train.read_text() + "\n# a change\n")
    check_clean(iris)
    assert changed(before, keys(iris)) == {f"{STEP}TRAIN", f"{STEP}EVALUATE",
                                           "MLSPEC_CACHE_SWEEP_TRAIN",
                                           "MLSPEC_CACHE_SELECT_TRAIN"}


def test_a_data_change_rekeys_everything_downstream_of_it(iris: Path) -> None:
    before = keys(iris)
    (iris / "raw" / "extra.csv").write_text("a,b\n1,3\n")
    check_clean(iris)
    assert changed(before, keys(iris)) == set(before)


def test_an_unrelated_change_rekeys_nothing(iris: Path) -> None:
    before = keys(iris)
    (iris / "src" / "monitor.py").write_text("print('monitor')\n")
    model = iris / "specs" / "model.yaml"
    model.write_text(model.read_text() + "# a comment\n")
    check_clean(iris)
    assert keys(iris) == before


def test_the_pipelines_read_the_keys_mlspec_prints(iris: Path) -> None:
    """Every cache key variable a generated pipeline reads is one the command prints."""
    printed = set(keys(iris))
    gitlab = yaml.safe_load((iris / ".gitlab-ci.yml").read_text())
    read = {re.sub(r"-\$CI_NODE_INDEX$", "", c["key"]).lstrip("$")
            for j in gitlab.values() if isinstance(j, dict)
            for c in j.get("cache", []) if isinstance(c["key"], str)}
    github = (iris / ".github/workflows/mlspec-experiment.yml").read_text()
    read |= set(re.findall(r"steps\.key\.outputs\.(MLSPEC_CACHE_[A-Z0-9_]+)", github))
    assert read and read <= printed
