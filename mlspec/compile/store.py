"""The remote store of step runs (`project.remote`, issue 13) in the generated pipelines.

Applied to a flow's jobs after they are built (`with_remote`); with no remote in the spec
every job is returned unchanged, so nothing in a generated file moves. With one:

- **pull**: `mlspec run` already brings a stale step's run from the remote before executing
  it; the jobs that run steps (step, sweep, select, the release's verify, the scheduled
  refresh) get the remote's credentials on those commands. The monitor job runs `mlspec pull`
  of the steps that write the drift reference (a gitignored out) before `mlspec monitor`, which
  records the monitor run in the remote (so it gets the credentials too, and on ghcr.io
  `packages: write`) under the deployed release (so the job fetches the tags: full history).
- **read**: where the spec declares `inference.monitor`, `mlspec report` shows the deployed
  release's production metrics from the monitor records in the remote, so the report jobs
  (the experiment's `report`, the release's `verify`) get the credentials on that command
  (`packages: read` on ghcr.io).
- **push**: after a successful run, step, sweep and select jobs and the release flow's verify
  job run `mlspec push <their steps>` (a sweep variant with its `--set` values), skipped in a
  run of a pull/merge request from a fork (`Command.same_repo_only`): a fork reads the
  remote, never writes it.
- **credentials** reach only the commands that talk to the remote, as
  MLSPEC_REGISTRY_USER / MLSPEC_REGISTRY_PASSWORD (mlspec.remote.auth): the secrets
  `ci.secrets.remote_password` (and `remote_username`, else the CI's actor) name, read from
  the `mlspec-remote` environment where a CI keeps secrets per environment (GitHub); without
  them the CI's own registry token (`CiVar("registry_user"/"registry_password")`: GitHub's
  job token for ghcr.io with `packages: read`, `write` where it pushes; GitLab's
  CI_REGISTRY_USER / CI_REGISTRY_PASSWORD). The spec check (spec.remote-credentials) refuses a
  target whose own registry is not the remote's host when no secret is named. A `file://`
  remote needs none.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import TYPE_CHECKING

from mlspec.compile.model import CiVar, Command, EnvValue, Job, MatrixVar, Permission, SecretVar
from mlspec.remote.url import parse

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec

ENVIRONMENT = "mlspec-remote"  # GitHub: the environment holding the remote's secrets
USER_ENV, PASSWORD_ENV = "MLSPEC_REGISTRY_USER", "MLSPEC_REGISTRY_PASSWORD"
GHCR = "ghcr.io"
REMOTE_SECRETS = ("remote_username", "remote_password")  # read only where the remote is used
PUSHES = {"experiment": ("step", "sweep", "select"), "release": ("verify",)}
PULLS = {**PUSHES, "schedule": ("refresh", "monitor")}
_TALKS = ("mlspec run", "mlspec pull", "mlspec push")  # the commands that reach the remote
MONITOR = "mlspec monitor"
REPORT = "mlspec report"  # reads the monitor records when the spec declares a monitor


@dataclasses.dataclass(frozen=True)
class Access:
    """How a job reaches the remote: env of its remote commands, GitHub permission scope (for
    ghcr.io with the job token), and the environment holding its secrets."""

    env: dict[str, EnvValue]
    ghcr: bool
    secrets_environment: str | None


def access(loaded: LoadedSpec) -> Access | None:
    """None when the spec names no remote."""
    text = loaded.spec.project.remote
    if text is None:
        return None
    remote = parse(text)  # checked when the spec loaded
    if remote.kind == "file":
        return Access({}, False, None)
    secrets = loaded.spec.ci.secrets
    if "remote_password" in secrets:
        user: EnvValue = (SecretVar(secrets["remote_username"]) if "remote_username" in secrets
                          else CiVar("actor"))
        return Access({USER_ENV: user, PASSWORD_ENV: SecretVar(secrets["remote_password"])},
                      False, ENVIRONMENT)
    return Access({USER_ENV: CiVar("registry_user"), PASSWORD_ENV: CiVar("registry_password")},
                  remote.host == GHCR, None)


def with_remote(loaded: LoadedSpec, flow: str, jobs: list[Job]) -> list[Job]:
    """The flow's jobs with the remote's pulls, pushes and credentials (see the module doc)."""
    acc = access(loaded)
    if acc is None:
        return jobs
    kinds = (*PULLS.get(flow, ()), *(("report",) if _monitored(loaded) else ()))
    return [_job(loaded, acc, flow, j) if j.kind in kinds else j for j in jobs]


def _monitored(loaded: LoadedSpec) -> bool:
    inf = loaded.spec.inference
    return inf is not None and inf.monitor is not None


def _job(loaded: LoadedSpec, acc: Access, flow: str, job: Job) -> Job:
    # `mlspec monitor` records each monitor run in the remote (mlspec.remote.monitorrec)
    talks = (REPORT,) if job.kind == "report" else (
        *_TALKS, *((REPORT,) if _monitored(loaded) else ()))
    commands = [dataclasses.replace(c, env={**c.env, **acc.env})
                if any(line.lstrip().startswith(talks) for line in c.run.splitlines())
                or (job.kind == "monitor" and MONITOR in c.run)
                else c for c in job.commands]
    pushes = job.kind in PUSHES.get(flow, ())
    full_history = job.full_history
    if job.kind == "monitor":
        steps = _reference_steps(loaded)
        if steps:
            commands.insert(0, Command(f"mlspec pull {' '.join(steps)} (the drift reference)",
                                       f"mlspec pull {_q(steps)}", env=dict(acc.env)))
        # the record names the deployed release: the newest release tag, or a rollback's
        full_history = True
    if pushes:
        commands.append(_push(job, acc))
    perms = list(job.permissions)
    if acc.ghcr:
        perms.append(Permission("packages", "write", "push step runs to the remote on ghcr.io")
                     if pushes else
                     Permission("packages", "write", "record the monitor run in the remote on "
                                "ghcr.io") if job.kind == "monitor" else
                     Permission("packages", "read", "read step runs and monitor records from "
                                "the remote on ghcr.io"))
    return dataclasses.replace(job, commands=tuple(commands), permissions=tuple(perms),
                               secrets_environment=acc.secrets_environment,
                               full_history=full_history)


def _push(job: Job, acc: Access) -> Command:
    """`mlspec push` of the job's steps; a sweep variant's runs are keyed by its params, so the
    push gets the same `--set` values as its run (read from the same matrix env vars)."""
    env: dict[str, EnvValue] = dict(acc.env)
    sets = ""
    if job.matrix is not None:
        run_env = {k: v for c in job.commands for k, v in c.env.items()
                   if isinstance(v, MatrixVar)}
        names = {v.axis: k for k, v in run_env.items() if isinstance(v, MatrixVar)}
        sets = "".join(f' --set "{axis}=${names[axis]}"' for axis, _ in job.matrix.axes)
        env.update(run_env)
    return Command(f"mlspec push {' '.join(job.steps)}", f"mlspec push {_q(list(job.steps))}"
                   + sets, env=env, same_repo_only=True)


def _reference_steps(loaded: LoadedSpec) -> list[str]:
    """The steps whose outs hold the monitor's drift reference (pulled with their upstream)."""
    inf = loaded.spec.inference
    mon = inf.monitor if inf is not None else None
    if mon is None or mon.drift is None:
        return []
    step = loaded.graph.producer_of(mon.drift.reference)
    return [str(step)] if step is not None else []


def remote_secrets(plan_jobs: list[Job]) -> tuple[list[str], str | None]:
    """The CI secrets the jobs read for the remote, and the environment holding them."""
    names = sorted({v.name for j in plan_jobs for c in j.commands for v in c.env.values()
                    if isinstance(v, SecretVar) and j.secrets_environment is not None})
    envs = [j.secrets_environment for j in plan_jobs if j.secrets_environment is not None]
    return names, envs[0] if envs else None


def own_token(plan_jobs: list[Job]) -> bool:
    """Whether jobs reach the remote with the CI's own registry token (GitHub: ghcr.io)."""
    return any(v == CiVar("registry_password") for j in plan_jobs for c in j.commands
               for v in c.env.values())


def _q(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)
