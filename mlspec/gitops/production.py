"""Production history: the monitor's metrics of the deployed release, beside its offline ones
(the "production" part of `mlspec metrics --history` and the report's "Production" section).

The deployed release is the newest release tag, unless a rollback was recorded after it
(`rollback.deployed_release`, the rule `mlspec rollback` follows). Its offline metrics are those
of its committed mlspec.lock. The production points are monitor records (mlspec.prodrecord) that
`api` reads from the remote store (gitops does not import remote) and hands in, already
validated; only the deployed release's are shown, the others are counted in a note. Without a
remote there is nothing to read: the section says where each run's metrics are kept instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.gitops import xychart
from mlspec.gitops.metricsdiff import md_code, md_escape
from mlspec.tables import num, table

if TYPE_CHECKING:
    from mlspec.errors import Outcome
    from mlspec.prodrecord import Record
    from mlspec.spec.loader import LoadedSpec

URL_SAFE = ":/?#[]@!$&'()*+,;=%-._~"  # the rest (< > | ` \\ ") is percent-encoded
MAX_COLUMNS = 8  # metrics in the points table (JSON holds them all)
MAX_ROWS = 40  # metrics in the offline-vs-production table
NO_REMOTE = ("production history needs a remote store (`project.remote` or MLSPEC_REMOTE): "
             "without one, each scheduled `mlspec monitor` run's metrics are kept only in "
             "its CI job (the `mlspec-monitor` artifact and the job summary)")


@dataclass
class Production:
    remote: str | None
    release: str | None = None  # the deployed release's tag
    commit: str | None = None
    why: str = ""  # "the newest release", "rolled back by rollback/v1.1.0/1"
    offline: dict[str, float] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)  # the deployed release's, oldest first
    notes: list[str] = field(default_factory=list)

    def metric_names(self) -> list[str]:
        """Every metric of the shown records: the ones the lock also has first."""
        names = sorted({n for r in self.records for n in r.metrics})
        return [n for n in names if n in self.offline] + [n for n in names
                                                           if n not in self.offline]

    def shown_names(self) -> tuple[list[str], int]:
        """The metrics the tables show (at most MAX_ROWS) and how many more there are."""
        names = self.metric_names()
        return names[:MAX_ROWS], max(0, len(names) - MAX_ROWS)

    def to_data(self) -> dict[str, Any]:
        return {"remote": self.remote, "release": self.release, "commit": self.commit,
                "deployed": self.why, "offline": {n: self.offline[n] for n in self.metric_names()
                                                  if n in self.offline},
                "points": [{"tag": r.tag, **r.to_data()} for r in self.records],
                "notes": list(self.notes)}


def deployed(loaded: LoadedSpec) -> tuple[str, str, str] | None:
    """(tag, commit, why) of the deployed release; None without a git repository or release."""
    from git import GitError

    from mlspec.gitops.gitrefs import open_repo, resolve
    from mlspec.gitops.rollback import deployed_release, releases

    repo = open_repo(loaded.root, required=False)
    if repo is None:
        return None
    try:
        rels = releases(loaded, repo)
        if not rels:
            return None
        (_, tag), why = deployed_release(repo, rels)
        return tag, resolve(repo, f"refs/tags/{tag}^{{commit}}") or "", why
    except (GitError, OSError, ValueError):  # a broken clone: no release to name
        return None


def gather(loaded: LoadedSpec, remote: str | None, records: list[Record], notes: list[str],
           limit: int) -> Production:
    """The section's facts: the deployed release, its offline metrics, its newest `limit`
    records (the `records` handed in are oldest first)."""
    if remote is None:
        return Production(None, notes=[NO_REMOTE, *notes])
    from mlspec.errors import MlspecError

    p = Production(remote, notes=list(notes))
    try:
        found = deployed(loaded)
    except MlspecError as err:
        found = None
        p.notes.append("; ".join(d.message for d in err.diagnostics))
    if found is None:
        p.notes.append("no release tag yet: every monitor record is shown")
        p.records = records[-limit:]
        return p
    p.release, p.commit, p.why = found
    from mlspec.gitops.gitrefs import lock_at

    try:
        lock = lock_at(loaded.root, p.commit or p.release)
        p.offline = lock.metrics() if lock is not None else {}
        if lock is None:
            p.notes.append(f"{p.release} has no committed mlspec.lock: no offline values")
    except MlspecError as err:
        p.notes.append("; ".join(d.message for d in err.diagnostics))
    mine = [r for r in records if r.release == p.release]
    others = sorted({r.release or "none" for r in records if r.release != p.release})
    if others:
        p.notes.append(f"{len(records) - len(mine)} monitor record(s) of other releases "
                       f"({', '.join(others[:5])}{', …' if len(others) > 5 else ''}) are not "
                       "shown")
    p.records = mine[-limit:]
    return p


def _short_time(r: Record) -> str:
    return r.time.replace("T", " ").removesuffix("Z")


def _gates(r: Record) -> str:
    failed = sum(1 for g in r.gates if g["verdict"] == "fail")
    if not r.gates:
        return "—"
    return f"{failed} FAIL" if failed else f"{len(r.gates)} pass"


def _heading(p: Production) -> str:
    if p.remote is None:
        return "production"
    if p.release is None:
        return "production (monitor records)"
    return f"production: {p.release} ({p.why}), {len(p.records)} monitor run(s)"


def text(p: Production) -> str:
    out = [_heading(p)]
    if p.records:
        names, more = p.shown_names()
        latest = p.records[-1]
        rows = [[n, num(p.offline.get(n)), num(latest.metrics.get(n)),
                 num(latest.metrics[n] - p.offline[n])
                 if n in p.offline and n in latest.metrics else "—"] for n in names]
        out.append(table(["metric", "offline", "production (latest)", "Δ"], rows).rstrip("\n"))
        shown = names[:MAX_COLUMNS]
        out.append(table(["time (UTC)", "gates", *shown],
                         [[_short_time(r), _gates(r), *[num(r.metrics.get(n)) for n in shown]]
                          for r in p.records]).rstrip("\n"))
        if len(names) + more > len(shown):
            out.append(f"({len(names) + more - len(shown)} more metrics: --format json lists "
                       "them)")
    elif p.remote is not None:
        out.append("no monitor record yet")
    out += [f"note: {n}" for n in p.notes]
    return "\n".join(out) + "\n"


def markdown(p: Production) -> str:
    if p.release is not None:
        head = (f"Deployed release {md_code(p.release)} ({md_escape(p.why)}): "
                f"{len(p.records)} monitor run(s) from {md_code(p.remote or '')}.")
    elif p.remote is not None:
        head = f"Monitor runs from {md_code(p.remote)}."
    else:
        head = ""
    out = [head, ""] if head else []
    if p.records:
        names, more = p.shown_names()
        latest = p.records[-1]
        first = names[0] if names else ""
        block = xychart.chart(f"production {first}", first,
                              [(_short_time(r), v) for r in p.records
                               if (v := r.metrics.get(first)) is not None],
                              reference=p.offline.get(first)) if first else ""
        if block:
            out.append(block.rstrip("\n"))
            if first in p.offline:
                out += ["", f"The line marks {md_code(first)} offline at the release."]
            out.append("")
        out += ["| metric | offline | production (latest) | Δ |", "|---|---:|---:|---:|"]
        for n in names:
            delta = num(latest.metrics[n] - p.offline[n]) \
                if n in p.offline and n in latest.metrics else "—"
            out.append(f"| {md_escape(n)} | {num(p.offline.get(n))} | "
                       f"{num(latest.metrics.get(n))} | {delta} |")
        if more:
            out += ["", f"{more} more metrics: `mlspec metrics --history --format json` lists "
                    "them."]
        shown = names[:MAX_COLUMNS]
        out += ["", "<details><summary>Monitor runs</summary>", "",
                "| time (UTC) | gates | " + " | ".join(md_escape(n) for n in shown) + " |",
                "|---|---|" + "---:|" * len(shown)]
        for r in p.records:
            when = md_escape(_short_time(r))
            if r.run_url:
                from urllib.parse import quote

                when = f"[{when}](<{quote(r.run_url, safe=URL_SAFE)}>)"
            out.append(f"| {when} | {_gates(r)} | "
                       + " | ".join(num(r.metrics.get(n)) for n in shown) + " |")
        out += ["", "</details>"]
    elif p.remote is not None:
        out.append("No monitor record yet.")
    if p.notes:
        out += [""] + [f"> {md_escape(n)}" for n in p.notes]
    return "\n".join(out).lstrip("\n") + "\n"


def with_history(outcome: Outcome, fmt: str, p: Production) -> Outcome:
    """`mlspec metrics --history` with the production section after the offline history
    (json: a `production` key; csv: unchanged, one row per point of the offline history)."""
    data = dict(outcome.data or {})
    data["production"] = p.to_data()
    outcome.data = data
    if fmt == "json":
        outcome.text = json.dumps(data, indent=2, sort_keys=True)
    elif fmt == "markdown":
        outcome.text = outcome.text.rstrip("\n") + "\n\n### Production\n\n" + markdown(p)
    elif fmt != "csv":
        outcome.text = outcome.text.rstrip("\n") + "\n\n" + text(p)
    return outcome
