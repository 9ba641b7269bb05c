"""The repository settings a generated pipeline needs and cannot set itself: the one text,
used by the GitLab file's header and printed by `mlspec compile` after it writes new files.

GitLab keeps tag protection, environment approvals, pipeline schedules and CI/CD variables in
the project's settings; GitHub keeps environment reviewers and secrets there (its schedules and
tag filters live in the workflow files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec.compile.model import PostReport
from mlspec.compile.store import own_token, remote_secrets
from mlspec.compile.targets.gitlab.jobs import note_token_variable

if TYPE_CHECKING:
    from mlspec.compile.model import Environment, Job, Plan


def _secrets(plan: Plan) -> list[str]:
    return sorted({s for f in plan.flows.values() for j in f.jobs for s in j.secrets.values()})


def _jobs(plan: Plan) -> list[Job]:
    return [j for f in plan.flows.values() for j in f.jobs]


def _environments(plan: Plan) -> list[Environment]:
    envs = [j.environment for j in plan.flows["release"].jobs if j.environment is not None]
    return list(dict.fromkeys(e for e in envs if e.approval))  # deploy and rollback share one


def _posts_report(plan: Plan) -> bool:
    return any(isinstance(i, PostReport) for f in plan.flows.values() for j in f.jobs
               for i in j.intents)


def _alert_issue(plan: Plan) -> bool:
    return any(j.kind == "alert" and "--no-issue" not in c.run
               for j in plan.flows["schedule"].jobs for c in j.commands)


def gitlab(plan: Plan) -> list[str]:
    """One line per setting of a GitLab project (Settings > …, Build > …)."""
    items: list[str] = []
    tags = [t.pattern for t in plan.flows["release"].triggers if t.kind == "push_tag"]
    if tags:
        items.append(f"Protect the tags {', '.join(tags)} (Settings > Repository > Protected "
                     "tags): an unprotected release tag runs no pipeline at all.")
    if plan.has_inference:
        items.append(f"Keep {plan.default_branch} protected: deploys run only from protected "
                     "refs.")
    items += [f"Protect the environment '{e.name}' with required approvals (Settings > CI/CD > "
              "Protected environments)." for e in _environments(plan)]
    for job in plan.flows["schedule"].jobs:
        for trig in job.when:
            if trig.kind == "schedule" and job.kind != "alert":  # runs in the monitor's pipeline
                items.append(f"Create the pipeline schedule '{trig.pattern}' on "
                             f"{plan.default_branch} with variable MLSPEC_SCHEDULE={job.kind} "
                             f"(Build > Pipeline schedules): {job.name}.")
    secrets = _secrets(plan)
    if secrets:
        items.append(f"Add the CI/CD variables {', '.join(secrets)} (Settings > CI/CD > "
                     "Variables), masked and protected, scoped to the deploy environments.")
    remote, _ = remote_secrets(_jobs(plan))
    if remote:
        items.append(f"Add the CI/CD variables {', '.join(remote)} (Settings > CI/CD > "
                     "Variables), masked and not protected: the remote store's credentials, "
                     "which merge-request pipelines pull and push step runs with.")
    uses = [*(["to get the report as a merge-request note"] if _posts_report(plan) else []),
            *(["for the issue a failed monitor opens or updates and a passing one closes "
               "(CI_JOB_TOKEN cannot write "
               "issues; without it only the retrain starts)"] if _alert_issue(plan) else [])]
    if uses:
        items.append(f"Add a masked CI/CD variable {note_token_variable(plan)} with a project "
                     f"access token (api scope) {' and '.join(uses)}.")
    return items


def github(plan: Plan) -> list[str]:
    """One line per setting of a GitHub repository."""
    items = [f"Add required reviewers to the environment '{e.name}' (Settings > Environments)."
             for e in _environments(plan)]
    secrets = _secrets(plan)
    if secrets:
        items.append(f"Add the environment secrets {', '.join(secrets)} to the deploy "
                     "environments (Settings > Environments).")
    remote, env = remote_secrets(_jobs(plan))
    if remote:
        items.append(f"Add the secrets {', '.join(remote)} to the environment '{env}' "
                     "(Settings > Environments): the remote store's credentials, read by the "
                     "jobs that pull and push step runs.")
    if own_token(_jobs(plan)):
        items.append("Give this repository's Actions write access to the remote's ghcr.io "
                     "package (its Package settings > Manage Actions access), which the jobs "
                     "push step runs to with their own token.")
    return items


CHECKLISTS = {"gitlab": gitlab, "github": github}


def checklist(plan: Plan, target: str) -> list[str]:
    """The settings a target's generated files need; [] for a target with none."""
    fn = CHECKLISTS.get(target)
    return fn(plan) if fn is not None else []


def printout(plan: Plan, targets: list[str]) -> str:
    """What `mlspec compile` prints after writing new files: short, once."""
    parts = []
    for target in targets:
        items = checklist(plan, target)
        if items:
            parts.append(f"{target} needs these repository settings:\n"
                         + "".join(f"  - {i}\n" for i in items))
    return "".join(parts)
