"""The compile plan's data model: flows of jobs. Target-neutral data, no jinja, no YAML.

A renderer (a target under `mlspec.compile.targets`) turns a `Plan` into files. Everything
a renderer needs is decided here, so the three targets agree on what runs where:

- three **flows** — `experiment` (pull/merge requests), `release` (default branch + tags) and
  `schedule` (cron + manual) — each a list of `Job`s in a deterministic order;
- a job says which `mlspec …` commands it runs (`Command.run`, plain shell with no CI
  expressions: values arrive through `Command.env`/`Job.env` as `$NAME`), which artifacts it
  downloads first and uploads after, its cache, its matrix, permissions (each with the reason),
  secrets (env var → secret name), environment, timeout, runner and the triggers it runs on;
- values only CI knows at run time (the PR's base branch, a matrix value, a secret, a needed
  job's output) are `Var`s; each renderer maps a `Var` to its own syntax
  (GitHub `${{ github.base_ref }}`, GitLab `$CI_MERGE_REQUEST_TARGET_BRANCH_NAME`, …).

Determinism: the plan depends only on the spec's content, mlspec's version and the normalised
remote (never on absolute paths, clocks or hostnames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mlspec import layout

FlowName = Literal["experiment", "release", "schedule"]
LOCK = layout.LOCK
RECORDS = layout.RECORDS
SWEEP_RECORDS = layout.SWEEPS
OUTS_CACHE = layout.CACHE
KEYS_COMMAND = "mlspec status --ci-keys"  # prints every Cache.var=key line
REPORT = layout.REPORT


CiName = Literal["base_ref", "ref_name", "sha", "pr_number", "repository", "token",
                 "variant", "run_url", "rollback_to", "rollback_digest", "actor",
                 "registry_user", "registry_password"]


@dataclass(frozen=True)
class CiVar:
    """A value CI knows about the run: `base_ref` the PR/MR target branch name, `ref_name` the
    branch or tag built, `sha` the commit, `pr_number`, `repository` (owner/repo, project
    path), `token` the job's own API token, `variant` a unique id of this matrix combination,
    `run_url` the web page of this pipeline run, `rollback_to` / `rollback_digest` the release
    version and image digest a rollback run was asked for (hostile input: a dispatch input /
    pipeline variable, checked by `mlspec rollback --resolve`), `actor` the user who started
    the run, `registry_user` / `registry_password` the job's own credentials for the CI's own
    registry (GitHub: the actor and the job token, for ghcr.io; GitLab: CI_REGISTRY_USER /
    CI_REGISTRY_PASSWORD, for the project's registry)."""

    name: CiName


@dataclass(frozen=True)
class MatrixVar:
    """This job's value of a matrix axis (a sweep param)."""

    axis: str


@dataclass(frozen=True)
class SecretVar:
    """A CI secret / masked variable called `name`."""

    name: str


@dataclass(frozen=True)
class JobOutputVar:
    """An output of a needed job (or of this job, for its later commands), see Job.outputs."""

    job: str
    output: str


# A value known only when CI runs; each target maps it to its own syntax (GitHub
# `${{ github.base_ref }}`, GitLab `$CI_MERGE_REQUEST_TARGET_BRANCH_NAME`, …).
Var = CiVar | MatrixVar | SecretVar | JobOutputVar
EnvValue = str | Var


@dataclass(frozen=True)
class Command:
    """One shell step of a job. `run` holds no CI expressions: it reads `env` as "$NAME"."""

    name: str  # human title, e.g. "mlspec run train"
    run: str  # POSIX shell (bash), may span lines
    env: dict[str, EnvValue] = field(default_factory=dict)
    always: bool = False  # run even when an earlier command failed (e.g. write the report)
    # skipped in a run of a pull/merge request from a fork (which may read the remote store,
    # never write it); each target renders the test its own way
    same_repo_only: bool = False


@dataclass(frozen=True)
class PostReport:
    """Intent: create or update the one sticky comment of the pull/merge request with the
    markdown file `report`; when it is missing (a step failed first), say so with a link to
    the run. Each target renders it its own way (GitHub: `gh api`; GitLab: its helper)."""

    report: str


@dataclass(frozen=True)
class PublishRelease:
    """Intent: create the release of the tag being built, with the markdown file `notes` as
    its description and as an asset."""

    notes: str


Intent = PostReport | PublishRelease


@dataclass(frozen=True)
class Artifact:
    """Files handed from one job to later jobs of the same pipeline run.

    `paths` are repository-relative (files or directories ending in '/'), restored at the same
    place. Every step artifact also holds the step's record `.mlspec/steps/<step>.lock`, so a
    downstream job that restores the outs sees the step as fresh (even when the committed
    mlspec.lock is older) and does not rerun it; records of different steps never collide.
    `per_variant`: one artifact per matrix combination (name suffixed by the variant id); a
    download of a per-variant artifact fetches all of them.
    """

    name: str
    paths: tuple[str, ...]
    per_variant: bool = False
    optional: bool = False  # a download that may be missing (its producer failed or skipped)


@dataclass(frozen=True)
class Cache:
    """Files saved to / restored from the CI cache under a key computed at run time.

    `mlspec status --ci-keys` (mlspec.run.cikeys) prints every key as `var=value` from the
    committed spec and files alone, so no param, dep or data change alters a generated file;
    a target reads the line named `var` (GitLab: a dotenv report of the first job; GitHub: a
    step output). `per_variant`: one cache per matrix combination (the key suffixed by the
    variant's index: the axes are part of the key). A hit only saves time: `mlspec run` still
    checks restored outs against mlspec.lock and the step records.
    """

    var: str  # e.g. "MLSPEC_CACHE_STEP_TRAIN"
    paths: tuple[str, ...]  # what is cached: outs, step records (and sweep/cache state)
    per_variant: bool = False


@dataclass(frozen=True)
class Permission:
    """One token permission a job needs, with the reason (rendered as a comment)."""

    scope: str  # GitHub permission scope: contents, pull-requests, packages, id-token, …
    access: Literal["read", "write"]
    why: str


@dataclass(frozen=True)
class Matrix:
    """A sweep fanned out: the cross product of `axes` (param name → values, spec order)."""

    axes: tuple[tuple[str, tuple[str | int | float | bool, ...]], ...]

    def size(self) -> int:
        n = 1
        for _, values in self.axes:
            n *= len(values)
        return n


@dataclass(frozen=True)
class Trigger:
    """When a flow (or one job of it) runs.

    kind: `pull_request` (PR/MR to any branch), `push_branch` (pattern = branch name),
    `push_tag` (pattern = tag glob, e.g. `v*`), `schedule` (pattern = cron), `manual`
    (workflow_dispatch / web-triggered pipeline). A `manual` trigger with a pattern is a run
    that asks for one mode of its flow (`Flow.modes`), e.g. `refresh`: the schedule flow's
    retrain started through the API by a failed monitor (GitHub: workflow_dispatch with input
    mode=refresh; GitLab: a pipeline trigger with MLSPEC_SCHEDULE=refresh). Without a pattern,
    in a flow with modes: a run of mode `all` (what a person starts by hand). `rollback` (a
    manual run given a release to redeploy: GitHub workflow_dispatch with the input
    `rollback_to`, GitLab an api/web pipeline with MLSPEC_ROLLBACK_TO). In a flow with a
    `rollback` trigger, a rollback run runs only the jobs whose `when` names it.
    """

    kind: Literal["pull_request", "push_branch", "push_tag", "schedule", "manual", "rollback"]
    pattern: str = ""


@dataclass(frozen=True)
class Environment:
    """A deployment environment; approval is the CI environment's protection rule."""

    name: str
    url: str | None = None
    approval: bool = False


JobKind = Literal["check", "step", "sweep", "select", "verify", "report", "comment", "deploy",
                  "rollback",
                  "publish", "refresh", "monitor", "alert"]


@dataclass(frozen=True)
class Job:
    """One CI job. Fields a target cannot express are documented as such by its renderer.

    kind: `check` (validate + compile --check; also prints the cache keys), `step` (one spec
    step), `sweep` (matrix of one sweep group: each variant uploads its .mlspec/sweeps/ record
    and its outs by step key in .mlspec/cache/), `select` (downloads every variant's, `mlspec
    run --sweep` ranks them and restores the spec's own variant instead of retraining it),
    `verify` (as ci.verify asks: check the outs and the committed lock, or re-execute steps),
    `report` (metrics, gates, report.md), `comment` (sticky
    PR comment), `deploy` (build, push, attest, deploy to an environment), `publish`
    (release with the model card), `rollback` (redeploy a released image digest to an
    environment with its deploy command: no build, no push), `refresh` (scheduled data
    refresh + retrain), `monitor` (scheduled monitoring command), `alert` (after a failed
    monitor: `mlspec alert` starts the retrain and opens or updates the one monitoring issue).
    """

    id: str  # unique in its flow, [a-z0-9-]
    name: str  # human title
    kind: JobKind
    needs: tuple[str, ...] = ()  # ids of jobs of the same flow that must succeed first
    steps: tuple[str, ...] = ()  # spec steps this job runs (graph order)
    commands: tuple[Command, ...] = ()
    intents: tuple[Intent, ...] = ()  # run after `commands`, rendered by each target
    downloads: tuple[Artifact, ...] = ()  # restored in this order before `cache`/commands
    uploads: tuple[Artifact, ...] = ()
    cache: Cache | None = None
    matrix: Matrix | None = None
    permissions: tuple[Permission, ...] = ()
    env: dict[str, EnvValue] = field(default_factory=dict)  # job-wide environment
    secrets: dict[str, str] = field(default_factory=dict)  # env var -> CI secret name (today
    # always the same name: mlspec build reads $<ci.secrets.registry_password>)
    environment: Environment | None = None  # secrets are only ever given to such jobs
    # a job that reads secrets without deploying (the remote store's credentials): the CI
    # environment holding them where a CI keeps secrets per environment (GitHub, with
    # `deployment: false`); GitLab reads project CI/CD variables and ignores it
    secrets_environment: str | None = None
    id_token: bool = False  # needs an OIDC token (provenance attestation, cloud deploy)
    attest: bool = False  # attest the provenance of the image digest in output `digest`
    timeout_minutes: int = 30
    runner: str = "ubuntu-latest"  # GitHub runner label / GitLab runner tag
    image: str | None = None  # container image the job runs in (GitLab image, GitHub container)
    checkout: bool = True  # needs the repository's files
    full_history: bool = False  # needs all branches/tags (baselines from git, release tags)
    git: bool = False  # runs the git CLI (implied by full_history)
    python: bool = True  # needs Python + `Plan.install` (mlspec and the project requirements)
    when: tuple[Trigger, ...] = ()  # subset of the flow's triggers; () = all of them
    same_repo_only: bool = False  # skip on PRs from forks (needs a write token)
    always: bool = False  # run even when a needed job failed or was skipped (not cancelled)
    on_failure: bool = False  # run only when a needed job failed (GitLab `when: on_failure`)
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> description
    # Commands write `name=value` lines for `outputs` to the file "$MLSPEC_OUTPUT" (GitHub:
    # $GITHUB_OUTPUT; GitLab: a dotenv report). Later commands read them as Var needs.<id>.<name>.
    after_attest: tuple[Command, ...] = ()  # commands run after the provenance attestation
    summary: tuple[str, ...] = ()  # markdown files appended to the job summary (even on failure)
    upload_always: bool = False  # upload `uploads` even when a command failed


@dataclass(frozen=True)
class Flow:
    """One pipeline: GitHub workflow file / GitLab pipeline source."""

    name: FlowName
    title: str  # e.g. "mlspec experiment"
    triggers: tuple[Trigger, ...]
    jobs: tuple[Job, ...]
    cancel_in_progress: bool  # a newer run of the same ref supersedes this one
    modes: tuple[str, ...] = ()  # manual-run modes besides `all` (see Trigger), e.g. refresh

    def job(self, job_id: str) -> Job:
        for j in self.jobs:
            if j.id == job_id:
                return j
        raise KeyError(job_id)


@dataclass(frozen=True)
class StepFacts:
    """One spec step as the targets see it (graph order is `Plan.order`)."""

    name: str
    stage: str  # data / model / … (the spec section)
    deps: tuple[str, ...]
    producers: tuple[str | None, ...]  # per dep: the step whose outs hold it, else None
    outs: tuple[str, ...]


@dataclass(frozen=True)
class MetricArg:
    name: str  # design metric name
    arg: str  # build argument carrying its value, e.g. MLSPEC_METRIC_F1_MACRO


@dataclass(frozen=True)
class ImageFacts:
    """What the Dockerfiles are made of."""

    base: str  # FROM
    requirements: str | None  # repository path of the requirements file
    require_hashes: bool  # the requirements file pins sha256 hashes
    mlspec_install: str  # pip arguments installing mlspec, shell-quoted
    metrics: tuple[MetricArg, ...]
    title: str  # project name
    serve_argv: tuple[str, ...] | None  # exec form of the serving command; None: no inference
    port: int
    health: str  # health-check path
    data_outs: tuple[str, ...]  # outs of the data stage (kept out of the build context)


@dataclass(frozen=True)
class Plan:
    """Everything the targets need: no target reads the spec itself."""

    source: str  # the spec file name relative to the repo root, e.g. "mlspec.yaml"
    spec_hash: str  # sha256 of the spec and its stage files
    project: str
    python: str  # e.g. "3.11"
    version: str  # mlspec version that compiled
    install: tuple[str, ...]  # shell commands installing mlspec and the project requirements
    default_branch: str
    remote: str | None  # normalised https URL of origin (github.com/gitlab.com), else None
    tag_prefix: str  # release tags: <prefix><version>
    flows: dict[FlowName, Flow]
    actions: dict[str, tuple[str, str]]  # GitHub action -> (version, sha)
    has_inference: bool
    image: str | None  # serving image repository (inference.image.name)
    order: tuple[str, ...]  # spec steps in graph order
    steps: dict[str, StepFacts]
    requirements: str | None  # project.requirements
    ci_image: str | None  # ci.image: the job image where a target needs one
    secrets: dict[str, str]  # ci.secrets: logical name -> CI secret / variable NAME
    docker: ImageFacts
