"""Cross-field checks: gate metrics, duplicate step names, requirements file, the step graph.

They run on a valid spec and also, as far as the raw data allows, on one that failed the
schema, so that `mlspec validate` reports every error in one go.
"""

from __future__ import annotations

import difflib
import os
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from mlspec.errors import Diagnostic
from mlspec.spec.ci import ci_diagnostics, remote_username_diagnostics
from mlspec.spec.common import normalise_path
from mlspec.spec.gates import parse_gate
from mlspec.spec.graph import Graph, StepIO, analyse, build_graph
from mlspec.spec.root import Spec
from mlspec.spec.step import Step
from mlspec.spec.yamlsafe import Yaml

if TYPE_CHECKING:
    from mlspec.spec.source import SpecSource


def _raw_metrics(data: dict[str, Yaml], loaded: SpecSource) -> set[str] | None:
    """Metric names declared in the raw data; None when the design section is unreadable."""
    if "design" in loaded.broken:
        return None
    design = data.get("design")
    if design is None:
        return set()
    if not isinstance(design, dict):
        return None
    metrics = design.get("metrics", {})
    if not isinstance(metrics, dict):
        return None
    return {k for k in metrics if isinstance(k, str)}


def _raw_io(raw: Yaml) -> StepIO:
    """The deps and outs of a step that failed validation: its entries that are valid paths."""
    def paths(field: str) -> list[tuple[tuple[str | int, ...], str]]:
        items = raw.get(field) if isinstance(raw, dict) else None
        out: list[tuple[tuple[str | int, ...], str]] = []
        for i, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, str):
                continue  # reported by the schema
            try:
                out.append(((field, i), normalise_path(item)))
            except PydanticCustomError:  # not a safe path: reported by the schema
                continue
        return out

    outs = paths("outs")
    metrics = raw.get("metrics") if isinstance(raw, dict) else None
    if isinstance(metrics, str):
        try:
            norm = normalise_path(metrics)
            if norm not in {o for _, o in outs}:
                outs.append((("metrics",), norm))
        except PydanticCustomError:
            pass
    return StepIO(deps=tuple(paths("deps")), outs=tuple(outs))


def _steps(loaded: SpecSource, spec: Spec | None, data: dict[str, Yaml]
           ) -> tuple[dict[str, StepIO], dict[str, str], list[Diagnostic]]:
    """Every step across stages, valid or not, as graph IO; plus duplicate-name errors."""
    ios: dict[str, StepIO] = {}
    stage_of: dict[str, str] = {}
    diags: list[Diagnostic] = []
    for stage in ("data", "model"):
        if spec is not None:
            section = getattr(spec, stage)
            items: dict[str, Any] = dict(section.steps) if section is not None else {}
        else:
            raw = data.get(stage)
            steps = raw.get("steps") if isinstance(raw, dict) else None
            items = dict(steps) if isinstance(steps, dict) else {}
        for name, step in items.items():
            if not isinstance(name, str):
                continue
            if name in ios:
                diags.append(loaded.diag((stage, "steps", name),
                                         f"step '{name}' is already defined in "
                                         f"{stage_of[name]}.steps", "spec.duplicate-step",
                                         "step names are unique across stages", at_key=True))
                continue
            stage_of[name] = stage
            if isinstance(step, Step):
                ios[name] = StepIO.of(step)
            else:
                try:
                    ios[name] = StepIO.of(Step.model_validate(step))
                except ValidationError:
                    ios[name] = _raw_io(step)
    return ios, stage_of, diags


def check_semantics(loaded: SpecSource, spec: Spec | None, data: dict[str, Yaml]
                    ) -> tuple[list[Diagnostic], Graph | None]:
    """Checks that span fields, and the step graph (None when the spec is not valid).

    `data` is the raw mapping, `spec` the model or None when it failed the schema."""
    diags: list[Diagnostic] = []
    ios, stage_of, dup_diags = _steps(loaded, spec, data)
    diags.extend(dup_diags)

    if spec is not None:
        metrics: set[str] | None = (set(spec.design.metrics) if spec.design else set())
        if "design" in loaded.broken:
            metrics = None
        gates: list[Yaml] = list(spec.model.gates) if spec.model else []
    else:
        metrics = _raw_metrics(data, loaded)
        model = data.get("model")
        raw_gates = model.get("gates") if isinstance(model, dict) else None
        gates = raw_gates if isinstance(raw_gates, list) else []
    if metrics is not None:
        for i, text in enumerate(gates):
            gate = parse_gate(text) if isinstance(text, str) else None
            if gate is not None and not isinstance(gate, str) and gate.metric not in metrics:
                close = difflib.get_close_matches(gate.metric, sorted(metrics), n=1)
                diags.append(loaded.diag(
                    ("model", "gates", i), f"gate on undefined metric '{gate.metric}'",
                    "spec.gate-metric",
                    f"did you mean '{close[0]}'?" if close else
                    "declare it under design.metrics"))

    project = spec.project if spec is not None else None
    requirements = project.requirements if project is not None else None
    if spec is None:
        raw_project = data.get("project")
        raw_req = raw_project.get("requirements") if isinstance(raw_project, dict) else None
        if isinstance(raw_req, str):
            try:
                requirements = normalise_path(raw_req)
            except PydanticCustomError:
                requirements = None
    if requirements and not os.path.isfile(loaded.root / requirements):
        diags.append(loaded.diag(("project", "requirements"),
                                 f"requirements file '{requirements}' does not exist",
                                 "spec.missing-file", None))
    check_missing = not ({"data", "model"} & loaded.broken)
    graph: Graph | None = None
    if spec is not None:
        diags.extend(_check_secrets(loaded, spec))
        graph = build_graph(loaded, spec)
        diags.extend(graph.diagnostics)
        diags.extend(ci_diagnostics(loaded, spec.ci, spec.inference.image.name
                                    if spec.inference else None, list(graph.order)))
        diags.extend(remote_username_diagnostics(loaded, spec.ci))
    else:
        diags.extend(analyse(loaded, ios, stage_of, check_missing=check_missing).diagnostics)
    return diags, graph


def _check_secrets(loaded: SpecSource, spec: Spec) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    if (spec.inference and spec.inference.image.username is not None
            and "registry_password" not in spec.ci.secrets):
        diags.append(loaded.diag(("inference", "image", "username"),
                                 "a registry username needs ci.secrets.registry_password",
                                 "spec.secret-missing",
                                 "add `registry_password: <SECRET_NAME>` under ci.secrets"))
    return diags
