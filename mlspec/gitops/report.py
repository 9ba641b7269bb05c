"""The PR report: the markdown a pull-request comment and a CI job summary show.

Sections: a verdict line, the hypothesis, metrics against the base (arrows and colours by each
metric's goal), the primary metric's history (a mermaid xychart), production (when the spec
declares `inference.monitor`: the deployed release's monitor runs, gitops.production), gates,
params changed, sweeps (a chart per swept step), data checks, the step graph (mermaid), and lineage.
The first line is a hidden marker so CI finds and updates one sticky comment. No clock, no
host, no absolute path: the same inputs give the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlspec import __version__
from mlspec.gitops import history as metric_history
from mlspec.gitops import xychart
from mlspec.gitops.metricsdiff import (
    MD_CHANGE,
    fmt_delta,
    fmt_value,
    markdown_gates,
    markdown_metrics,
    markdown_params,
    md_code,
    md_escape,
    pending_text,
)
from mlspec.gitops.modelcard import hashes_table, provenance_rows, short
from mlspec.spec.graph import render_graph
from mlspec.tables import num

if TYPE_CHECKING:
    from mlspec.gitops.history import History
    from mlspec.gitops.lineage import Lineage
    from mlspec.gitops.metricsdiff import Comparison
    from mlspec.gitops.production import Production
    from mlspec.run.lock import Lock
    from mlspec.spec.loader import LoadedSpec

MARKER = "<!-- mlspec-report -->"


def verdict_line(c: Comparison) -> str:
    n = len(c.gates)
    failed = len(c.failed_gates)
    waiting = sum(1 for g in c.gates if g.passed is None)
    if n == 0:
        head = "ℹ️ **No gates declared**"
    elif failed:
        head = f"❌ **{failed} of {n} gate{'s' if n != 1 else ''} failed**"
    else:
        head = f"✅ **All {n} gate{'s' if n != 1 else ''} pass**"
        if waiting:
            head += f" ({waiting} without a baseline yet)"
    parts = [head]
    primary = next((r for r in c.rows if r.primary), None)
    if primary is not None and primary.value is not None:
        text = f"{md_escape(primary.name)} **{num(primary.value)}**"
        if primary.delta is not None:
            colour = MD_CHANGE[primary.change]
            text += f" {colour + ' ' if colour else ''}{fmt_delta(primary)} vs base"
        parts.append(text)
    parts.append(base_text(c))
    return " · ".join(parts)


def base_text(c: Comparison) -> str:
    if c.base_ref is None:
        return f"no base ({md_escape(c.note)})" if c.note else "no base"
    commit = c.base_commit or ""
    if commit and c.base_ref != commit:
        text = f"base {md_code(c.base_ref)} ({md_code(commit[:7])})"
    else:
        text = f"base {md_code(c.base_ref[:7])}"
    if c.how and c.how != "given":
        text += f", {md_escape(c.how)}"
    return text if c.base_has_lock else text + ", which has no mlspec.lock"


def data_checks(loaded: LoadedSpec, lock: Lock, base: Lock | None) -> str:
    """Each declared data check, with the output it guards, its hash and whether it changed.

    `mlspec run` checks an output right after its step writes it and stops on a failure, so an
    output recorded in the lock passed its checks; one missing from the lock has not run.
    """
    rows = []
    for name, (_stage, step) in loaded.spec.steps().items():
        if step.checks is None:
            continue
        ch = step.checks
        checks = []
        if ch.min_rows is not None:
            checks.append(f"≥ {ch.min_rows} rows")
        if ch.columns:
            checks.append("columns " + ", ".join(f"{k}: {v}" for k, v in ch.columns.items()))
        if ch.max_null_fraction is not None:
            checks.append(f"nulls ≤ {ch.max_null_fraction:g}")
        recorded = lock.steps.get(name)
        old = base.steps.get(name) if base is not None else None
        for out in step.outs:
            h = recorded.outs.get(out) if recorded else None
            if h is None:
                result, change = "⚪ not run", "—"
            else:
                result = "✅ passed"
                prev = old.outs.get(out) if old else None
                change = "—" if base is None else ("new" if prev is None else
                                                   ("unchanged" if prev == h else "changed"))
            rows.append(f"| {md_escape(name)} | {md_code(out)} | {md_escape('; '.join(checks))} "
                        f"| {result} | {md_code(short(h)) if h else '—'} | {change} |")
    if not rows:
        return "No data checks declared.\n"
    head = ["| step | output | checks | result | sha256 | vs base |",
            "|---|---|---|---|---|---|"]
    return "\n".join(head + rows) + "\n"


# a sweep's chart shows this many variants at most (the table lists them all)
SWEEP_CHART_MAX = 60


def sweep_chart(step: str, metric: str, variants: list[dict[str, Any]],
                best: dict[str, Any]) -> str:
    """A bar per variant of the metric the sweep is ranked by: the x axis names the swept
    params, each bar's label holds their values (short labels do not overlap)."""
    names = sorted({k for v in variants for k in v.get("params", {})})
    points = []
    for v in variants[:SWEEP_CHART_MAX]:
        params = v.get("params", {})
        text = ",".join(fmt_value(params.get(n)) for n in names) or "defaults"
        value = v.get("metrics", {}).get(metric)
        if isinstance(value, int | float):
            points.append((text + (" best" if params == best else ""), float(value)))
    return xychart.chart(f"{step}: {metric} by variant", metric, points,
                         x_title=",".join(names))


def sweeps_section(lock: Lock) -> str:
    """Each swept step's variants with the ranking metric: a chart, then a table with the best
    one starred."""
    out = []
    for step, sw in sorted(lock.sweeps.items()):
        names = sorted({k for v in sw.variants for k in v.get("params", {})})
        head = ["", *names, sw.metric]
        out += [f"**{md_escape(step)}**, ranked by {md_code(sw.metric)}:", ""]
        block = sweep_chart(step, sw.metric, sw.variants, sw.best)
        if block:
            out += [block]
        out += [
                "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
        for v in sw.variants:
            params = v.get("params", {})
            best = "★" if params == sw.best else ""
            cells = [best, *(md_code(fmt_value(params.get(n))) for n in names),
                     num(v.get("metrics", {}).get(sw.metric))]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def lineage_section(lin: Lineage, hashes: bool = True) -> str:
    rows = provenance_rows(lin, full=False)
    lines = ["| field | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    data = lin.data_hashes()
    arts = lin.artifacts()
    if not hashes:
        lines.append(f"{len(data)} data files and {len(arts)} artifacts: too many to list "
                     "here; `mlspec lineage HEAD` shows every hash.")
        return "\n".join(lines) + "\n"
    lines += ["<details><summary>Data and artifact hashes</summary>", "",
              "**Data**", "", *hashes_table(data, False), "",
              "**Artifacts**", "", *hashes_table(arts, False), "", "</details>"]
    return "\n".join(lines) + "\n"


# GitHub refuses comments over 65,536 characters; stay well under it.
MAX_CHARS = 60_000


def render(loaded: LoadedSpec, c: Comparison, lock: Lock, base: Lock | None,
           lin: Lineage, history: History | None = None,
           production: Production | None = None) -> str:
    """The report; over MAX_CHARS, the history loses its oldest points first (halving), then
    the hash lists go. The production section is bounded by its own limit."""
    text = _render(loaded, c, lock, base, lin, True, history, production)
    if history is None or len(text) <= MAX_CHARS:
        return text if len(text) <= MAX_CHARS else _render(loaded, c, lock, base, lin, False,
                                                           history, production)
    past = sum(1 for p in history.points if p.kind != "worktree")
    while past > 0 and len(text) > MAX_CHARS:
        past //= 2
        text = _render(loaded, c, lock, base, lin, True, history.keep(past), production)
    if len(text) > MAX_CHARS:
        text = _render(loaded, c, lock, base, lin, False, history.keep(0), production)
    return text


def _render(loaded: LoadedSpec, c: Comparison, lock: Lock, base: Lock | None,
            lin: Lineage, hashes: bool, history: History | None = None,
            production: Production | None = None) -> str:

    spec = loaded.spec
    design = spec.design
    out = [MARKER, f"## mlspec report: {md_escape(spec.project.name)}", ""]
    if design is not None:
        out += [f"> **Hypothesis:** {md_escape(design.hypothesis)}", ""]
    if c.pending:

        out += [f"> [!WARNING]\n> {md_escape(pending_text(c))}", ""]
    out += [verdict_line(c), ""]
    out += ["### Metrics", "", markdown_metrics(c)]
    if history is not None:
        out += ["### Metric history", "", metric_history.markdown(history)]
    if production is not None:
        from mlspec.gitops.production import markdown as production_markdown

        out += ["### Production", "", production_markdown(production)]
    out += ["### Gates", "", markdown_gates(c)]
    out += ["### Params changed", "", markdown_params(c)]
    if lock.sweeps:
        out += ["### Sweeps", "", sweeps_section(lock)]
    out += ["### Data checks", "", data_checks(loaded, lock, base)]
    out += ["### Pipeline", "", "<details><summary>Step graph</summary>", "",
            "```mermaid", render_graph(loaded.graph, "mermaid").rstrip("\n"), "```", "",
            "</details>", ""]
    out += ["### Lineage", "", lineage_section(lin, hashes)]
    out += [f"<sub>Generated by mlspec {__version__}: `mlspec report`.</sub>"]
    return "\n".join(out) + "\n"
