"""Metrics against a base: values, deltas, better/worse by goal, gate verdicts, params changed.

Pure data: a Comparison is built from two locks and the spec, then rendered as a terminal
table, markdown or JSON. Nothing here touches git (see gitrefs) or the clock.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.gitops.gates import judge, spec_gates
from mlspec.tables import num

if TYPE_CHECKING:
    from mlspec.run.lock import Lock
    from mlspec.spec.loader import LoadedSpec

Value = str | int | float | bool | None
MISSING = "(none)"


@dataclass
class GateResult:
    gate: str
    metric: str
    value: float | None
    baseline: float | None
    threshold: float | None
    passed: bool | None  # None: a relative gate with no baseline to compare with
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "fail", None: "skipped"}[self.passed]


@dataclass
class MetricRow:
    name: str
    value: float | None
    base: float | None
    goal: str | None  # maximize | minimize | None (not declared in design.metrics)
    primary: bool = False
    gates: list[GateResult] = field(default_factory=list)

    @property
    def delta(self) -> float | None:
        if self.value is None or self.base is None:
            return None
        return _clean(self.value - self.base)

    @property
    def change(self) -> str:
        """better / worse / same by the metric's goal; new, removed, or changed (no goal)."""
        if self.value is None:
            return "removed" if self.base is not None else "n/a"
        if self.base is None:
            return "new"
        d = self.delta or 0.0
        if d == 0:
            return "same"
        if self.goal is None:
            return "up" if d > 0 else "down"
        return "better" if (d > 0) == (self.goal == "maximize") else "worse"

    @property
    def verdict(self) -> str:
        """The gate verdict for this metric: fail if any gate fails, '' when it has none."""
        if not self.gates:
            return ""
        if any(g.passed is False for g in self.gates):
            return "fail"
        if any(g.passed is None for g in self.gates):
            return "skipped"
        return "pass"


@dataclass
class ParamChange:
    step: str
    name: str
    base: Value
    value: Value
    added: bool = False
    removed: bool = False


@dataclass
class Comparison:
    rows: list[MetricRow]
    gates: list[GateResult]
    params: list[ParamChange]
    base_ref: str | None = None  # as named (origin/main, a sha, v1.0.0)
    base_commit: str | None = None
    base_has_lock: bool = False
    note: str = ""  # why there is no base, when there is none
    how: str = ""  # how the base was chosen ("the pull request's target branch", ...)
    pending: list[str] = field(default_factory=list)  # steps whose last run is not in the lock

    @property
    def passed(self) -> bool:
        return all(g.passed is not False for g in self.gates)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if g.passed is False]

    def to_data(self) -> dict[str, Any]:
        return {
            "base": {"ref": self.base_ref, "commit": self.base_commit,
                     "has_lock": self.base_has_lock, "note": self.note, "how": self.how},
            "metrics": [{"name": r.name, "value": r.value, "base": r.base, "delta": r.delta,
                         "goal": r.goal, "primary": r.primary, "change": r.change,
                         "verdict": r.verdict or None} for r in self.rows],
            "gates": [{**asdict(g), "verdict": g.verdict} for g in self.gates],
            "params": [asdict(p) for p in self.params],
            "passed": self.passed,
            "pending": list(self.pending),
        }


def pending_text(c: Comparison) -> str:
    steps = ", ".join(c.pending)
    return (f"mlspec.lock does not hold the latest run of {steps}: these metrics are from an "
            "earlier run. Run `mlspec run --no-gates` first (it adopts the recorded results "
            "without rerunning), then commit mlspec.lock")


def _clean(x: float) -> float:
    """Round away float noise (0.9331 - 0.9665 = -0.033400000000000096)."""
    return float(f"{x:.12g}")


# -- a metric nobody wrote ------------------------------------------------------------------
def missing_metric(loaded: LoadedSpec, lock: Lock | None, metric: str) -> str:
    """Why `metric` has no value, naming the metrics file, the step that writes it and the
    keys it has: "metrics.json written by step 'evaluate' has no key 'precision' (it has:
    accuracy, f1_macro)"."""
    import difflib

    graph = loaded.graph
    writers = [(n, str(graph.steps[n].metrics)) for n in graph.order if graph.steps[n].metrics]
    if not writers:
        return (f"no step writes a metrics file, so nothing provides '{metric}': give the step "
                "that evaluates the model `metrics: metrics.json`")
    parts: list[str] = []
    seen: set[str] = set()
    for step, file in writers:
        entry = lock.steps.get(step) if lock is not None else None
        if entry is None:
            parts.append(f"step '{step}' (which writes {file}) has not run yet")
            continue
        keys = sorted(entry.metrics)
        seen.update(keys)
        has = ", ".join(keys) if keys else "no numeric key"
        parts.append(f"{file} written by step '{step}' has no key '{metric}' (it has: {has})")
    text = "; ".join(parts)
    close = difflib.get_close_matches(metric, sorted(seen), n=1)
    return text + (f" — did you mean '{close[0]}'?" if close else "")


# -- gates ----------------------------------------------------------------------------------
def evaluate_gates(loaded: LoadedSpec, metrics: dict[str, float],
                   baseline: dict[str, float] | None,
                   lock: Lock | None = None) -> list[GateResult]:
    """Check every gate against the metrics and (for `baseline` gates) the base's metrics;
    `lock` (the run's) lets a missing metric say which file lacks it."""

    out: list[GateResult] = []
    base = baseline or {}
    for g in spec_gates(loaded):
        value = metrics.get(g.metric)
        b = base.get(g.metric)
        bar, passed = judge(g, value, b)
        if value is None:
            note = (missing_metric(loaded, lock, g.metric) if lock is not None
                    else f"no metric '{g.metric}' in the lock")
            out.append(GateResult(g.text, g.metric, None, b, bar, False, note))
        elif passed is None or bar is None:
            why = "no base lock" if baseline is None else f"the base has no '{g.metric}'"
            out.append(GateResult(g.text, g.metric, value, None, None, None,
                                  f"{why}: a relative gate is skipped until a baseline exists"))
        elif isinstance(value, float) and math.isnan(value):
            out.append(GateResult(g.text, g.metric, value, b, _clean(bar), False, "NaN"))
        else:
            out.append(GateResult(g.text, g.metric, value, b, _clean(bar), passed))
    return out


# -- params ---------------------------------------------------------------------------------
def params_diff(current: Lock, base: Lock | None) -> list[ParamChange]:
    if base is None:
        return []
    out: list[ParamChange] = []
    cur, old = current.params(), base.params()
    for step in sorted(set(cur) | set(old)):
        a, b = old.get(step, {}), cur.get(step, {})
        for name in sorted(set(a) | set(b)):
            if name not in a:
                out.append(ParamChange(step, name, None, b[name], added=True))
            elif name not in b:
                out.append(ParamChange(step, name, a[name], None, removed=True))
            elif a[name] != b[name] or type(a[name]) is not type(b[name]):
                out.append(ParamChange(step, name, a[name], b[name]))
    return out


def compare(loaded: LoadedSpec, current: Lock, base: Lock | None, base_ref: str | None = None,
            base_commit: str | None = None, note: str = "") -> Comparison:
    metrics = current.metrics()
    base_metrics = base.metrics() if base is not None else None
    gates = evaluate_gates(loaded, metrics, base_metrics, current)
    design = loaded.spec.design
    declared = dict(design.metrics) if design else {}
    primary = design.primary if design else None
    gated = {g.metric for g in gates}
    # a declared or gated metric the run did not write stays in the table, shown as missing
    names = [n for n in declared if n in metrics or n in gated
             or (base_metrics and n in base_metrics)]
    extra = set(metrics) | set(base_metrics or {}) | gated
    names += sorted(extra - set(names))
    rows = []
    for name in names:
        goal = declared[name].goal if name in declared else None
        rows.append(MetricRow(name, metrics.get(name), (base_metrics or {}).get(name), goal,
                              primary=name == primary,
                              gates=[g for g in gates if g.metric == name]))
    return Comparison(rows, gates, params_diff(current, base), base_ref, base_commit,
                      base is not None, note)


# -- rendering ------------------------------------------------------------------------------
def fmt_delta(row: MetricRow) -> str:
    d = row.delta
    if d is None:
        return "—"
    text = ("+" if d > 0 else "") + num(d) if d != 0 else "0"
    if row.base not in (None, 0) and d != 0:
        assert row.base is not None
        text += f" ({d / abs(row.base):+.1%})"
    return text


def fmt_value(v: Value) -> str:
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def arrow(row: MetricRow) -> str:
    """The direction the value moved (the colour or word says whether that is better)."""
    d = row.delta
    return "" if not d else ("↑" if d > 0 else "↓")


TERM_CHANGE = {"better": "better", "worse": "WORSE", "same": "same", "new": "new",
               "removed": "removed", "up": "changed", "down": "changed", "n/a": ""}


def table(c: Comparison) -> str:
    """A plain terminal table, columns aligned."""
    if not c.rows:
        return f"{_base_line(c)}\n\nno metrics in mlspec.lock (no step declares a metrics file)\n"
    head = ["metric", "value", "base", "delta", "change", "goal", "gate"]
    body = []
    for r in c.rows:
        change = f"{arrow(r)} {TERM_CHANGE[r.change]}".strip()
        body.append([r.name + (" *" if r.primary else ""), num(r.value, "missing"),
                     num(r.base),
                     fmt_delta(r), change, r.goal or "", r.verdict.upper() if r.verdict == "fail"
                     else r.verdict])
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
             for row in [head, *body]]
    out = [_base_line(c), "", *lines]
    if any(r.primary for r in c.rows):
        out.append("(* primary metric)")
    if c.gates:
        out += ["", "gates:"]
        for g in c.gates:
            bar = f" (threshold {num(g.threshold)})" if g.threshold is not None else ""
            note = f" — {g.note}" if g.note else ""
            out.append(f"  {g.verdict.upper():<11} {g.gate}{bar}{note}")
    if c.params:
        out += ["", "params changed:"]
        out += [f"  {p.step}.{p.name}: {fmt_value(p.base)} -> {fmt_value(p.value)}"
                for p in c.params]
    elif c.base_has_lock:
        out += ["", "params changed: none"]
    return "\n".join(out) + "\n"


def _base_line(c: Comparison) -> str:
    if c.base_ref is None:
        return f"base: none{f' ({c.note})' if c.note else ''}"
    if c.base_commit and c.base_ref == c.base_commit:
        text = f"base: {c.base_commit[:7]}"
    else:
        text = f"base: {c.base_ref}" + (f" ({c.base_commit[:7]})" if c.base_commit else "")
    if c.how and c.how != "given":
        text += f", {c.how}"
    return text + ("" if c.base_has_lock else " — no mlspec.lock there")


MD_CHANGE = {"better": "🟢", "worse": "🔴", "up": "", "down": "", "same": "",
             "new": "🆕", "removed": "removed", "n/a": ""}
MD_VERDICT = {"pass": "✅ pass", "fail": "❌ fail", "skipped": "⚪ skipped", "": ""}


def md_escape(text: str) -> str:
    """Make text safe inside a markdown table cell (and free of HTML)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def md_code(text: str) -> str:
    """Inline code that survives a table cell: `a | b` → `a \\| b` (GitHub and GitLab)."""
    safe = text.replace("`", "'").replace("|", "\\|")
    return f"`{safe}`"


def markdown_metrics(c: Comparison) -> str:
    if not c.rows:
        return "No metrics in mlspec.lock: no step declares a `metrics` file.\n"
    lines = ["| metric | value | base | Δ | goal | gate |", "|---|---:|---:|---|---|---|"]
    for r in c.rows:
        name = f"**{md_escape(r.name)}** (primary)" if r.primary else md_escape(r.name)
        change = f"{MD_CHANGE[r.change]} {arrow(r)}".strip()
        delta = fmt_delta(r)
        cell = f"{change} {delta}".strip() if delta != "—" else (change or "—")
        goal = {"maximize": "↑ maximize", "minimize": "↓ minimize"}.get(r.goal or "", "—")
        lines.append(f"| {name} | {num(r.value, 'missing')} | {num(r.base)} | {cell} | "
                     f"{goal} | "
                     f"{MD_VERDICT[r.verdict] or '—'} |")
    return "\n".join(lines) + "\n"


def markdown_gates(c: Comparison) -> str:
    if not c.gates:
        return "No gates declared.\n"
    lines = ["| gate | value | threshold | result |", "|---|---:|---:|---|"]
    for g in c.gates:
        result = MD_VERDICT[g.verdict] + (f" — {md_escape(g.note)}" if g.note else "")
        lines.append(f"| {md_code(g.gate)} | {num(g.value)} | {num(g.threshold)} | "
                     f"{result} |")
    return "\n".join(lines) + "\n"


def markdown_params(c: Comparison) -> str:
    if not c.base_has_lock:
        return "No base lock to compare params with.\n"
    if not c.params:
        return "No params changed.\n"
    lines = ["| step | param | base | this change |", "|---|---|---|---|"]
    for p in c.params:
        lines.append(f"| {md_escape(p.step)} | {md_code(p.name)} | {md_code(fmt_value(p.base))} "
                     f"| {md_code(fmt_value(p.value))} |")
    return "\n".join(lines) + "\n"


def markdown(c: Comparison) -> str:
    """`mlspec metrics --format markdown`: the metrics table, gates and params changed."""
    base = md_escape(_base_line(c)).replace("base: ", "", 1)
    return "\n".join([f"Base: {base}", "", markdown_metrics(c), "**Gates**", "",
                      markdown_gates(c), "**Params changed**", "", markdown_params(c)])
