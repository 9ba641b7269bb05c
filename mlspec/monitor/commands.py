"""`mlspec monitor` and `mlspec profile`: what the api calls.

`mlspec monitor` runs `inference.monitor`: the custom `command` first (it may write the
`metrics` file), then the built-in drift check (`drift:`), whose metrics are merged into that
file; then the monitor's `gates`, judged by the one verdict rule (gitops.gates). `baseline` in a
monitor gate is the metric of the same name in the deployed release's mlspec.lock: the newest
release tag, or the release a later rollback redeployed, or `--base REF`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec.errors import CheckFailed, Diagnostic, MlspecError, Outcome
from mlspec.fsutil import write_atomic
from mlspec.monitor.sample import SampleError
from mlspec.spec.gates import Gate, parse_gate
from mlspec.tables import num, table

if TYPE_CHECKING:
    from mlspec.gitops.gates import GateResult
    from mlspec.spec.inference import Monitor
    from mlspec.spec.loader import LoadedSpec

KEY = ("inference", "monitor")


def _located(loaded: LoadedSpec, field: tuple[str, ...], err: SampleError) -> MlspecError:
    return MlspecError([loaded.diag((*KEY, *field), err.message, "monitor.input", err.hint)])


def _inside(loaded: LoadedSpec, mon: Monitor) -> None:
    """Right before use, as validate does (graph): no monitor file may lead out of the
    repository through a symlink; it unlinks and writes `metrics`, reads the others."""
    from mlspec.spec.graph import _monitor_outside

    diags = _monitor_outside(loaded, loaded.spec)
    if diags:
        raise MlspecError(diags)


def _metrics_error(loaded: LoadedSpec, rel: str, doing: str, exc: OSError) -> MlspecError:
    return MlspecError([loaded.diag((*KEY, "metrics"), f"cannot {doing} the metrics file "
                                    f"'{rel}': {exc.strerror}", "monitor.metrics",
                                    "the metrics path must name a file in a directory")])


def monitor(loaded: LoadedSpec, base: str | None = None) -> Outcome:
    inf = loaded.spec.inference
    mon = inf.monitor if inf is not None else None
    if mon is None:
        raise MlspecError([loaded.diag(("inference",) if inf else (), "the spec declares no "
                                       "`inference.monitor`", "monitor.none",
                                       "add inference.monitor with a schedule and a drift "
                                       "check or a command")])
    _inside(loaded, mon)
    notes: list[str] = []
    if mon.metrics is not None:  # last run's numbers must not pass for this run's
        try:
            (loaded.root / mon.metrics).unlink(missing_ok=True)
        except OSError as exc:
            raise _metrics_error(loaded, mon.metrics, "remove", exc) from None
    if mon.command is not None:
        _run_command(loaded, mon.command)
        _inside(loaded, mon)  # again: the command may have made a link since
    metrics: dict[str, float] = {}
    if mon.metrics is not None and mon.command is not None:
        metrics.update(_custom_metrics(loaded, mon.metrics))
    if mon.drift is not None:
        metrics.update(_drift(loaded, mon))
    if mon.metrics is not None:
        target = loaded.root / mon.metrics
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise _metrics_error(loaded, mon.metrics, "write", exc) from None
        notes.append(f"wrote {mon.metrics}")
    gates = [g for g in map(parse_gate, mon.gates) if isinstance(g, Gate)]
    results: list[GateResult] = []
    ref: str | None = None
    if gates:
        from mlspec.gitops.gates import render, results_of

        ref, baseline = _baseline(loaded, base) if any(g.relative for g in gates) else (None, {})
        results = results_of(gates, metrics, baseline)
        notes.append(render(results, ref).rstrip("\n"))
    rows = [[k, num(v)] for k, v in sorted(metrics.items())]
    text = "\n".join([table(["metric", "value"], rows).rstrip("\n"), *notes]) if rows else \
        "\n".join(["no metrics", *notes])
    data = {"metrics": metrics, "gates": [r.to_data() for r in results], "baseline_ref": ref}
    failed = [r.gate for r in results if r.verdict == "FAIL"]
    warn = _job_summary(metrics, results, ref)
    return Outcome(code=1 if failed else 0, text=text, data=data,
                   stderr=(f"monitor gates failed: {', '.join(failed)}\n" if failed else "")
                   + warn)


def _job_summary(metrics: dict[str, float], results: list[GateResult], ref: str | None) -> str:
    """In a GitHub Actions job (GITHUB_STEP_SUMMARY set): the metrics and verdicts appended to
    the job's summary page, where each scheduled run's numbers stay readable. Returns a warning
    for stderr when the file cannot be written ('' otherwise)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return ""
    from mlspec.gitops.metricsdiff import md_code, md_escape

    lines = ["### mlspec monitor", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---:|",
                  *(f"| {md_escape(k)} | {num(v)} |" for k, v in sorted(metrics.items())), ""]
    else:
        lines += ["No metrics.", ""]
    if results:
        lines += [f"Gates (baseline: {md_code(ref) if ref else 'none'}):", "",
                  "| gate | value | verdict |", "|---|---:|---|",
                  *(f"| {md_code(r.gate)} | {num(r.value)} | "
                    f"{'❌ FAIL' if r.verdict == 'FAIL' else md_escape(r.verdict)} |"
                    for r in results), ""]
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    except OSError as exc:
        return f"warning: cannot write the job summary: {exc.strerror or exc}\n"
    return ""


def _run_command(loaded: LoadedSpec, command: str) -> None:
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "MLSPEC_STEP": "monitor"}
    try:
        rc = subprocess.run(["/bin/sh", "-c", command], cwd=loaded.root, env=env,
                            stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False).returncode
    except OSError as exc:
        raise MlspecError([loaded.diag((*KEY, "command"), f"cannot start the monitor command: "
                                       f"{exc.strerror}", "monitor.command")]) from None
    if rc != 0:
        raise CheckFailed(f"the monitor command exited with status {rc}")


def _custom_metrics(loaded: LoadedSpec, rel: str) -> dict[str, float]:
    from mlspec.run.metricsfile import MetricsError, read_metrics

    try:
        return read_metrics(loaded.root, rel)
    except FileNotFoundError:
        return {}  # a command that measures nothing itself: the drift check may still
    except MetricsError as exc:
        raise MlspecError([loaded.diag((*KEY, "metrics"), "the monitor command's output: "
                                       + str(exc).removeprefix("its "), "monitor.metrics")]
                          ) from None


def _drift(loaded: LoadedSpec, mon: Monitor) -> dict[str, float]:
    from mlspec.monitor.drift import drift_metrics
    from mlspec.monitor.profile import read_profile

    drift = mon.drift
    assert drift is not None
    try:
        profile = read_profile(loaded.root / drift.reference, drift.reference)
    except SampleError as err:
        step = loaded.graph.producer_of(drift.reference)
        if step is not None and not (loaded.root / drift.reference).exists():
            err.hint = (f"it is an out of step '{step}' (not committed): `mlspec run {step}`, "
                        f"or `mlspec pull {step}` from the remote")
        raise _located(loaded, ("drift", "reference"), err) from None
    where: tuple[str, ...] = ("drift", "live")
    if drift.features and any(f not in profile.features for f in drift.features):
        where = ("drift", "features")
    try:
        return drift_metrics(profile, loaded.root / drift.live, drift.live, drift.features)
    except SampleError as err:
        raise _located(loaded, where, err) from None


def _baseline(loaded: LoadedSpec, base: str | None) -> tuple[str | None, dict[str, float]]:
    """The deployed release's metrics: at `base`, else at the release taken as deployed (the
    newest release tag, or the one a later rollback redeployed: gitops.production.deployed,
    the rule the monitor records and `mlspec rollback` follow)."""
    from mlspec.gitops.gitrefs import lock_at

    try:
        if base is not None:
            lock = lock_at(loaded.root, base)
            return base, (lock.metrics() if lock is not None else {})
        from mlspec.gitops.production import deployed

        found = deployed(loaded)
        if found is None:
            return "none: no release tag yet", {}
        tag = found[0]
        lock = lock_at(loaded.root, f"refs/tags/{tag}")
        if lock is None:
            return f"none: {tag} has no mlspec.lock", {}
        return tag, lock.metrics()
    except MlspecError as err:
        if base is not None:
            raise
        return "none: " + "; ".join(d.message for d in err.diagnostics), {}


def profile(data: Path, output: Path, features: list[str], exclude: list[str]) -> Outcome:
    """`mlspec profile DATA -o PATH`: the reference profile of a training sample."""
    from mlspec.monitor.profile import build_profile

    try:
        prof = build_profile(data, str(data), features or None, exclude)
    except SampleError as err:
        raise MlspecError([Diagnostic(str(data), 0, 0, err.message, "profile.input", err.hint)]
                          ) from None
    try:
        if output.is_dir():
            raise IsADirectoryError(21, "is a directory")
        output.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(output, prof.to_json())
    except OSError as exc:
        raise MlspecError([Diagnostic(str(output), 0, 0, f"cannot write the profile: "
                                      f"{exc.strerror or exc}", "profile.output",
                                      "-o names a file to write, in a directory")]) from None
    return Outcome(text=f"wrote {output}: {len(prof.features)} features, {prof.rows} rows "
                   f"({', '.join(list(prof.features)[:10])})",
                   data={"output": str(output), "rows": prof.rows,
                         "features": list(prof.features)})
