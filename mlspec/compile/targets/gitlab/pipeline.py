"""GitLab CI renderer: the compile plan → `.gitlab-ci.yml` (plus helper scripts it calls).

One pipeline file carries the plan's three flows. `workflow: rules` picks exactly one flow per
event and names it in `MLSPEC_FLOW`; every job's `rules:` select it by that flow (and, for tag
and deploy jobs, re-check the protected tag themselves):

    merge request, web         → experiment      schedule → schedule (MLSPEC_SCHEDULE picks
    protected release tag,                                   refresh or monitor)
    push to the default branch → release         anything else → no pipeline
    api/web with MLSPEC_ROLLBACK_TO → rollback (the release flow's rollback jobs only)

What is GitLab-specific is derived here, not in the plan: job names (`<flow>:<id>`), stages
(graph order), cache keys (computed at run time by the first job, passed on as a dotenv
report), the merge-request note and the release (GitLab API through small Python helpers,
since CI_JOB_TOKEN cannot write notes and no GitHub CLI exists here). Every string scalar is
quoted (`mlspec.compile.render.quote`) because GitLab reads YAML 1.1.

What GitLab has no equivalent for is left out, on purpose: GitHub's provenance attestation
(deploy jobs get an `id_tokens:` token for the deploy itself), token permissions (CI_JOB_TOKEN
is fixed), and manual runs of the release and schedule flows (a schedule's play button runs it
on demand; a web pipeline runs the experiment). Environment approvals and pipeline schedules
live in GitLab's settings; the file's header says what to configure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlspec.compile import checklist
from mlspec.compile import render as layer
from mlspec.compile.targets.gitlab.conditions import branch_condition, tag_condition
from mlspec.compile.targets.gitlab.jobs import (
    API_SOURCES,
    PIP_CACHE,
    PIPELINE_FILE,
    ROLLBACK_FLOW,
    GLJob,
    flow_jobs,
)

if TYPE_CHECKING:
    from mlspec.compile.model import Plan

PIPELINE = PIPELINE_FILE
FIXED_STAGES_BEFORE = ("check",)
FIXED_STAGES_AFTER = ("verify", "report", "notify", "deploy", "release", "refresh", "monitor",
                      "alert")


@dataclass
class Rule:
    cond: str
    flow: str
    comment: str


@dataclass
class Pipeline:
    """Everything the template prints, already in GitLab's terms."""

    rules: list[Rule]
    stages: list[str]
    jobs: list[GLJob]
    schedules: list[tuple[str, str, str]]  # (cron, MLSPEC_SCHEDULE value, what it runs)
    schedule_options: list[str]
    notes: list[str] = field(default_factory=list)  # the settings checklist (compile.checklist)


def workflow_rules(plan: Plan) -> list[Rule]:
    rules: list[Rule] = []
    sched = plan.flows["schedule"]
    if sched.jobs:
        rules.append(Rule('$CI_PIPELINE_SOURCE == "schedule"', "schedule",
                          "pipeline schedules: MLSPEC_SCHEDULE says which task"))
    if sched.modes:
        rules.append(Rule(f"{API_SOURCES} && $MLSPEC_SCHEDULE", "schedule",
                          "the retrain a failed monitor starts (mlspec alert)"))
    rules.append(Rule('$CI_PIPELINE_SOURCE == "merge_request_event"', "experiment",
                      "merge requests (no branch pipeline runs beside them)"))
    if any(t.kind == "rollback" for t in plan.flows["release"].triggers):
        rules.append(Rule(ROLLBACK_FLOW, "rollback", "mlspec rollback: MLSPEC_ROLLBACK_TO names "
                          "the release to redeploy (only the rollback jobs run)"))
    rules.append(Rule('$CI_PIPELINE_SOURCE == "web"', "experiment",
                      "Run pipeline from the web UI: the experiment on that ref"))
    release = plan.flows["release"]
    tags = [t.pattern for t in release.triggers if t.kind == "push_tag"]
    if tags:
        rules.append(Rule(tag_condition(tags), "release", "protected release tags"))
    branches = [t.pattern for t in release.triggers if t.kind == "push_branch"]
    if branches:
        rules.append(Rule(branch_condition(branches), "release",
                          "pushes to the default (and deploy) branches: baseline"))
    return rules


def _stages(plan: Plan, jobs: list[GLJob]) -> list[str]:
    step_stages = [f"{plan.steps[n].stage}:{n}" for n in plan.order]
    order = [*FIXED_STAGES_BEFORE, *step_stages, *FIXED_STAGES_AFTER]
    used = {j.stage for j in jobs}
    unknown = used - set(order)
    if unknown:  # a bug, not bad input: every job kind maps to a known stage
        raise AssertionError(f"jobs in unknown stages: {sorted(unknown)}")
    return [s for s in order if s in used]


def _schedules(plan: Plan) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for job in plan.flows["schedule"].jobs:
        for trig in job.when:
            if trig.kind == "schedule" and job.kind != "alert":  # in the monitor's pipeline
                out.append((trig.pattern, job.kind, job.name))
    return out


def build_pipeline(plan: Plan) -> Pipeline:
    jobs: list[GLJob] = []
    for flow_name in ("experiment", "release", "schedule"):
        jobs.extend(flow_jobs(plan, plan.flows[flow_name]))
    schedules = _schedules(plan)
    options = list(dict.fromkeys(kind for _, kind, _ in schedules))
    notes = checklist.gitlab(plan)
    return Pipeline(rules=workflow_rules(plan), stages=_stages(plan, jobs), jobs=jobs,
                    schedules=schedules, schedule_options=options, notes=notes)


def render(plan: Plan) -> dict[str, str]:
    """{path: body without header} for the GitLab target."""
    pipeline = build_pipeline(plan)
    env = layer.environment()
    out = {PIPELINE: env.get_template("gitlab/gitlab-ci.yml.j2").render(
        p=pipeline, plan=plan, pip_cache_dir="$CI_PROJECT_DIR/" + PIP_CACHE)}
    scripts = {s for j in pipeline.jobs for s in j.helper_scripts}
    for path in sorted(scripts):
        name = path.rsplit("/", 1)[-1] + ".j2"
        out[path] = env.get_template("gitlab/" + name).render()
    return out
