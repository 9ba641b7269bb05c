"""The three flows of a plan (experiment, release, schedule) as target-neutral jobs.

See mlspec.compile.model for the data model. The shell in `Command.run` is plain POSIX/bash
with every CI value read from the environment ("$NAME", quoted), never a CI expression.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlspec.compile.model import (
    LOCK,
    OUTS_CACHE,
    RECORDS,
    REPORT,
    SWEEP_RECORDS,
    Artifact,
    Cache,
    CiVar,
    Command,
    Environment,
    EnvValue,
    Flow,
    Job,
    JobOutputVar,
    Matrix,
    MatrixVar,
    Permission,
    PostReport,
    PublishRelease,
    Trigger,
)
from mlspec.compile.store import REMOTE_SECRETS, with_remote
from mlspec.run.cikeys import key_vars, sweep_axes
from mlspec.run.cikeys import sweep_groups as graph_sweep_groups

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec
    from mlspec.spec.step import Step

READ = Permission("contents", "read", "check out the repository")
MAX_TIMEOUT = 360
CHECK_JOB = "check"


@dataclass(frozen=True)
class PlanContext:
    """What the flow builders share while the plan is being built."""

    loaded: LoadedSpec
    install: tuple[str, ...]
    tags: tuple[str, ...]

    def step(self, name: str) -> Step:
        step: Step = self.loaded.graph.steps[name]
        return step

    def cache_for(self, name: str) -> Cache | None:
        """The cache of one step job: its outs and its record, keyed by its CI key."""
        step = self.step(name)
        if not step.all_outs():
            return None
        return Cache(key_vars(self.loaded.graph)[("step", name)],
                     (*step.all_outs(), f"{RECORDS}/{name}.lock"))

    def group_cache(self, kind: str, members: list[str]) -> Cache:
        """The cache of a sweep group's job: every member's outs and record; a variant's
        also its sweep record and the local cache of outs (`mlspec run` restores from it)."""
        paths = [o for m in members for o in self.step(m).all_outs()]
        paths += [f"{RECORDS}/{m}.lock" for m in members]
        if kind == "sweep":
            paths += [f"{SWEEP_RECORDS}/", f"{OUTS_CACHE}/"]
        return Cache(key_vars(self.loaded.graph)[(kind, members[0])],
                     tuple(dict.fromkeys(paths)), per_variant=kind == "sweep")


def step_artifact(name: str, outs: list[str]) -> Artifact:
    return Artifact(f"mlspec-step-{name}", (*outs, f"{RECORDS}/{name}.lock"))


def _q(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def _env_name(param: str) -> str:
    return "MLSPEC_SWEEP_" + param.upper()


def check_job() -> Job:
    return Job(
        id=CHECK_JOB, name="validate the spec and check generated files", kind="check",
        commands=(Command("mlspec validate", "mlspec validate"),
                  Command("mlspec compile --check", "mlspec compile --check")),
        permissions=(READ,), timeout_minutes=10)


def sweep_groups(ctx: PlanContext) -> list[list[str]]:
    """Steps that fan out together (mlspec.run.cikeys.sweep_groups)."""
    return graph_sweep_groups(ctx.loaded.graph)


def experiment_flow(ctx: PlanContext) -> Flow:
    g = ctx.loaded.graph
    groups = sweep_groups(ctx)
    group_of = {m: grp for grp in groups for m in grp}
    provider: dict[str, str] = {}  # step -> job whose artifact `mlspec-step-<step>` holds outs
    for name in g.order:
        provider[name] = (f"select-{group_of[name][0]}" if name in group_of else f"step-{name}")
    jobs: list[Job] = [check_job()]
    done: set[str] = set()
    for name in g.order:
        if name in done:
            continue
        members = group_of.get(name, [name])
        done.update(members)
        upstream = [u for u in g.closure_up(members) if u not in members]
        needs = list(dict.fromkeys([CHECK_JOB, *(provider[u] for u in upstream)]))
        downloads = tuple(step_artifact(u, ctx.step(u).all_outs()) for u in upstream)
        step = ctx.step(name)
        if name not in group_of:
            jobs.append(Job(
                id=f"step-{name}", name=f"{g.stage[name]}: {name}", kind="step", steps=(name,),
                needs=tuple(needs), downloads=downloads, cache=ctx.cache_for(name),
                commands=(Command(f"mlspec run {name}", f"mlspec run {_q([name])} --no-gates"),),
                uploads=(step_artifact(name, step.all_outs()),),
                permissions=(READ,), timeout_minutes=step.resources.timeout_minutes,
                runner=step.resources.runner, image=step.resources.image))
            continue
        jobs.extend(_sweep_jobs(ctx, members, tuple(needs), downloads))
    step_jobs = [j.id for j in jobs if j.kind in ("step", "select")]
    base: dict[str, EnvValue] = {"BASE_REF": CiVar("base_ref")}
    all_arts = tuple(step_artifact(n, ctx.step(n).all_outs()) for n in g.order)
    jobs.append(experiment_verify(ctx, (CHECK_JOB, *step_jobs), all_arts))
    jobs.append(Job(
        id="report", name="metrics, gates and report", kind="report",
        needs=(CHECK_JOB, *step_jobs), downloads=all_arts, full_history=True, env=base,
        commands=(  # the report first: `mlspec metrics` exits 1 when a gate fails
            Command("write the report", f'mlspec report --base "origin/$BASE_REF" -o {REPORT}'),
            Command("metrics against the base branch",
                    'mlspec metrics --diff "origin/$BASE_REF"'),
            Command("gates", 'mlspec run --base "origin/$BASE_REF"'),
        ),
        summary=(REPORT,), uploads=(Artifact("mlspec-report", (REPORT,)),), upload_always=True,
        permissions=(READ,), timeout_minutes=15))
    jobs.append(Job(
        id="comment", name="sticky PR comment", kind="comment", needs=("report",),
        downloads=(Artifact("mlspec-report", (REPORT,), optional=True),), checkout=False,
        python=False, intents=(PostReport(REPORT),),
        permissions=(Permission("pull-requests", "write",
                                "create or update the sticky metrics comment"),),
        when=(Trigger("pull_request"),), same_repo_only=True, always=True, timeout_minutes=5))
    return Flow("experiment", "mlspec experiment",
                (Trigger("pull_request"), Trigger("manual")),
                tuple(with_remote(ctx.loaded, "experiment", jobs)),
                cancel_in_progress=True)


def experiment_verify(ctx: PlanContext, needs: tuple[str, ...],
                      artifacts: tuple[Artifact, ...]) -> Job:
    """The experiment's verify job, as ci.verify.experiment asks: `all` reruns every step from
    the commit; `none` (the default, so a PR costs one run) re-executes nothing: with the
    experiment's outs and records, the committed lock must match the committed inputs and the
    outs; a list of steps also re-executes those (`mlspec run --verify STEP...`)."""
    g = ctx.loaded.graph
    mode = ctx.loaded.spec.ci.verify.experiment
    if mode == "all":
        return Job(
            id="verify", name="reproduce from the commit (mlspec run --verify)", kind="verify",
            needs=(CHECK_JOB,), steps=tuple(g.order),
            commands=(Command("mlspec run --verify", "mlspec run --verify --no-gates"),),
            permissions=(READ,), timeout_minutes=_total_timeout(ctx, g.order))
    commands = [
        # the artifacts may carry the lock the experiment wrote: check the committed one
        Command("the committed lock", f"git checkout HEAD -- {shlex.quote(LOCK)}"),
        Command("the lock matches the inputs and the outs", "mlspec status --exit-code")]
    name = "check the outs against the committed lock"
    steps: list[str] = []
    if isinstance(mode, list):
        steps = [n for n in g.order if n in mode]
        commands.append(Command(f"mlspec run --verify {' '.join(steps)}",
                                f"mlspec run --verify {_q(steps)} --no-gates"))
        name = f"re-execute {', '.join(steps)} and check the lock"
    return Job(id="verify", name=name, kind="verify", needs=needs, steps=tuple(steps),
               downloads=artifacts, git=True, commands=tuple(commands), permissions=(READ,),
               timeout_minutes=_total_timeout(ctx, steps) if steps else 15)


def _release_run(ctx: PlanContext) -> tuple[Command, ...]:
    """How the release flow builds the outs, as ci.verify.release asks: `all` (the default:
    every release reproduces its lock), a list (re-execute and compare those, build the rest),
    or `none` (build, compare nothing)."""
    g = ctx.loaded.graph
    mode = ctx.loaded.spec.ci.verify.release
    if mode == "all":
        return (Command("rebuild from source and verify", "mlspec run --verify"),)
    if mode == "none":
        what = ("run what the pinned runs did not restore" if ctx.loaded.spec.project.remote
                else "rebuild from source")
        return (Command(f"{what} (ci.verify.release: none)", "mlspec run"),)
    steps = [n for n in g.order if n in mode]
    return (Command(f"re-execute and verify {', '.join(steps)}",
                    f"mlspec run --verify {_q(steps)} --no-gates"),
            Command("build the other steps and check the gates", "mlspec run"))


def _pull_pinned(ctx: PlanContext) -> tuple[Command, ...]:
    """With a remote, a release tag's pipeline first restores the step runs the tag pins, by
    manifest digest (`mlspec pull --release`): with ci.verify.release `none` no step executes,
    with `all` every step still re-executes and is compared. A branch has no pins."""
    if ctx.loaded.spec.project.remote is None:
        return ()
    pull = ('if git show-ref --verify --quiet "refs/tags/$REF"; then\n'
            '  mlspec pull --release "$REF"\nfi')
    return (Command("pull the runs the release tag pins", pull, env={"REF": CiVar("ref_name")}),)


def _sweep_jobs(ctx: PlanContext, members: list[str], needs: tuple[str, ...],
                downloads: tuple[Artifact, ...]) -> list[Job]:
    """A matrix job per grid point, then one job that picks the best (mlspec.run.sweep's CI
    fan-out): each variant run leaves a record under .mlspec/sweeps/; `mlspec run --sweep`
    with every record present reruns no variant, ranks them by the primary metric, records
    the `sweeps` section of the lock and runs the steps with the spec's params."""
    g = ctx.loaded.graph
    head = members[0]
    axes: list[tuple[str, tuple[str | int | float | bool, ...]]] = [
        (p, tuple(v for v in vs if isinstance(v, str | int | float | bool)))
        for p, vs in sweep_axes(g, members)]
    sets = " ".join(f'--set "{p}=${_env_name(p)}"' for p, _ in axes)
    env: dict[str, EnvValue] = {_env_name(p): MatrixVar(p) for p, _ in axes}
    # each variant's record and its outs by step key: the select job ranks the records and
    # restores the chosen variant's outs from the local cache instead of retraining it
    records = Artifact(f"mlspec-sweep-{head}", (f"{SWEEP_RECORDS}/", f"{OUTS_CACHE}/"),
                       per_variant=True)
    first = ctx.step(head)
    return [
        Job(id=f"sweep-{head}", name=f"sweep: {', '.join(members)}", kind="sweep",
            steps=tuple(members), needs=needs, downloads=downloads,
            matrix=Matrix(tuple(axes)),
            commands=(Command(f"mlspec run {' '.join(members)} (one variant)",
                              f"mlspec run {_q(members)} --no-gates {sets}", env=env),),
            uploads=(records,), cache=ctx.group_cache("sweep", members), permissions=(READ,),
            timeout_minutes=_group_timeout(ctx, members), runner=first.resources.runner,
            image=first.resources.image),
        Job(id=f"select-{head}", name=f"pick the best variant of {head}", kind="select",
            steps=tuple(members), needs=(*needs, f"sweep-{head}"),
            downloads=(*downloads, records), cache=ctx.group_cache("select", members),
            commands=(Command("rank the variants and run with the spec's params",
                              f"mlspec run {_q(members)} --sweep --no-gates"),),
            # mlspec.lock carries the `sweeps` section (variants, best) to the report
            uploads=tuple(Artifact(a.name, (*a.paths, LOCK)) for a in
                          (step_artifact(m, ctx.step(m).all_outs()) for m in members)),
            permissions=(READ,), timeout_minutes=_group_timeout(ctx, members),
            runner=first.resources.runner, image=first.resources.image),
    ]


def _group_timeout(ctx: PlanContext, names: list[str]) -> int:
    """A sweep job runs one variant of its group's steps (not every variant): their timeouts
    plus a few minutes to install and restore."""
    return min(5 + sum(ctx.step(n).resources.timeout_minutes for n in names), MAX_TIMEOUT)


def _total_timeout(ctx: PlanContext, names: list[str]) -> int:
    total = 10 + sum(ctx.step(n).resources.timeout_minutes for n in names)
    return min(total, MAX_TIMEOUT)


def _deploy_trigger(when: str) -> Trigger:
    return Trigger("push_tag", when[4:]) if when.startswith("tag:") else Trigger("push_branch",
                                                                                  when)


def release_flow(ctx: PlanContext) -> Flow:
    spec = ctx.loaded.spec
    g = ctx.loaded.graph
    ci = spec.ci
    branches = [ci.default_branch]
    inf = spec.inference
    if inf is not None:
        for dep in inf.deploy.values():
            if not dep.when.startswith("tag:") and dep.when not in branches:
                branches.append(dep.when)
    triggers = (*(Trigger("push_branch", b) for b in branches),
                *(Trigger("push_tag", t) for t in ctx.tags), Trigger("manual"))
    outs = sorted({o for n in g.order for o in ctx.step(n).all_outs()})
    built = Artifact("mlspec-release-outs", (*outs, LOCK))
    jobs: list[Job] = [Job(
        id="verify", name="verify the lock and gates at this commit", kind="verify",
        steps=tuple(g.order), full_history=True,
        commands=(Command("mlspec validate", "mlspec validate"),
                  Command("mlspec compile --check", "mlspec compile --check"),
                  *_pull_pinned(ctx), *_release_run(ctx),
                  Command("write the report", f"mlspec report -o {REPORT}"),
                  Command("metrics", "mlspec metrics")),  # exits 1 when a gate fails
        summary=(REPORT,), uploads=(built,),
        permissions=(READ,), timeout_minutes=_total_timeout(ctx, g.order))]
    tag_deploys: list[str] = []
    if inf is not None:
        # each secret reaches the job as an env var of the same name: `mlspec build --push`
        # reads the one ci.secrets.registry_password names, deploy commands the others
        secrets = {name: name for name in sorted({v for k, v in ci.secrets.items()
                                                  if k not in REMOTE_SECRETS})}
        perms = [READ]
        if inf.image.name.startswith("ghcr.io/"):
            perms.append(Permission("packages", "write", "push the serving image to ghcr.io"))
        perms += [Permission("id-token", "write", "sign the provenance attestation (OIDC)"),
                  Permission("attestations", "write", "store the provenance attestation")]
        for env_name, dep in inf.deploy.items():
            trig = _deploy_trigger(dep.when)
            job_id = f"deploy-{env_name}"
            if trig.kind == "push_tag":
                tag_deploys.append(job_id)
            deploy_cmd = dep.command or (
                'echo "no deploy command in the spec: the image $IMAGE@$IMAGE_DIGEST is pushed"')
            jobs.append(Job(
                id=job_id, name=f"build, push and deploy to {env_name}", kind="deploy",
                needs=("verify",), downloads=(built,), full_history=True,
                environment=Environment(env_name, dep.url, dep.approval), secrets=secrets,
                env={"IMAGE": inf.image.name},
                commands=(Command("mlspec build serve --push", _BUILD),),
                after_attest=(Command(f"deploy to {env_name}", deploy_cmd,
                                      env={"IMAGE_DIGEST": JobOutputVar(job_id, "digest")}),),
                outputs={"digest": "sha256 digest of the pushed serving image"},
                permissions=tuple(perms), id_token=True, attest=True, when=(trig,),
                timeout_minutes=30))
        jobs.extend(_rollback_jobs(ctx, secrets))
    if any(j.kind == "rollback" for j in jobs):
        triggers = (*triggers, Trigger("rollback"))
    card = 'mlspec lineage "$TAG" --model-card > model-card.md\ncat model-card.md'
    publish_env: dict[str, EnvValue] = {"TAG": CiVar("ref_name")}
    jobs.append(Job(
        id="publish", name="publish the release with the model card", kind="publish",
        needs=("verify", *tag_deploys), full_history=True, env=publish_env,
        commands=(Command("write the model card", card),),
        intents=(PublishRelease("model-card.md"),),
        permissions=(Permission("contents", "write", "create the release and upload the card"),),
        when=tuple(Trigger("push_tag", t) for t in ctx.tags), timeout_minutes=10))
    return Flow("release", "mlspec release", triggers,
                tuple(with_remote(ctx.loaded, "release", jobs)), cancel_in_progress=False)


def _rollback_jobs(ctx: PlanContext, secrets: dict[str, str]) -> list[Job]:
    """`mlspec rollback`'s jobs: for each environment release tags deploy to, the same
    environment and deploy command with IMAGE_DIGEST the digest of the release asked for
    (checked against its tag and lineage by `mlspec rollback --resolve`); nothing is built."""
    inf = ctx.loaded.spec.inference
    assert inf is not None
    jobs = []
    for env_name, dep in inf.deploy.items():
        if not dep.when.startswith("tag:"):
            continue
        job_id = f"rollback-{env_name}"
        deploy_cmd = dep.command or (
            'echo "no deploy command in the spec: the image $IMAGE@$IMAGE_DIGEST is pushed"')
        jobs.append(Job(
            id=job_id, name=f"roll {env_name} back to a release", kind="rollback",
            full_history=True, environment=Environment(env_name, dep.url, dep.approval),
            secrets=secrets, env={"IMAGE": inf.image.name},
            commands=(Command("the release's image digest", _RESOLVE, env={
                "ROLLBACK_TO": CiVar("rollback_to"),
                "ROLLBACK_DIGEST": CiVar("rollback_digest")}),),
            after_attest=(Command(f"deploy to {env_name}", deploy_cmd,
                                  env={"IMAGE_DIGEST": JobOutputVar(job_id, "digest")}),),
            outputs={"digest": "sha256 digest of the release's serving image"},
            permissions=(READ,), when=(Trigger("rollback"),), timeout_minutes=30))
    return jobs


_RESOLVE = ('mlspec rollback --resolve "$ROLLBACK_TO" --digest "$ROLLBACK_DIGEST" '
            '>> "$MLSPEC_OUTPUT"')

_BUILD = """\
mlspec build serve --push --json > build.json
cat build.json
digest=$(python -c 'import json; print(json.load(open("build.json"))["digest"])')
echo "digest=$digest" >> "$MLSPEC_OUTPUT\""""
