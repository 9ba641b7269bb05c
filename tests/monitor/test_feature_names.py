"""`drift.features` names columns as they are ("sepal length (cm)", "Age"), which the built-in
trainer and real CSVs use; their metrics are slugged (psi_sepal_length__cm_)."""

from __future__ import annotations

from pathlib import Path

from conftest import init_repo, mlspec

SPEC = """\
version: 1
project: {name: names}
model:
  steps:
    train:
      command: python -c "print(1)"
      outs: [model/profile.json]
inference:
  image: {name: ghcr.io/acme/names}
  monitor:
    schedule: "0 6 * * *"
    drift: {reference: model/profile.json, live: logs/live.csv, features: FEATURES}
    metrics: monitor/metrics.json
    gates: ["psi_max <= 0.2"]
"""


def _validate(tmp_path: Path, features: str) -> tuple[int, str]:
    repo = init_repo(tmp_path / "r")
    (repo / "mlspec.yaml").write_text(SPEC.replace("FEATURES", features))
    r = mlspec("validate", cwd=repo)
    return r.returncode, r.stdout + r.stderr


def test_column_names_as_they_are(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, '["sepal length (cm)", Age, "Ünïcode col"]')
    assert code == 0, out


def test_empty_or_overlong_names_are_refused_at_their_line(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, '[""]')
    assert code == 2 and "mlspec.yaml:12:" in out, out
    code, out = _validate(tmp_path / "long", f'["{"x" * 300}"]')
    assert code == 2 and "mlspec.yaml:12:" in out, out
