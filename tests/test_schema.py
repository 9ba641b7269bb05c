"""schemas/mlspec.schema.json is generated from the models and checked against real specs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import EXAMPLES, REPO, mlspec, tool

from mlspec.spec.schema import schema_text

SCHEMA = REPO / "schemas" / "mlspec.schema.json"


def test_committed_schema_matches_the_models(update_golden: bool) -> None:
    """Regenerate with `mlspec schema > schemas/mlspec.schema.json` (or --update-golden)."""
    if update_golden:
        SCHEMA.write_text(schema_text())
    assert SCHEMA.read_text() == schema_text(), (
        "schemas/mlspec.schema.json is out of date: run `mlspec schema > "
        "schemas/mlspec.schema.json`")


def test_mlspec_schema_command_prints_it() -> None:
    r = mlspec("schema", cwd=REPO)
    assert r.returncode == 0
    assert r.stdout == SCHEMA.read_text()
    assert json.loads(r.stdout)["title"] == "mlspec.yaml"


def _check(schema: Path, *docs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("check-jsonschema"), "--schemafile", str(schema),
                           *map(str, docs)], capture_output=True, text=True)


def test_iris_spec_validates_against_the_schema() -> None:
    # `model: specs/model.yaml` is a string: the schema allows a path for every stage
    r = _check(SCHEMA, EXAMPLES / "iris" / "mlspec.yaml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_iris_stage_file_validates_against_its_definition(tmp_path: Path) -> None:
    full = json.loads(SCHEMA.read_text())
    stage = {"$schema": full["$schema"], "$defs": full["$defs"], "$ref": "#/$defs/Model"}
    schema = tmp_path / "model.schema.json"
    schema.write_text(json.dumps(stage))
    r = _check(schema, EXAMPLES / "iris" / "specs" / "model.yaml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_schema_rejects_what_the_loader_rejects(tmp_path: Path) -> None:
    """The editor sees the same unknown-field and type errors `mlspec validate` reports."""
    bad = tmp_path / "mlspec.yaml"
    bad.write_text("version: 1\nproject: {name: p, pyhton: '3.11'}\n"
                   "data: {steps: {prep: {comand: x}}}\n")
    r = _check(SCHEMA, bad)
    assert r.returncode == 1
    assert "pyhton" in r.stdout and "comand" in r.stdout
