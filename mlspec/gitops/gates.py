"""Quality gates, evaluated after a run: design-metric thresholds and `model.gates` expressions.

Expressions are parsed by mlspec.spec.gates. `baseline` is the metric in mlspec.lock at the
base git ref (mlspec.gitops.commands); with no baseline a relative gate is *skipped*, never passed.
A metric (or baseline) that is missing or not a finite number (NaN, ±Infinity) fails its gate.
`verdict` is the one rule; `judge` is its (threshold, passed) form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlspec.errors import MlspecError
from mlspec.gitops.gitrefs import find_base_ref, lock_at, lock_from_text, previous_lock
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
    reason: str = ""  # why it failed or was skipped, when the numbers alone do not say

    def to_data(self) -> dict[str, object]:
        return {"gate": self.gate, "metric": self.metric, "value": self.value,
                "threshold": self.threshold, "baseline": self.baseline,
                "verdict": self.verdict.lower(), "reason": self.reason}


@dataclass(frozen=True)
class Verdict:
    threshold: float | None
    passed: bool | None  # None: skipped (a relative gate without a baseline)
    reason: str = ""


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
            if isinstance(parsed, Gate) and not any(_same(g, parsed) for g in gates):
                gates.append(parsed)
    return gates


def base_metrics(loaded: LoadedSpec, base: str | None) -> tuple[str | None, dict[str, float]]:
    """The base ref and the metrics in its lock (empty when it has no lock or no base)."""

    quick = previous_lock(loaded.root, loaded.spec.ci.default_branch) if base is None else None
    if quick is not None:  # the everyday case, without GitPython
        sha, text = quick
        if sha is None:
            return None, {}
        lock = lock_from_text(text, sha) if text is not None else None
        return sha, (lock.metrics() if lock is not None else {})
    ref = find_base_ref(loaded.root, base, loaded.spec.ci.default_branch)
    if ref is None:
        return None, {}
    lock = lock_at(loaded.root, ref)
    return ref, (lock.metrics() if lock is not None else {})


def _same(a: Gate, b: Gate) -> bool:
    """The same condition (a design threshold repeated as a gate): every term equal, the
    baseline arithmetic included."""
    return ((a.metric, a.op, a.number, a.base_op, a.base_num)
            == (b.metric, b.op, b.number, b.base_op, b.base_num))


def verdict(gate: Gate, value: float | None, base_value: float | None) -> Verdict:
    """The one gate rule. Fails when the metric is missing or not finite, or (for a relative
    gate) when the baseline is not finite; skipped, never passed, without a baseline."""
    if value is None:  # a gate on a metric nobody produced must not pass silently
        return Verdict(gate.threshold(base_value), False, f"no metric '{gate.metric}'")
    if not math.isfinite(value):
        return Verdict(gate.threshold(base_value), False,
                       f"{gate.metric} is {value!r}: not a finite number")
    if gate.relative and base_value is not None and not math.isfinite(base_value):
        return Verdict(None, False, f"the baseline of {gate.metric} is {base_value!r}: not a "
                                    "finite number")
    bar = gate.threshold(base_value)
    if bar is None:
        return Verdict(None, None, "no baseline: a relative gate is skipped")
    if not math.isfinite(bar):
        return Verdict(bar, False, f"the threshold {bar!r} is not a finite number")
    return Verdict(bar, bool(gate.passes(value, base_value)))


def judge(gate: Gate, value: float | None, base_value: float | None
          ) -> tuple[float | None, bool | None]:
    """(threshold, passed) for one gate: `verdict` without the reason."""
    v = verdict(gate, value, base_value)
    return v.threshold, v.passed


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
    return results_of(gates, metrics, baseline), ref


def results_of(gates: list[Gate], metrics: dict[str, float], baseline: dict[str, float]
               ) -> list[GateResult]:
    """Each gate's result by the one rule (`verdict`): the model's gates after a run, the
    monitor's gates (`mlspec monitor`) against the deployed release's metrics."""
    results = []
    for g in gates:
        value = metrics.get(g.metric)
        base_value = baseline.get(g.metric) if g.relative else None
        v = verdict(g, value, base_value)
        word = "skipped" if v.passed is None else "pass" if v.passed else "FAIL"
        reason = v.reason if v.passed is not True and value is not None else ""
        results.append(GateResult(g.text, g.metric, value, v.threshold, base_value, word,
                                  reason))
    return results


def render(results: list[GateResult], ref: str | None) -> str:
    rows = [[r.gate, num(r.value, "missing"), num(r.threshold), num(r.baseline),
             r.verdict + (f" ({r.reason})" if r.verdict == "FAIL" and r.reason else "")]
            for r in results]
    if ref is None:
        shown = "none"
    elif len(ref) == 40 and all(c in "0123456789abcdef" for c in ref):
        shown = ref[:12]
    else:
        shown = ref
    head = f"gates (baseline: {shown})\n"
    return head + table(["gate", "value", "threshold", "baseline", "verdict"], rows)
