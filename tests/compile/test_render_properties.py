"""Property test (issue 10): for every spec string field that reaches a generated file, any
value mlspec accepts compiles to files that parse (ruamel YAML 1.2 for the GitHub workflows,
PyYAML for .gitlab-ci.yml) and hold that exact value at its place, with nothing else changed:
the same jobs, steps, GitLab keys, Dockerfile instructions and .dockerignore lines. A value
mlspec refuses (validate, or the render layer's defence in depth) is fine: refusal is data."""

from __future__ import annotations

import copy
import json
import shlex
import tempfile
from collections.abc import Callable
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
    step,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_injection import shape

from mlspec.spec.loader import load_spec

FRAGMENTS = ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\t", " ", "  ", "#", "!",
             ": ", "- ", "'", '"', "\\", "$", "$(id)", "${{ github.token }}", "`", "a", "x.txt",
             "data/", "*", "[", "]", "{", "}", "&", "|", ">", "%", "@", ",", "\ufeff", "é", "😀",
             "\x00", "\x1b", "on", "0x1", "-", "|-", "--", "~", "?"]
VALUES = st.lists(st.one_of(st.sampled_from(FRAGMENTS),
                            st.text(st.characters(exclude_categories=("Cs",)), max_size=3)),
                  min_size=1, max_size=6).map("".join)

Spec = dict[str, Any]
Loaded = Any


def _script(files: Files, flow: str, job: str, name: str) -> str:
    return str(step(github(files, flow)["jobs"][job], name)["run"])


def _is_script(run: str, v: str) -> bool:
    """GitHub holds a script as v, or v plus a final newline (a literal block)."""
    return run in (v, v + "\n")


def _deploy_command(files: Files, v: str, _: Loaded) -> None:
    if not v:
        return  # an empty command is no command: the default message runs
    assert _is_script(_script(files, "release", "deploy-staging", "deploy to staging"), v)
    assert v in gitlab(files)["release:deploy-staging"]["script"]


def _monitor_command(files: Files, v: str, _: Loaded) -> None:
    # the command reaches the job through `mlspec monitor` (it reads the spec), never as text
    run = _script(files, "schedule", "monitor", "monitor")
    assert "mlspec monitor >" in run
    assert gitlab(files)["schedule:monitor"]["script"] == [run.rstrip("\n")]


def _out_path(files: Files, _: str, loaded: Loaded) -> None:
    out = loaded.spec.data.steps["prep"].outs[0]
    upload = step(github(files, "experiment")["jobs"]["step-prep"], "Upload mlspec-step-prep")
    assert upload["with"]["path"].split("\n")[0] in (out, out.rstrip("/") + "/")
    assert out in dockerignore(files)
    assert out in gitlab(files)["experiment:step-prep"]["artifacts"]["paths"]


def _runner(files: Files, v: str, _: Loaded) -> None:
    assert github(files, "experiment")["jobs"]["step-train"]["runs-on"] == v
    gl = gitlab(files)["experiment:step-train"]
    assert gl.get("tags", [v]) == [v]


def _requirements(files: Files, _: str, loaded: Loaded) -> None:
    req = loaded.spec.project.requirements
    install = _script(files, "experiment", "step-prep", "Install mlspec")
    assert shlex.split(install.rstrip("\n").split("\n")[-1]) == ["pip", "install", "-r", req]
    copies = [a for w, a in dockerfile_instructions(files["docker/train.Dockerfile"])
              if w == "COPY"]
    assert json.loads(copies[0])[0] == req


def _deploy_url(files: Files, v: str, _: Loaded) -> None:
    if not v:
        return  # an empty url is no url
    assert github(files, "release")["jobs"]["deploy-staging"]["environment"]["url"] == v
    assert gitlab(files)["release:deploy-staging"]["environment"]["url"] == v


def _ci_image(files: Files, v: str, _: Loaded) -> None:
    assert gitlab(files)["experiment:check"]["image"] == (v or "python:3.11-slim")


def _ci_install(files: Files, v: str, _: Loaded) -> None:
    if not v:
        return  # an empty install line means the default one
    install = _script(files, "experiment", "check", "Install mlspec")
    assert install.startswith(v + "\n")
    assert v in gitlab(files)["experiment:check"]["before_script"]


def _set(*keys: str | int) -> Callable[[Spec, str], None]:
    def put(spec: Spec, v: str) -> None:
        node: Any = spec
        for k in keys[:-1]:
            node = node.setdefault(k, {}) if isinstance(k, str) else node[k]
        node[keys[-1]] = v
    return put


def _set_out(spec: Spec, v: str) -> None:
    spec["data"]["steps"]["prep"]["outs"] = [v]
    spec["model"]["steps"]["train"]["deps"] = ["src/train.py", v]


FIELDS: dict[str, tuple[Callable[[Spec, str], None], Callable[[Files, str, Loaded], None]]] = {
    "inference.deploy.staging.command": (_set("inference", "deploy", "staging", "command"),
                                         _deploy_command),
    "inference.monitor.command": (_set("inference", "monitor", "command"), _monitor_command),
    "data.steps.prep.outs[0]": (_set_out, _out_path),
    "model.steps.train.resources.runner": (_set("model", "steps", "train", "resources",
                                                "runner"), _runner),
    "project.requirements": (_set("project", "requirements"), _requirements),
    "inference.deploy.staging.url": (_set("inference", "deploy", "staging", "url"), _deploy_url),
    "ci.image": (_set("ci", "image"), _ci_image),
    "ci.install": (_set("ci", "install"), _ci_install),
}


@pytest.fixture(scope="module")
def clean_shape(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    files = compile_spec(tmp_path_factory.mktemp("clean"), BASE)
    assert files is not None
    return shape(files)


@pytest.mark.parametrize("field", sorted(FIELDS))
@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=VALUES)
def test_accepted_values_land_exactly(field: str, value: str,
                                      clean_shape: dict[str, Any]) -> None:
    put, check = FIELDS[field]
    spec = copy.deepcopy(BASE)
    put(spec, value)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = compile_spec(root, spec)
        if files is None:
            return  # refused, located: never a file with more or less in it
        loaded = load_spec(root / "mlspec.yaml")
    got = shape(files)
    want = copy.deepcopy(clean_shape)
    if field.endswith("runner"):  # a non-GitHub label becomes the GitLab job's `tags:`
        assert got.pop("gitlab").keys() == want.pop("gitlab").keys()
    assert got == want
    check(files, value, loaded)
