"""The commands of the model in production: `mlspec monitor`, `profile`, `serve`, `alert`
and `rollback`.

Plain functions that mlspec.cli registers on its typer app (`app.command()(fn)`), so that the
app's module stays short and this one needs nothing from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlspec.cliout import DEFAULT_SPEC, JsonOpt, SpecOpt, _finish, _spec


def monitor(
    spec: SpecOpt = DEFAULT_SPEC, as_json: JsonOpt = False,
    base: Annotated[str | None, typer.Option("--base", metavar="REF", help="git ref whose lock "
                    "gives `baseline`; default: the newest release tag")] = None,
    record: Annotated[bool, typer.Option(
        "--record/--no-record", help="keep this run's metrics and gate verdicts as a monitor "
        "record in the remote store (project.remote / MLSPEC_REMOTE), when one is set; a "
        "failed upload is a warning: the gates decide the exit code")] = True,
) -> None:
    """Run inference.monitor: its command, the drift check, its gates (exit 1 when one fails),
    then record the run in the remote store, which `mlspec metrics --history` and
    `mlspec report` read.

    Example: mlspec monitor --json
    """
    from mlspec import api

    _finish(api.monitor(_spec(spec), base, record), as_json)


def profile(
    data: Annotated[Path, typer.Argument(metavar="DATA", help=".csv, .parquet or .jsonl")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="profile file")],
    feature: Annotated[list[str] | None, typer.Option(metavar="COL", help="profile only COL "
                       "(repeatable); default: every numeric column")] = None,
    exclude: Annotated[list[str] | None, typer.Option(metavar="COL", help="leave COL out, e.g. "
                       "the label (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the reference profile (per-feature quantiles) the drift check compares with.

    Example: mlspec profile data/train.csv --exclude species -o model/profile.json
    """
    from mlspec import api

    _finish(api.profile(data, output, feature or [], exclude or []), as_json)


def serve(
    model: Annotated[Path, typer.Argument(
        metavar="MODEL", help="a pickled or joblib scikit-learn model")],
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port")] = 8080,
    host: Annotated[str, typer.Option(metavar="HOST", help="address to bind")] = "127.0.0.1",
    allow_unlocked: Annotated[bool, typer.Option(
        "--allow-unlocked",
        help="serve a model that mlspec.lock does not record with these exact bytes "
        "(no lock, no entry, or a different hash). Unpickling runs any code the file holds: "
        "use it only for a file you trust as you trust code you run")] = False,
    no_metrics: Annotated[bool, typer.Option(
        "--no-metrics", help="no GET /metrics (Prometheus' text format) and no "
        "instrumentation of requests")] = False,
    model_version: Annotated[str, typer.Option(
        metavar="TEXT", envvar="MLSPEC_MODEL_VERSION",
        help="the model's version, shown as a label of mlspec_model_info in /metrics")
    ] = "unversioned",
    sample_log: Annotated[Path | None, typer.Option(
        metavar="PATH", help="append a random sample of the answered rows to this file "
        "(JSON lines: ts, inputs, prediction), for drift monitoring")] = None,
    sample_rate: Annotated[float, typer.Option(
        metavar="RATE", min=0.0001, max=1.0,
        help="the fraction of answered rows the sample log keeps")] = 0.1,
    sample_max_bytes: Annotated[int, typer.Option(
        metavar="BYTES", min=1024, help="past this size the sample log is renamed to PATH.1 "
        "(replacing it) and begins again: at most twice this on disk")] = 64 * 1024 * 1024,
) -> None:
    """Serve a scikit-learn model over HTTP: POST /predict, GET /healthz, GET /metadata,
    GET /metrics.

    Loading a pickle or joblib file runs code from that file. So the model is loaded only
    when the mlspec.lock of its repository records its exact bytes (sha256, checked before
    unpickling): a file that `mlspec run` produced. Never serve a model file from elsewhere.

    Example: mlspec serve model/model.pkl --port 8080 --host 0.0.0.0

    Example: mlspec serve model/model.pkl --sample-log logs/requests.jsonl
    """
    from mlspec import api

    _finish(api.serve(model, host=host, port=port, allow_unlocked=allow_unlocked,
                      metrics=not no_metrics, model_version=model_version,
                      sample_log=sample_log, sample_rate=sample_rate,
                      sample_max_bytes=sample_max_bytes))


def alert(
    ref: Annotated[str, typer.Option("--ref", metavar="BRANCH",
                                     help="branch the retrain runs on")] = "main",
    report: Annotated[Path | None, typer.Option("--report", metavar="FILE",
                                                help="the monitor's output")] = None,
    retrain: Annotated[bool, typer.Option(help="start the refresh-and-retrain run")] = True,
    issue: Annotated[bool, typer.Option(help="open or update the one monitoring issue")] = True,
    token_variable: Annotated[str, typer.Option(
        "--token-variable", metavar="NAME",
        help="GitLab: the CI/CD variable with an api-scope token for issues")] = (
        "MLSPEC_GITLAB_TOKEN"),
    passed: Annotated[bool, typer.Option(
        "--passed", help="after a passing monitor: close the open monitoring issue (if any) "
        "with a comment naming the commit and run; nothing else")] = False,
) -> None:
    """In CI, after a failed monitor: start the retrain and open or update one issue.

    Example: mlspec alert --ref main --report monitor-report.txt
    """
    from mlspec import api

    _finish(api.alert(report, ref, retrain, issue, token_variable, passed))


def rollback(
    version: Annotated[str | None, typer.Argument(
        metavar="VERSION", help="the release to redeploy (1.2.0 or v1.2.0); default: the "
        "release before the deployed one")] = None,
    spec: SpecOpt = DEFAULT_SPEC,
    as_json: JsonOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what it would do")] = False,
    ci: Annotated[str | None, typer.Option(metavar="CI", help="github or gitlab (default: the "
                                           "first of ci.targets)")] = None,
    resolve: Annotated[bool, typer.Option("--resolve", help="in the rollback job: check "
                                          "VERSION and print digest=… only")] = False,
    digest: Annotated[str | None, typer.Option(metavar="DIGEST", help="the digest CI was "
                                               "given (checked against the lineage)")] = None,
) -> None:
    """Redeploy a release's exact image digest through the release pipeline's rollback jobs.

    Records the rollback as the tag rollback/TAG/N, then triggers the pipeline with
    GITHUB_TOKEN / GITLAB_TOKEN, or prints the command that does.

    Example: mlspec rollback 1.2.0 --dry-run
    """
    from mlspec import api

    _finish(api.rollback(_spec(spec), version, digest=digest, resolve_only=resolve,
                         dry_run=dry_run, ci=ci), as_json)
