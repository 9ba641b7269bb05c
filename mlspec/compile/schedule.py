"""The schedule flow: the data refresh and retrain, the monitor, and what a failed monitor
does (mlspec alert: start the retrain, open or update the one issue) or a passing one does
(mlspec alert --passed: close that issue). Split from
mlspec.compile.flows, whose helpers it shares; target-neutral like it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec.compile.flows import READ, PlanContext, _q, _total_timeout
from mlspec.compile.model import (
    LOCK,
    REPORT,
    Artifact,
    CiVar,
    Command,
    EnvValue,
    Flow,
    Job,
    Permission,
    Trigger,
)
from mlspec.compile.store import with_remote
from mlspec.spec.gates import Gate, parse_gate

if TYPE_CHECKING:
    from mlspec.spec.inference import Monitor


MONITOR_REPORT = "monitor-report.txt"  # the monitor job's output; `mlspec alert` quotes it
_MONITOR = f"""\
status=0
mlspec monitor > {MONITOR_REPORT} 2>&1 || status=$?
cat {MONITOR_REPORT}
exit "$status\""""
RETRAIN = "refresh"  # the schedule flow's mode a failed monitor asks for (Flow.modes)


def schedule_flow(ctx: PlanContext) -> Flow:
    spec = ctx.loaded.spec
    g = ctx.loaded.graph
    jobs: list[Job] = []
    crons: list[str] = []
    mon = spec.inference.monitor if spec.inference is not None else None
    retrain = mon is not None and mon.on_failure.retrain
    if (spec.data is not None and spec.data.refresh) or retrain:
        cron = spec.data.refresh if spec.data is not None else None
        when: list[Trigger] = []
        if cron:
            crons.append(cron)
            when.append(Trigger("schedule", cron))
        when.append(Trigger("manual"))
        if retrain:  # the run a failed monitor starts: this job only, so it cannot loop
            when.append(Trigger("manual", RETRAIN))
        data_steps = [n for n in g.order if g.stage[n] == "data"]
        outs = sorted({o for n in g.order for o in ctx.step(n).all_outs()})
        jobs.append(Job(
            id="refresh", name="refresh the data and retrain", kind="refresh",
            steps=tuple(g.order), full_history=True,
            commands=(Command("refresh the data",
                              f"mlspec run {_q(data_steps)} --force --no-gates"
                              if data_steps else "mlspec run --force --no-gates"),
                      Command("retrain, evaluate and check the gates", "mlspec run"),
                      Command("write the report", f"mlspec report -o {REPORT}")),
            summary=(REPORT,), uploads=(Artifact("mlspec-refresh", (*outs, LOCK, REPORT)),),
            upload_always=True, permissions=(READ,), when=tuple(when),
            timeout_minutes=_total_timeout(ctx, g.order)))
    if mon is not None:
        if mon.schedule not in crons:
            crons.append(mon.schedule)
        # `mlspec monitor` runs the spec's command, the drift check and the monitor's gates;
        # its output (metrics, gate verdicts, the command's own) is the report mlspec alert files
        mon_when = (Trigger("schedule", mon.schedule), Trigger("manual"))
        kept = Artifact("mlspec-monitor", (MONITOR_REPORT, *([mon.metrics] if mon.metrics else [])))
        # a gate relative to `baseline` reads the newest release tag's lock: a full clone
        relative = any(isinstance(g, Gate) and g.relative
                       for g in (parse_gate(t) for t in mon.gates))
        jobs.append(Job(
            id="monitor", name="monitor the deployed model", kind="monitor",
            commands=(Command("monitor", _MONITOR),), permissions=(READ,),
            full_history=relative, uploads=(kept,), upload_always=True, when=mon_when,
            timeout_minutes=30))
        if mon.on_failure.retrain or mon.on_failure.issue:
            jobs.append(_monitor_failed(ctx, mon, mon_when, kept))
        if mon.on_failure.issue:
            jobs.append(_monitor_passed(ctx, mon_when))
    triggers = (*(Trigger("schedule", c) for c in crons), Trigger("manual"))
    return Flow("schedule", "mlspec schedule", triggers,
                tuple(with_remote(ctx.loaded, "schedule", jobs)), cancel_in_progress=False,
                modes=(RETRAIN,) if retrain else ())


def _monitor_failed(ctx: PlanContext, mon: Monitor, when: tuple[Trigger, ...],
                    kept: Artifact) -> Job:
    """After a failed monitor job: `mlspec alert` starts the retrain (a run of mode `refresh`,
    which runs the refresh job alone: no monitor, so no loop) and opens or updates the one
    issue labelled mlspec-monitor. Tokens: the job's own (GitHub: `actions: write` and
    `issues: write` here only; GitLab: CI_JOB_TOKEN triggers, a named api token writes issues).
    """
    ci = ctx.loaded.spec.ci
    args = ["mlspec", "alert", "--ref", ci.default_branch, "--report", MONITOR_REPORT]
    perms = [READ]
    if mon.on_failure.retrain:
        perms.append(Permission("actions", "write", "start the retrain (workflow_dispatch)"))
    else:
        args.append("--no-retrain")
    if mon.on_failure.issue:
        perms.append(Permission("issues", "write", "open or update the one monitoring issue"))
    else:
        args.append("--no-issue")
    if "gitlab_token" in ci.secrets:  # GitLab: CI_JOB_TOKEN cannot write issues
        args += ["--token-variable", ci.secrets["gitlab_token"]]
    env: dict[str, EnvValue] = {"MLSPEC_TOKEN": CiVar("token"), "RUN_URL": CiVar("run_url")}
    return Job(
        id="monitor-failed", name="the monitor failed: retrain and update the issue",
        kind="alert", needs=("monitor",),
        downloads=(Artifact(kept.name, kept.paths, optional=True),),
        commands=(Command("mlspec alert", _q(args), env=env),),
        permissions=tuple(perms), when=when, on_failure=True, timeout_minutes=10)


def _monitor_passed(ctx: PlanContext, when: tuple[Trigger, ...]) -> Job:
    """After a passing monitor job: `mlspec alert --passed` closes the one open issue labelled
    mlspec-monitor, with a comment naming the commit and the run; none open, nothing done.
    Tokens: GitHub the job's own with `issues: write` here only; GitLab the named api token."""
    ci = ctx.loaded.spec.ci
    args = ["mlspec", "alert", "--passed"]
    if "gitlab_token" in ci.secrets:
        args += ["--token-variable", ci.secrets["gitlab_token"]]
    env: dict[str, EnvValue] = {"MLSPEC_TOKEN": CiVar("token"), "RUN_URL": CiVar("run_url")}
    return Job(
        id="monitor-passed", name="the monitor passed: close the issue", kind="alert",
        needs=("monitor",), commands=(Command("mlspec alert --passed", _q(args), env=env),),
        permissions=(READ, Permission("issues", "write", "close the one monitoring issue")),
        when=when, timeout_minutes=10)
