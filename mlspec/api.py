"""The functions the CLI calls. Each returns an Outcome (exit code, diagnostics, output).

Bad input raises MlspecError (exit 2); a failed check raises CheckFailed (exit 1). Heavy
modules are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec

from mlspec.errors import CheckFailed, Diagnostic, MlspecError, Outcome

if TYPE_CHECKING:
    from mlspec.gitops.production import Production
    from mlspec.spec.loader import LoadedSpec

P = ParamSpec("P")


def _outcome(fn: Callable[P, Outcome]) -> Callable[P, Outcome]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Outcome:
        try:
            return fn(*args, **kwargs)
        except MlspecError as err:
            return Outcome.from_error(err)
        except CheckFailed as err:
            return Outcome(code=1, stderr=f"{err}\n")
        except KeyboardInterrupt:
            return Outcome(code=130, stderr="interrupted\n")

    return wrapper


def load(spec_path: Path) -> LoadedSpec:
    """Load and validate a spec, raising MlspecError with every problem."""
    from mlspec.spec.loader import load_spec

    return load_spec(spec_path, display=str(spec_path))


@_outcome
def validate(spec_path: Path) -> Outcome:
    from mlspec.spec.ci import remote_diagnostics

    loaded = load(spec_path)
    spec = loaded.spec
    diags = remote_diagnostics(loaded, spec.ci, spec.project.remote, list(spec.ci.targets))
    if diags:
        raise MlspecError(diags)
    if any(s.estimator for s in loaded.graph.steps.values()):
        from mlspec.run.sklearn_step import validate_builtin  # imports sklearn: only for these

        validate_builtin(loaded)
    n = len(loaded.graph.order)
    return Outcome(text=f"{spec_path}: ok ({n} step{'s' if n != 1 else ''})")


@_outcome
def graph(spec_path: Path, fmt: str) -> Outcome:
    from mlspec.spec.graph import monitor_upstream, render_graph

    loaded = load(spec_path)
    monitor = monitor_upstream(loaded.graph, loaded.spec)
    return Outcome(text=render_graph(loaded.graph, fmt, monitor))


@_outcome
def schema() -> Outcome:
    from mlspec.spec.schema import schema_text

    return Outcome(text=schema_text())


@_outcome
def init(directory: Path, name: str | None, targets: str | None = None,
         serving: bool = False, nested: bool = False) -> Outcome:
    from mlspec.scaffold import scaffold

    return scaffold(directory, name, targets, serving, nested)


@_outcome
def compile(spec_path: Path, targets: str | None, check: bool, force: bool) -> Outcome:
    from mlspec.compile.driver import compile_spec
    from mlspec.gitignore import ensure

    loaded = load(spec_path)
    note = ensure(loaded, write=not check)  # --check writes nothing
    out = compile_spec(loaded, targets, check=check, force=force)
    out.stderr = note + out.stderr
    return out


@_outcome
def run(spec_path: Path, steps: list[str], force: bool, sets: list[str], verify: bool,
        sweep: bool, base: str | None, gates: bool, jobs: int | None = None,
        pull: bool = True) -> Outcome:
    from mlspec.gitignore import ensure
    from mlspec.run.runner import run_steps

    loaded = load(spec_path)
    fetch = None
    if pull and (loaded.spec.project.remote is not None or os.environ.get("MLSPEC_REMOTE")):
        from mlspec.remote.commands import fetcher

        fetch = fetcher(loaded)
    note = ensure(loaded)  # outputs are reproduced from the lock: never committed
    out = run_steps(loaded, steps, force=force, sets=sets, verify=verify, sweep=sweep,
                    base=base, gates=gates, jobs=jobs, fetch=fetch)
    out.stderr = note + out.stderr
    return _explain_missing_metrics(loaded, out)


def _explain_missing_metrics(loaded: LoadedSpec, out: Outcome) -> Outcome:
    """A gate on a metric the run did not write says which file lacks it (issue 12.3)."""
    results = out.data.get("gates", []) if isinstance(out.data, dict) else []
    missing = sorted({str(g["metric"]) for g in results if g.get("value") is None})
    if not missing:
        return out
    from mlspec.gitops.metricsdiff import missing_metric
    from mlspec.run.lock import read_lock

    lock = read_lock(loaded.root)
    notes = "".join(f"missing metric '{m}': {missing_metric(loaded, lock, m)}\n"
                    for m in missing)
    out.text = out.text.rstrip("\n") + "\n" + notes
    return out


@_outcome
def status(spec_path: Path, exit_code: bool = False, ci_keys: bool = False) -> Outcome:
    """`mlspec status`; with exit_code, exit 1 when any step is stale (git diff --exit-code);
    with ci_keys, the CI cache keys instead (mlspec.run.cikeys)."""
    from mlspec.run.runner import status as runner_status

    if ci_keys:
        from mlspec.run.cikeys import keys_outcome

        return keys_outcome(load(spec_path))

    loaded = load(spec_path)
    remote_has = None
    if loaded.spec.project.remote is not None or os.environ.get("MLSPEC_REMOTE"):
        from mlspec.remote.commands import availability

        remote_has = availability(loaded)
    out = runner_status(loaded, remote_has)
    if exit_code and out.code == 0 and (out.data or {}).get("stale"):
        out.code = 1
    return out


@_outcome
def gc(spec_path: Path, yes: bool, remote: bool = False, keep_last: int | None = None,
       keep_days: int | None = None) -> Outcome:
    """`mlspec gc`: list (or, with yes, delete) local cache runs the lock does not name; with
    remote, the remote's step runs no release tag and no recent default-branch commit names
    (the keys come from gitops, the remote's side from remote.retention)."""
    wrong = ("--keep-last and --keep-days apply to --remote" if not remote and (
        keep_last is not None or keep_days is not None)
        else "--keep-last must be at least 0" if keep_last is not None and keep_last < 0
        else "--keep-days must be at least 1" if keep_days is not None and keep_days < 1 else "")
    if wrong:
        raise MlspecError([Diagnostic.nowhere(wrong, "cli.usage")])
    loaded = load(spec_path)
    if not remote:
        from mlspec.run.cache_gc import collect

        return collect(loaded.root, delete=yes)
    from mlspec.gitops.referenced import DEFAULT_KEEP_LAST, referenced
    from mlspec.remote.commands import remote_of
    from mlspec.remote.retention import collect as remote_collect

    remote_of(loaded)  # no remote configured: say so before reading git
    ci = loaded.spec.ci
    kept = referenced(loaded.root, ci.default_branch, ci.tag_prefix,
                      DEFAULT_KEEP_LAST if keep_last is None else keep_last, keep_days)
    return remote_collect(loaded, kept.keys, kept.describe(), kept.to_data(), delete=yes)


@_outcome
def push(spec_path: Path, steps: list[str], sets: list[str] | None = None) -> Outcome:
    """`mlspec push`: upload the runs of up-to-date steps to the remote (mlspec.remote)."""
    from mlspec.remote.commands import push as remote_push

    return remote_push(load(spec_path), steps, sets or [])


@_outcome
def pull(spec_path: Path, steps: list[str], release: str | None = None) -> Outcome:
    """`mlspec pull`: restore stale steps whose key the remote holds, every hash checked; with
    `release`, exactly the runs that release tag pins, by manifest digest."""
    if release is None:
        from mlspec.remote.commands import pull as remote_pull

        return remote_pull(load(spec_path), steps)
    if steps:
        raise MlspecError([Diagnostic.nowhere("--release pulls every run the tag pins: name "
                                              "no steps", "cli.usage")])
    from mlspec.gitops.pins import release_pins
    from mlspec.remote.commands import remote_of
    from mlspec.remote.promote import pull_release

    loaded = load(spec_path)
    remote_of(loaded)  # no remote: said before git is read
    tag, pins, _ = release_pins(loaded, release)
    return pull_release(loaded, tag, pins)


@_outcome
def metrics(spec_path: Path, diff: str | None, fmt: str, history: bool = False,
            limit: int | None = None) -> Outcome:
    """`mlspec metrics`: against a base (exit 1 on a failed gate), or with history, the
    declared metrics over the default branch's last `limit` commits and release tags."""
    wrong = ("--diff compares with one base; --history lists many: use one" if history and diff
             else "--limit applies to --history" if limit is not None and not history
             else "--format csv applies to --history" if fmt == "csv" and not history
             else "--limit must be at least 1" if limit is not None and limit < 1 else "")
    if wrong:
        raise MlspecError([Diagnostic.nowhere(wrong, "cli.usage")])
    if history:
        from mlspec.gitops.history import DEFAULT_LIMIT, history_outcome

        loaded = load(spec_path)
        out = history_outcome(loaded, limit or DEFAULT_LIMIT, fmt)
        prod = _production(loaded, limit or PRODUCTION_LIMIT)
        if prod is None:
            return out
        from mlspec.gitops.production import with_history

        return with_history(out, fmt, prod)
    from mlspec.gitops.commands import metrics_outcome

    return metrics_outcome(load(spec_path), diff, fmt)


@_outcome
def report(spec_path: Path, base: str | None, output: Path | None) -> Outcome:
    from mlspec.gitops.commands import report_outcome

    loaded = load(spec_path)
    return report_outcome(loaded, base, output, _production(loaded, PRODUCTION_LIMIT))


PRODUCTION_LIMIT = 10  # monitor records read and shown by default


def _production(loaded: LoadedSpec, limit: int) -> Production | None:
    """The production section of `metrics --history` and `report` (None: the spec has no
    monitor): the newest monitor records read from the remote (remote.monitorrec) and shown by
    gitops.production, which does not import remote. Without a remote nothing is read (no git,
    no network); a remote that cannot be read is a note, not a failure."""
    inf = loaded.spec.inference
    if inf is None or inf.monitor is None:
        return None
    from mlspec.gitops.production import gather
    from mlspec.remote.url import BadRemote, configured

    try:
        remote = configured(loaded.spec.project.remote)
    except BadRemote as exc:
        return gather(loaded, None, [], [f"MLSPEC_REMOTE: {exc}"], limit)
    if remote is None:
        return gather(loaded, None, [], [], limit)
    from mlspec.remote.errors import RemoteError
    from mlspec.remote.monitorrec import newest

    try:
        records, notes = newest(remote, limit)
    except (RemoteError, OSError) as err:
        why = err.message if isinstance(err, RemoteError) else str(err.strerror or err)
        records, notes = [], [f"the monitor records could not be read: {why}"]
    return gather(loaded, str(remote), records, notes, limit)


def _record_monitor(loaded: LoadedSpec, out: Outcome) -> Outcome:
    """After `mlspec monitor` judged: one monitor record in the remote, when one is set. A
    failure is a warning on stderr: the gates alone decide the exit code (a registry outage
    must not start a retrain)."""
    from mlspec.remote.url import BadRemote, configured

    try:
        remote = configured(loaded.spec.project.remote)
    except BadRemote as exc:
        out.stderr += f"warning: the monitor run is not recorded: MLSPEC_REMOTE: {exc}\n"
        return out
    if remote is None or not isinstance(out.data, dict):
        return out
    import datetime

    from mlspec import __version__, prodrecord
    from mlspec.gitops.production import deployed
    from mlspec.remote.errors import RemoteError
    from mlspec.remote.monitorrec import put_record

    try:
        release = deployed(loaded)
    except MlspecError:
        release = None
    metrics, dropped = prodrecord.clean(out.data.get("metrics") or {})
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = prodrecord.Record(
        now, release[0] if release else None, (release[1] or None) if release else None,
        metrics, prodrecord.clean_gates(out.data.get("gates") or []), prodrecord.run_url(),
        __version__)
    try:
        tag = put_record(remote, record)
    except (RemoteError, OSError) as err:
        why = (err.message + (f" ({err.hint})" if err.hint else "")
               if isinstance(err, RemoteError) else str(err.strerror or err))
        out.stderr += (f"warning: the monitor run is not recorded in {remote}: {why}; the "
                       "gates decide the exit code\n")
        out.data["record"] = None
        return out
    out.stderr += f"recorded the monitor run in {remote} as {tag}" + (
        f" ({dropped} metric(s) left out: not finite or badly named)" if dropped else "") + "\n"
    out.data["record"] = tag
    return out


@_outcome
def build(spec_path: Path, which: str, push: bool, tags: list[str]) -> Outcome:
    from mlspec.image.build import build_image

    return build_image(load(spec_path), which, push=push, tags=tags)


@_outcome
def release(spec_path: Path, version: str, message: str | None, push: bool) -> Outcome:
    """With a remote, the release pins its step runs (mlspec.remote.promote.pinner)."""
    from mlspec.gitops.commands import release as gitops_release

    loaded = load(spec_path)
    pin = None
    if loaded.spec.project.remote is not None or os.environ.get("MLSPEC_REMOTE"):
        from mlspec.remote.promote import pinner

        pin = pinner(loaded)
    return gitops_release(loaded, version, message=message, push=push, pin=pin)


@_outcome
def models(spec_path: Path) -> Outcome:
    from mlspec.gitops.commands import models as gitops_models

    return gitops_models(load(spec_path))


@_outcome
def lineage(spec_path: Path, ref: str, model_card: bool = False) -> Outcome:
    from mlspec.gitops.commands import lineage as gitops_lineage

    return gitops_lineage(load(spec_path), ref, model_card=model_card)


@_outcome
def rollback(spec_path: Path, version: str | None, *, digest: str | None = None,
             resolve_only: bool = False, dry_run: bool = False,
             ci: str | None = None) -> Outcome:
    from mlspec.gitops.rollback import rollback as gitops_rollback

    return gitops_rollback(load(spec_path), version, digest=digest or None,
                           resolve_only=resolve_only, dry_run=dry_run, ci=ci)


@_outcome
def monitor(spec_path: Path, base: str | None = None, record: bool = True) -> Outcome:
    from mlspec.monitor.commands import monitor as run_monitor

    loaded = load(spec_path)
    out = run_monitor(loaded, base)
    return _record_monitor(loaded, out) if record else out


@_outcome
def profile(data: Path, output: Path, features: list[str], exclude: list[str]) -> Outcome:
    from mlspec.monitor.commands import profile as write_profile

    return write_profile(data, output, features, exclude)


@_outcome
def serve(model: Path, host: str, port: int, allow_unlocked: bool = False,
          metrics: bool = True, model_version: str = "unversioned",
          sample_log: Path | None = None, sample_rate: float = 0.1,
          sample_max_bytes: int = 64 * 1024 * 1024) -> Outcome:
    from mlspec.image.serve import Monitoring, serve_model

    return serve_model(model, host=host, port=port, allow_unlocked=allow_unlocked,
                       monitoring=Monitoring(metrics, model_version, sample_log, sample_rate,
                                             sample_max_bytes))


@_outcome
def merge_lock(base: Path, ours: Path, theirs: Path) -> Outcome:
    from mlspec.gitops.lockmerge import merge_lock_files

    return merge_lock_files(base, ours, theirs)


@_outcome
def alert(report: Path | None, ref: str, retrain: bool, issue: bool,
          token_variable: str, passed: bool = False) -> Outcome:
    from mlspec.gitops.alert import alert as run_alert

    return run_alert(report, ref, retrain_run=retrain, issue=issue,
                     token_variable=token_variable, passed=passed)
