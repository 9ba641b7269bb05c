"""Plan jobs → GitLab jobs: names, stages, rules, needs, variables, cache, artifacts.

See mlspec.compile.targets.gitlab.pipeline for the pipeline as a whole. Nothing here prints
YAML: the template does, quoting every string.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlspec.compile.model import CiVar, JobOutputVar, MatrixVar, PostReport, SecretVar
from mlspec.compile.targets.gitlab.cache import KEYS_ENV, env_key, keys_script
from mlspec.compile.targets.gitlab.conditions import tag_condition

if TYPE_CHECKING:
    from mlspec.compile.model import Command, EnvValue, Flow, Job, Plan, Trigger

HELPER = ".gitlab/mlspec/ci.py"
PIPELINE_FILE = ".gitlab-ci.yml"
OUTPUT_ENV = "mlspec-output.env"
METRICS_ENV = "mlspec-metrics.env"
METRICS_TXT = "metrics.txt"
DEFAULT_NOTE_TOKEN = "MLSPEC_GITLAB_TOKEN"
# a pipeline started through the API: the trigger endpoint with CI_JOB_TOKEN ("pipeline")
# or with a trigger token ("trigger")
API_SOURCES = '($CI_PIPELINE_SOURCE == "pipeline" || $CI_PIPELINE_SOURCE == "trigger")'
DIND = "docker:27.5.1-dind"
MAX_NEEDS = 50  # GitLab's default limit of `needs:` entries per job
GITHUB_LABELS = re.compile(r"^(ubuntu|macos|windows)-[a-z0-9.-]+$")
NOT_INTERRUPTIBLE = ("deploy", "rollback", "publish")  # a newer pipeline never cuts these short
KIND_STAGE = {"check": "check", "verify": "verify", "report": "report", "comment": "notify",
              "deploy": "deploy", "rollback": "deploy", "publish": "release",
              "refresh": "refresh", "monitor": "monitor", "alert": "alert"}
TIERS = (("prod", "production"), ("stag", "staging"), ("test", "testing"), ("qa", "testing"),
         ("dev", "development"))
CI_VARS = {"base_ref": "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
           "ref_name": "$CI_COMMIT_REF_NAME", "sha": "$CI_COMMIT_SHA",
           "pr_number": "$CI_MERGE_REQUEST_IID", "repository": "$CI_PROJECT_PATH",
           "token": "$CI_JOB_TOKEN", "variant": "$CI_NODE_INDEX",
           "run_url": "$CI_PIPELINE_URL", "rollback_to": "$MLSPEC_ROLLBACK_TO",
           "rollback_digest": "$MLSPEC_ROLLBACK_DIGEST", "actor": "$GITLAB_USER_LOGIN",
           "registry_user": "$CI_REGISTRY_USER", "registry_password": "$CI_REGISTRY_PASSWORD"}
# a pipeline `mlspec rollback` asks for (api, or Run pipeline with the variable set): the
# workflow rules name its flow "rollback", which runs the rollback jobs and nothing else
ROLLBACK_FLOW = ('$MLSPEC_ROLLBACK_TO && ($CI_PIPELINE_SOURCE == "api" || '
                 '$CI_PIPELINE_SOURCE == "web")')
PIP_CACHE = ".cache/pip"  # PIP_CACHE_DIR, under the project directory (GitLab caches only there)
# the project's own registry: push with the job's registry token (mlspec build reads these)
REGISTRY_LOGIN = ('if [ "${IMAGE%%/*}" = "${CI_REGISTRY:-}" ]; then export '
                  'MLSPEC_REGISTRY_USER="$CI_REGISTRY_USER" '
                  'MLSPEC_REGISTRY_PASSWORD="$CI_REGISTRY_PASSWORD"; fi')
INSTALL_GIT = ("command -v git >/dev/null 2>&1 || { apt-get update -qq && "
               "apt-get install -y -qq --no-install-recommends git >/dev/null; }")


@dataclass
class Artifacts:
    paths: list[str]
    when: str = "on_success"
    expose_as: str | None = None
    dotenv: str | None = None
    metrics: str | None = None


@dataclass
class Environment:
    name: str
    tier: str
    url: str | None
    approval: bool


@dataclass
class GLJob:
    """One GitLab job, every value already in GitLab's terms (unquoted: the template quotes)."""

    name: str
    title: str
    stage: str
    image: str
    rules: list[tuple[str, str | None]]  # (if, when)
    needs: list[str] = field(default_factory=list)
    by_stage: bool = False  # more needs than GitLab allows: stage order + `dependencies:`
    variables: list[tuple[str, str]] = field(default_factory=list)
    matrix: list[tuple[str, list[str]]] = field(default_factory=list)
    # (key, paths): key a string, or the files whose contents key it (`key: files:`)
    caches: list[tuple[str | list[str], list[str]]] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    before_script: list[str] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    after_script: list[str] = field(default_factory=list)
    artifacts: Artifacts | None = None
    environment: Environment | None = None
    id_token: bool = False
    resource_group: str | None = None
    timeout: str = "30 minutes"
    interruptible: bool = True
    tags: list[str] = field(default_factory=list)
    helper_scripts: list[str] = field(default_factory=list)


def note_token_variable(plan: Plan) -> str:
    """The CI/CD variable holding a token that may write MR notes: named, never a value."""
    return plan.secrets.get("gitlab_token", DEFAULT_NOTE_TOKEN)


def uses_git(job: Job) -> bool:
    return job.git or job.full_history


def job_image(plan: Plan, job: Job) -> str:
    """The step's image, else ci.image, else the official Python image: the full one (Debian,
    git included) where the job runs git, the slim one elsewhere."""
    return job.image or plan.ci_image or (
        f"python:{plan.python}" if uses_git(job) else f"python:{plan.python}-slim")


def pip_cache(plan: Plan, pipeline_file: str) -> tuple[list[str], list[str]]:
    """pip's download cache, keyed by the requirements file and the pipeline file (which pins
    mlspec's version): (files of the key, paths)."""
    files = [*([plan.requirements] if plan.requirements else []), pipeline_file]
    return files, [PIP_CACHE + "/"]


def schedule_task(job: Job) -> str:
    """The MLSPEC_SCHEDULE value of a schedule job: its kind; the alert runs in the monitor's
    pipeline (after it, when it failed)."""
    return "monitor" if job.kind == "alert" else job.kind


def trigger_condition(trig: Trigger, job: Job) -> str | None:
    """A GitLab rule condition for one plan trigger; None where GitLab has no such event."""
    if trig.kind == "pull_request":
        return '$CI_PIPELINE_SOURCE == "merge_request_event"'
    if trig.kind == "manual" and trig.pattern:  # a run of one mode, started through the API
        return (f'{API_SOURCES} && $MLSPEC_SCHEDULE == "{trig.pattern}"')
    if trig.kind == "manual":
        return '$CI_PIPELINE_SOURCE == "web"'
    if trig.kind == "push_branch":
        cond = f'$CI_COMMIT_BRANCH == "{trig.pattern}"'
        if job.environment is not None:  # deploys only from a protected ref
            cond += ' && $CI_COMMIT_REF_PROTECTED == "true"'
        return cond
    if trig.kind == "push_tag":
        return tag_condition([trig.pattern])
    if trig.kind == "schedule":
        return (f'$CI_PIPELINE_SOURCE == "schedule" && '
                f'$MLSPEC_SCHEDULE == "{schedule_task(job)}"')
    if trig.kind == "rollback":  # deploys only from a protected ref, like the deploy jobs
        return '$CI_COMMIT_REF_PROTECTED == "true"'
    return None


def job_rules(plan: Plan, flow: Flow, job: Job) -> list[tuple[str, str | None]]:
    flow_name = "rollback" if any(t.kind == "rollback" for t in job.when) else flow.name
    base = f'$MLSPEC_FLOW == "{flow_name}"'
    extra = ""
    if job.same_repo_only:
        extra += " && $CI_MERGE_REQUEST_SOURCE_PROJECT_ID == $CI_PROJECT_ID"
    if any(isinstance(i, PostReport) for i in job.intents):  # only with a note token
        extra += f" && ${note_token_variable(plan)}"
    when = "always" if job.always else ("on_failure" if job.on_failure else None)
    if not job.when:
        return [(base + extra, when)]
    conds: list[str] = []
    for trig in job.when:
        if trig.kind == "manual" and not trig.pattern and flow.name != "experiment":
            continue  # web pipelines run the experiment; schedules can be run on demand
        if trig.kind == "schedule" and any(
                c.endswith(f'"{schedule_task(job)}"') for c in conds):
            continue
        cond = trigger_condition(trig, job)
        if cond is not None and cond not in conds:
            conds.append(cond)
    return [(f"{base} && {c}{extra}", when) for c in conds]


def stage_of(plan: Plan, job: Job) -> str:
    steps = plan.steps
    if job.kind in ("step", "sweep"):
        return f"{steps[job.steps[0]].stage}:{job.steps[0]}"
    if job.kind == "select":
        return f"{steps[job.steps[-1]].stage}:{job.steps[-1]}"
    if job.kind not in KIND_STAGE:
        raise AssertionError(f"no GitLab stage for job kind {job.kind!r}")
    return KIND_STAGE[job.kind]


def _value(var: EnvValue, names: dict[str, str]) -> str:
    if isinstance(var, str):
        return var
    if isinstance(var, CiVar):
        return CI_VARS[var.name]
    if isinstance(var, SecretVar):
        return "$" + var.name
    if isinstance(var, MatrixVar):
        return "$" + names[var.axis]
    return "$" + var.output  # the needed job's dotenv report


def _tier(env_name: str) -> str:
    for prefix, tier in TIERS:
        if env_name.startswith(prefix):
            return tier
    return "other"


class _Builder:
    """Builds the GitLab jobs of one flow."""

    def __init__(self, plan: Plan, flow: Flow):
        self.plan, self.flow = plan, flow
        self.names = {j.id: f"{flow.name}:{j.id}" for j in flow.jobs}
        self.caches = {j.id: j.cache for j in flow.jobs if j.cache is not None}
        ids = [j.id for j in flow.jobs]
        self.keys_job = "check" if "check" in ids else ("cache-keys" if self.caches else None)

    def jobs(self) -> list[GLJob]:
        out: list[GLJob] = []
        if self.keys_job == "cache-keys":
            out.append(self._keys_only())
        for job in self.flow.jobs:
            gl = self.job(job)
            if gl.rules:
                out.append(gl)
        return out

    def _keys_only(self) -> GLJob:
        return GLJob(name=f"{self.flow.name}:cache-keys", title="cache keys of the steps",
                     stage="check", image=job_image(self.plan, self.flow.jobs[0]),
                     rules=[(f'$MLSPEC_FLOW == "{self.flow.name}"', None)],
                     before_script=list(self.plan.install),
                     caches=[pip_cache(self.plan, PIPELINE_FILE)],
                     script=keys_script(), artifacts=Artifacts([], dotenv=KEYS_ENV),
                     timeout="10 minutes", interruptible=True)

    # -- one job -------------------------------------------------------------------------
    def job(self, job: Job) -> GLJob:
        plan, flow = self.plan, self.flow
        gl = GLJob(name=self.names[job.id], title=_title(job), stage=stage_of(plan, job),
                   image=job_image(plan, job), rules=job_rules(plan, flow, job),
                   timeout=f"{job.timeout_minutes} minutes",
                   interruptible=job.kind not in NOT_INTERRUPTIBLE)
        gl.needs = [self.names[n] for n in job.needs]
        if job.id in self.caches and self.keys_job and job.id != self.keys_job:
            keys = f"{flow.name}:{self.keys_job}"
            if keys not in gl.needs:
                gl.needs.insert(0, keys)
        gl.by_stage = len(gl.needs) > MAX_NEEDS
        if job.runner and not GITHUB_LABELS.fullmatch(job.runner):
            gl.tags = [job.runner]
        names: dict[str, str] = {}
        if job.matrix is not None:
            for axis, values in job.matrix.axes:
                var = next((k for c in job.commands for k, v in c.env.items()
                            if v == MatrixVar(axis)), f"MLSPEC_SWEEP_{env_key(axis)}")
                names[axis] = var
                gl.matrix.append((var, [_scalar(v) for v in values]))
        self._variables(gl, job, names)
        self._before(gl, job)
        self._script(gl, job)
        self._artifacts(gl, job)
        if job.id in self.caches:
            c = self.caches[job.id]
            # a variant by its index (the axes are in the key's static part): a value may hold
            # a '/', which a GitLab cache key may not
            key = f"${c.var}-$CI_NODE_INDEX" if c.per_variant else f"${c.var}"
            gl.caches.append((key, list(c.paths)))
        if job.python:
            gl.caches.append(pip_cache(self.plan, PIPELINE_FILE))
        if job.environment is not None:
            e = job.environment
            gl.environment = Environment(e.name, _tier(e.name), e.url, e.approval)
            gl.resource_group = f"deploy-{e.name}"
        if job.kind == "deploy":
            gl.services = [DIND]
            gl.variables += [("DOCKER_HOST", "tcp://docker:2375"), ("DOCKER_TLS_CERTDIR", "")]
        gl.id_token = job.id_token
        return gl

    def _variables(self, gl: GLJob, job: Job, names: dict[str, str]) -> None:
        env: dict[str, str] = {}
        sources = [job.env, *(c.env for c in (*job.commands, *job.after_attest))]
        for src in sources:
            for k, v in src.items():
                if k in names.values() and v == MatrixVar(_axis_of(names, k)):
                    continue
                if isinstance(v, JobOutputVar) and v.job == job.id:
                    continue  # an output of this very job: read in the script
                val = _value(v, names)
                if env.get(k, val) != val:
                    raise AssertionError(f"job {job.id}: {k} set twice")
                env[k] = val
        for k, secret in job.secrets.items():
            if k != secret:  # a CI/CD variable reaches the job under its own name already
                env[k] = f"${secret}"
        if job.outputs:
            env["MLSPEC_OUTPUT"] = OUTPUT_ENV
        if job.full_history:
            env["GIT_DEPTH"] = "0"
        gl.variables = sorted(env.items())

    def _before(self, gl: GLJob, job: Job) -> None:
        if uses_git(job) and (job.image or self.plan.ci_image):  # python:<v> carries git
            gl.before_script.append(INSTALL_GIT)
        if job.python:
            gl.before_script.extend(self.plan.install)
        base = [k for src in (job.env, *(c.env for c in job.commands))
                for k, v in src.items() if v == CiVar("base_ref")]
        for k in dict.fromkeys(base):
            gl.before_script.append(f'export {k}="${{{k}:-$CI_DEFAULT_BRANCH}}"')
            gl.before_script.append(
                f'git fetch --quiet origin "+refs/heads/${k}:refs/remotes/origin/${k}"')

    def _script(self, gl: GLJob, job: Job) -> None:
        if job.id == self.keys_job:
            gl.script.extend(keys_script())
        if job.outputs:
            gl.script.append(f": > {OUTPUT_ENV}")
        if job.kind == "deploy":
            gl.script.append(REGISTRY_LOGIN)
        if job.kind == "report":
            gl.script.extend(self._report_extras(job))
        for cmd in (*job.commands, *job.after_attest):
            target = gl.after_script if cmd.always else gl.script
            target.extend(self._own_outputs(job, cmd))
            target.append(not_fork(cmd.run) if cmd.same_repo_only else cmd.run)
        for intent in job.intents:  # through the helper: no GitHub CLI, a named token
            if isinstance(intent, PostReport):
                gl.script.append(f"python3 {HELPER} note --token-variable "
                                 f"{note_token_variable(self.plan)} {shlex.quote(intent.report)}")
            else:
                notes = shlex.quote(intent.notes)
                gl.script.append(f'python3 {HELPER} release "$CI_COMMIT_TAG" {notes}')
            gl.helper_scripts.append(HELPER)

    def _own_outputs(self, job: Job, cmd: Command) -> list[str]:
        lines = []
        for k, v in cmd.env.items():
            if isinstance(v, JobOutputVar) and v.job == job.id:
                out = v.output
                lines.append(f"{k}=\"$(sed -n 's/^{out}=//p' {OUTPUT_ENV} | tail -n 1)\"")
                lines.append(f"export {k}")
        return lines

    def _report_extras(self, job: Job) -> list[str]:
        """Metrics as GitLab reports: a dotenv of values and an OpenMetrics metrics file."""
        base = next((k for k, v in job.env.items() if v == CiVar("base_ref")), None)
        diff = f' --diff "origin/${base}"' if base else ""
        # exit 1 (a failed gate) still wrote the JSON; the job's gates command fails the job
        return [f"mlspec metrics{diff} --format json > metrics-diff.json || [ \"$?\" -eq 1 ]",
                f"python3 {HELPER} reports metrics-diff.json {METRICS_TXT} {METRICS_ENV}"]

    def _artifacts(self, gl: GLJob, job: Job) -> None:
        paths = list(dict.fromkeys(p for a in job.uploads for p in a.paths))
        dotenv = None
        if job.id == self.keys_job:
            dotenv = KEYS_ENV
        if job.outputs:
            dotenv = OUTPUT_ENV
        metrics = None
        if job.kind == "report":
            dotenv, metrics = METRICS_ENV, METRICS_TXT
            gl.helper_scripts.append(HELPER)
        if not paths and dotenv is None:
            return
        expose = None
        if job.summary and all(s in paths for s in job.summary):
            expose = "mlspec " + job.kind
        gl.artifacts = Artifacts(paths, "always" if job.upload_always else "on_success",
                                 expose, dotenv, metrics)


# a merge request from a fork: its source project is not this project, or not the project the
# merge request targets (a fork's pipeline runs in the fork, whose CI_PROJECT_ID is the source)
FORK = ('[ -n "${CI_MERGE_REQUEST_SOURCE_PROJECT_ID:-}" ] && '
        '{ [ "$CI_MERGE_REQUEST_SOURCE_PROJECT_ID" != "${CI_PROJECT_ID:-}" ] || '
        '[ "$CI_MERGE_REQUEST_SOURCE_PROJECT_ID" != "${CI_MERGE_REQUEST_PROJECT_ID:-}" ]; }')


def not_fork(run: str) -> str:
    """A command skipped in a pipeline of a merge request from a fork."""
    return (f"if {FORK}; then\n  echo 'a merge request from a fork: skipped (it may read the "
            f"remote, never write it)'\nelse\n{run}\nfi")


def _axis_of(names: dict[str, str], var: str) -> str:
    return next(k for k, v in names.items() if v == var)


def _title(job: Job) -> str:
    """The plan's job title in GitLab's words (notes, not comments)."""
    if job.kind == "comment":
        return "sticky merge-request note with the report"
    return job.name


def _scalar(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def flow_jobs(plan: Plan, flow: Flow) -> list[GLJob]:
    return _Builder(plan, flow).jobs()
