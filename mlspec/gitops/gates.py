"""Quality gates, evaluated after a run: design-metric thresholds and `model.gates` expressions.

Expressions are parsed by mlspec.spec.gates. `baseline` is the metric in mlspec.lock at the
base git ref (mlspec.gitops.commands); with no baseline a relative gate is *skipped*, never passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlspec.errors import MlspecError
from mlspec.spec.gates import Gate, parse_gate
from mlspec.tables import num, table

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec


@dataclass
class GateResult:
    gate: str
    metric: str
    value: float | None
    threshold: float | None
    baseline: float | None
    verdict: str  # pass | FAIL | skipped

    def to_data(self) -> dict[str, object]:
        return {"gate": self.gate, "metric": self.metric, "value": self.value,
                "threshold": self.threshold, "baseline": self.baseline,
                "verdict": self.verdict.lower()}


def spec_gates(loaded: LoadedSpec) -> list[Gate]:
    """Every gate the spec declares: design thresholds first, then the model's expressions."""
    gates: list[Gate] = []
    design = loaded.spec.design
    if design is not None:
        for name, m in design.metrics.items():
            if m.threshold is not None:
                op = ">=" if m.goal == "maximize" else "<="
                gates.append(Gate(text=f"{name} {op} {m.threshold:g}", metric=name, op=op,
                                  number=float(m.threshold)))
    model = loaded.spec.model
    if model is not None:
        for text in model.gates:
            parsed = parse_gate(text)
            same = any((g.metric, g.op, g.number) == (parsed.metric, parsed.op, parsed.number)
                       for g in gates) if isinstance(parsed, Gate) else True
            if isinstance(parsed, Gate) and not same:
                gates.append(parsed)
    return gates


def base_metrics(loaded: LoadedSpec, base: str | None) -> tuple[str | None, dict[str, float]]:
    """The base ref and the metrics in its lock (empty when it has no lock or no base)."""
    from mlspec.gitops.gitrefs import find_base_ref, lock_at

    ref = find_base_ref(loaded.root, base, loaded.spec.ci.default_branch)
    if ref is None:
        return None, {}
    lock = lock_at(loaded.root, ref)
    return ref, (lock.metrics() if lock is not None else {})


def judge(gate: Gate, value: float | None, base_value: float | None
          ) -> tuple[float | None, bool | None]:
    """(threshold, passed) for one gate. passed is None when a relative gate has no baseline
    (skipped, never passed), and False when the metric is missing or NaN."""
    bar = gate.threshold(base_value)
    if value is None:
        return bar, False  # a gate on a metric nobody produced must not pass silently
    if bar is None:
        return None, None
    return bar, bool(gate.passes(value, base_value))


def evaluate(loaded: LoadedSpec, metrics: dict[str, float], base: str | None
             ) -> tuple[list[GateResult], str | None]:
    gates = spec_gates(loaded)
    ref: str | None = None
    baseline: dict[str, float] = {}
    if any(g.relative for g in gates):
        try:
            ref, baseline = base_metrics(loaded, base)
        except MlspecError as err:
            if base is not None:
                raise  # an explicit --base that cannot be read is bad input
            ref = "none: " + "; ".join(d.message for d in err.diagnostics)
    results = []
    for g in gates:
        value = metrics.get(g.metric)
        base_value = baseline.get(g.metric) if g.relative else None
        bar, passed = judge(g, value, base_value)
        verdict = "skipped" if passed is None else "pass" if passed else "FAIL"
        results.append(GateResult(g.text, g.metric, value, bar, base_value, verdict))
    return results, ref


def render(results: list[GateResult], ref: str | None) -> str:
    rows = [[r.gate, num(r.value) if r.value is not None else "missing", num(r.threshold),
             num(r.baseline), r.verdict] for r in results]
    if ref is None:
        shown = "none"
    elif len(ref) == 40 and all(c in "0123456789abcdef" for c in ref):
        shown = ref[:12]
    else:
        shown = ref
    head = f"gates (baseline: {shown})\n"
    return head + table(["gate", "value", "threshold", "baseline", "verdict"], rows)
