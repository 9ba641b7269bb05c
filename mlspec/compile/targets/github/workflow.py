"""The `github` compile target: plan → .github/workflows/mlspec-{experiment,release,schedule}.yml.

This module maps the target-neutral plan onto GitHub Actions (contexts, actions, `if:`
conditions, quoting) and hands the template plain lists to loop over (an optional section is
a list of zero or one item, so the template has loops and nothing else). Properties kept for every
workflow (docs/DESIGN.md §5): `name:` everywhere, top-level `permissions: {}` and per-job least
privilege with a comment per permission, actions pinned to a commit SHA with the version in a
comment, `persist-credentials: false`, no `${{ }}` inside `run:` (values arrive via `env:`),
`pull_request` only, secrets only in jobs with an `environment:`, no cache in the release and
schedule flows, `id-token: write` only on the attesting deploy jobs, `concurrency`,
`timeout-minutes`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mlspec.compile import render as layer
from mlspec.compile.model import (
    KEYS_COMMAND,
    CiVar,
    Command,
    MatrixVar,
    PostReport,
    SecretVar,
    Var,
)
from mlspec.errors import Diagnostic, MlspecError

if TYPE_CHECKING:
    import jinja2

    from mlspec.compile.model import Artifact, EnvValue, Flow, Intent, Job, Plan, Trigger

WORKFLOWS = {"experiment": ".github/workflows/mlspec-experiment.yml",
             "release": ".github/workflows/mlspec-release.yml",
             "schedule": ".github/workflows/mlspec-schedule.yml"}
OUTPUTS_FILE = "${{ runner.temp }}/mlspec-outputs"


yq = layer.scalar


def _text(value: Any) -> str:
    """A param value as `--set` receives it (matrix values are strings: 1.0 stays 1.0)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _template() -> jinja2.Template:
    return layer.environment().get_template("github/workflow.yml.j2")


def render(plan: Plan) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, flow in plan.flows.items():
        if not flow.jobs:
            continue
        text = _template().render(wf=_workflow(plan, flow))
        out[WORKFLOWS[name]] = re.sub(r"[ \t]+\n", "\n", text)
    return out


# --- values -----------------------------------------------------------------------------------


def expr(plan: Plan, job: Job, value: EnvValue) -> str:
    """An env value: a literal (quoted) or the GitHub expression of a plan Var."""
    if not isinstance(value, Var):
        return yq(value)
    if isinstance(value, CiVar):
        inner = {"base_ref": f"github.base_ref || '{plan.default_branch}'",
                 "ref_name": "github.ref_name", "sha": "github.sha",
                 "pr_number": "github.event.pull_request.number",
                 "repository": "github.repository", "token": "github.token",
                 "variant": "strategy.job-index",
                 "run_url": "format('{0}/{1}/actions/runs/{2}', github.server_url, "
                            "github.repository, github.run_id)",
                 "rollback_to": "github.event.inputs.rollback_to",
                 "rollback_digest": "github.event.inputs.rollback_digest",
                 "actor": "github.actor", "registry_user": "github.actor",
                 "registry_password": "github.token"}[value.name]
    elif isinstance(value, MatrixVar):
        inner = f"matrix.{value.axis}"
    elif isinstance(value, SecretVar):
        inner = f"secrets.{value.name}"
    else:
        inner = (f"steps.outputs.outputs.{value.output}" if value.job == job.id
                 else f"needs.{value.job}.outputs.{value.output}")
    return "${{ " + inner + " }}"


def _glob_condition(plan: Plan, pattern: str) -> str:
    if "*" not in pattern and "?" not in pattern:
        return f"github.ref == 'refs/tags/{pattern}'"
    prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    # GitHub expressions have no glob match; on.push.tags already limits the tags to the
    # declared patterns, so the literal prefix is enough to pick the deploy.
    return f"startsWith(github.ref, 'refs/tags/{prefix}')"


def condition(plan: Plan, trig: Trigger, modes: tuple[str, ...] = ()) -> str:
    if trig.kind == "pull_request":
        return "github.event_name == 'pull_request'"
    if trig.kind == "push_branch":
        return f"github.event_name == 'push' && github.ref == 'refs/heads/{trig.pattern}'"
    if trig.kind == "push_tag":
        return _glob_condition(plan, trig.pattern)
    if trig.kind == "schedule":
        return f"github.event.schedule == '{trig.pattern}'"
    if trig.kind == "rollback":
        return f"{DISPATCH} && {ROLLBACK} != ''"
    if trig.pattern or modes:  # a run of one mode (Flow.modes): input `mode`, `all` by hand
        mode = trig.pattern or "all"
        return f"github.event_name == 'workflow_dispatch' && inputs.mode == '{mode}'"
    return DISPATCH


DISPATCH = "github.event_name == 'workflow_dispatch'"
ROLLBACK = "github.event.inputs.rollback_to"  # null on every other event


def _job_if(plan: Plan, flow: Flow, job: Job) -> list[str]:
    parts: list[str] = []
    if (any(t.kind == "rollback" for t in flow.triggers)
            and not any(t.kind == "rollback" for t in job.when)):
        parts.append(f"!{ROLLBACK}")  # a rollback run runs its own jobs only
    if job.always:  # after failed or skipped needs too, but not when cancelled
        parts.append("!cancelled()")
    if job.on_failure:  # only after a needed job failed
        parts.append("failure()")
    if job.when:
        conds = [condition(plan, t, flow.modes) for t in job.when]
        parts.append(conds[0] if len(conds) == 1 and not parts
                     else "(" + " || ".join(conds) + ")")
    if job.same_repo_only:
        parts.append("github.event.pull_request.head.repo.full_name == github.repository")
    return ["${{ " + " && ".join(parts) + " }}"] if parts else []


# --- steps ------------------------------------------------------------------------------------


def _uses(plan: Plan, action: str) -> str:
    repo = "/".join(action.split("/")[:2])
    if repo not in plan.actions:
        raise MlspecError([Diagnostic(plan.source, 0, 0, f"no pinned version of {repo}",
                                      "compile.action-pin", f"add it under ci.actions: {repo}")])
    version, sha = plan.actions[repo]
    return f"{action}@{sha}  # {version}"


def _step(name: str, *, uses: str | None = None, run: str | None = None,
          with_: list[tuple[str, Any]] | None = None, env: list[tuple[str, str]] | None = None,
          if_: str | None = None, id_: str | None = None) -> dict[str, Any]:
    withs = []
    for key, value in with_ or []:
        if isinstance(value, list):  # an input read as one entry per line (e.g. path)
            listed = layer.line_list(value, f"the {key} input of step {name!r}")
            withs.append({"key": key, "value": layer.text(listed + "\n", 12)})
        else:
            withs.append({"key": key, "value": " " + yq(value)})
    runs: list[str] = []
    if run is not None:
        # a shell script: one plain line, or a block (or quoted scalar) ending in a newline
        plain = "\n" not in run and yq(run) == run
        runs.append(" " + run if plain
                    else layer.text(run if run.endswith("\n") else run + "\n", 10))
    return {"name": yq(name), "id": [id_] if id_ else [], "if": [if_] if if_ else [],
            "uses": [uses] if uses else [], "with": withs, "with_header": [1] if withs else [],
            "env": [{"key": k, "value": v} for k, v in env or []],
            "env_header": [1] if env else [], "run": runs, "continue_on_error": []}


def _artifact_path(art: Artifact) -> str:
    """Where a download puts an artifact: the deepest directory holding every path, which
    upload-artifact makes the artifact's root (so the files land where they were)."""
    dirs = [p.rstrip("/").split("/") if p.endswith("/") else p.split("/")[:-1]
            for p in art.paths]
    common: list[str] = []
    for parts in zip(*dirs, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common) or "."


def _download(plan: Plan, art: Artifact) -> dict[str, Any]:
    if art.per_variant:
        return _step(f"Download {art.name} (every variant)",
                     uses=_uses(plan, "actions/download-artifact"),
                     with_=[("pattern", f"{art.name}.*"), ("path", _artifact_path(art)),
                            ("merge-multiple", True)])
    step = _step(f"Download {art.name}", uses=_uses(plan, "actions/download-artifact"),
                 with_=[("name", art.name), ("path", _artifact_path(art))])
    if art.optional:
        step["continue_on_error"] = [1]
    return step


def variant_suffix(job: Job) -> str:
    """A per-combination artifact suffix: the matrix values when they are safe in an artifact
    name (readable, and what act supports), else the job index."""
    if job.matrix is None:
        return ""
    if all(re.match(r"^[A-Za-z0-9._+-]+$", _text(v)) for _, vs in job.matrix.axes for v in vs):
        return "." + "-".join("${{ matrix." + axis + " }}" for axis, _ in job.matrix.axes)
    return ".${{ strategy.job-index }}"


def _upload(plan: Plan, job: Job, art: Artifact, always: bool) -> dict[str, Any]:
    name = art.name + (variant_suffix(job) if art.per_variant else "")
    paths = [p.rstrip("/") + "/" if p.endswith("/") else p for p in art.paths]
    with_: list[tuple[str, Any]] = [("name", name),
                                    ("path", paths if len(paths) > 1 else paths[0]),
                                    ("if-no-files-found", "warn" if always else "error"),
                                    ("retention-days", 7)]
    if any(part.startswith(".") for p in paths for part in p.split("/")):
        with_.append(("include-hidden-files", True))
    return _step(f"Upload {art.name}", uses=_uses(plan, "actions/upload-artifact"),
                 if_="${{ !cancelled() }}" if always else None, with_=with_)


def _command(plan: Plan, job: Job, cmd: Command) -> dict[str, Any]:
    env = [(k, expr(plan, job, v)) for k, v in sorted(cmd.env.items())]
    # secrets go to the commands only, not to checkout, setup or `pip install`
    env += [(k, "${{ secrets." + name + " }}") for k, name in sorted(job.secrets.items())]
    if job.outputs:
        env.append(("MLSPEC_OUTPUT", OUTPUTS_FILE))
    if_ = "${{ !cancelled() }}" if cmd.always else None
    if cmd.same_repo_only:  # after success, and never in a run of a fork's pull request
        if_ = "${{ " + NOT_FORK + " }}"
    return _step(cmd.name, run=cmd.run, env=env, if_=if_)


NOT_FORK = ("github.event_name != 'pull_request' || "
            "github.event.pull_request.head.repo.full_name == github.repository")


def _intent(intent: Intent) -> Command:
    """An intent as GitHub runs it: the GitHub CLI with the job's own token."""
    token: dict[str, EnvValue] = {"GH_TOKEN": CiVar("token")}
    if isinstance(intent, PostReport):
        report = layer.shell_word(intent.report)
        return Command("post or update the comment", _STICKY.replace("report.md", report),
                       env=token)
    notes = layer.shell_word(intent.notes)
    return Command("create the release", 'gh release create "$TAG" --verify-tag --title "$TAG" '
                   f"--notes-file {notes} {notes}", env=token)


def _intent_env(job: Job) -> dict[str, EnvValue]:
    """Job-wide values an intent's script reads."""
    if any(isinstance(i, PostReport) for i in job.intents):
        return {"PR_NUMBER": CiVar("pr_number"), "REPO": CiVar("repository"),
                "RUN_URL": CiVar("run_url")}
    return {}


_STICKY = """\
marker='<!-- mlspec-report -->'
if [ ! -f report.md ]; then  # a step failed before the report: say so, keep the comment current
  printf '%s\\n## mlspec experiment\\n\\nThe experiment failed before its report: %s\\n' \\
    "$marker" "$RUN_URL" > report.md
fi
if [ "$(head -n 1 report.md)" = "$marker" ]; then
  cp report.md comment.md
else
  { echo "$marker"; cat report.md; } > comment.md
fi
id=$(gh api "repos/$REPO/issues/$PR_NUMBER/comments" --paginate \\
  --jq ".[] | select(.body | startswith(\\"$marker\\")) | .id" | head -n 1)
if [ -n "$id" ]; then
  gh api --method PATCH "repos/$REPO/issues/comments/$id" -F body=@comment.md > /dev/null
else
  gh api --method POST "repos/$REPO/issues/$PR_NUMBER/comments" -F body=@comment.md > /dev/null
fi"""



def _steps(plan: Plan, flow: Flow, job: Job) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    if job.checkout:
        with_: list[tuple[str, Any]] = [("persist-credentials", False)]
        if job.full_history:
            with_.append(("fetch-depth", 0))
        steps.append(_step("Check out", uses=_uses(plan, "actions/checkout"), with_=with_))
    if job.python and job.image is None:
        setup: list[tuple[str, Any]] = [("python-version", plan.python)]
        if flow.name == "experiment":  # no cache where a release is built (cache poisoning)
            # pip's cache, keyed by the requirements file and this workflow (it pins mlspec)
            deps = [*([plan.requirements] if plan.requirements else []), WORKFLOWS[flow.name]]
            setup += [("cache", "pip"), ("cache-dependency-path", deps)]
        steps.append(_step("Set up Python", uses=_uses(plan, "actions/setup-python"),
                           with_=setup))
    if job.python:
        steps.append(_step("Install mlspec", run="\n".join(plan.install)))
    steps.extend(_download(plan, a) for a in job.downloads)
    if job.cache is not None and flow.name == "experiment":
        # every key from the committed spec and files (mlspec.run.cikeys), never baked in
        steps.append(_step("Cache keys", id_="key", run=f'{KEYS_COMMAND} >> "$GITHUB_OUTPUT"'))
        key = "${{ steps.key.outputs." + job.cache.var + " }}"
        if job.cache.per_variant:
            key += variant_suffix(job)
        paths = list(job.cache.paths)
        steps.append(_step("Restore from the cache", id_="cache",
                           uses=_uses(plan, "actions/cache/restore"),
                           with_=[("path", paths if len(paths) > 1 else paths[0]),
                                  ("key", key)]))
    if job.kind == "deploy" and _ghcr_login(plan):
        steps.append(_step("Log in to ghcr.io", env=[
            ("REGISTRY_USER", "${{ github.actor }}"), ("REGISTRY_PASSWORD", "${{ github.token }}")],
            run='printf \'%s\\n\' "$REGISTRY_PASSWORD" | docker login ghcr.io -u "$REGISTRY_USER" '
                "--password-stdin"))
    steps.extend(_command(plan, job, c) for c in job.commands)
    steps.extend(_command(plan, job, _intent(i)) for i in job.intents)
    if job.outputs:
        steps.append(_step("Job outputs", id_="outputs",
                           run='cat "$MLSPEC_OUTPUT" >> "$GITHUB_OUTPUT"',
                           env=[("MLSPEC_OUTPUT", OUTPUTS_FILE)]))
    if job.attest and plan.image:
        steps.append(_step("Attest the image's provenance",
                           uses=_uses(plan, "actions/attest-build-provenance"),
                           with_=[("subject-name", plan.image),
                                  ("subject-digest", "${{ steps.outputs.outputs.digest }}")]))
    steps.extend(_command(plan, job, c) for c in job.after_attest)
    if job.cache is not None and flow.name == "experiment":
        paths = list(job.cache.paths)
        steps.append(_step("Save to the cache", uses=_uses(plan, "actions/cache/save"),
                           if_="steps.cache.outputs.cache-hit != 'true'",
                           with_=[("path", paths if len(paths) > 1 else paths[0]),
                                  ("key", "${{ steps.cache.outputs.cache-primary-key }}")]))
    for path in job.summary:
        word = layer.shell_word(path)
        steps.append(_step(f"Job summary: {path}", if_="${{ !cancelled() }}",
                           run=f'if [ -f {word} ]; then cat {word} >> "$GITHUB_STEP_SUMMARY"; fi'))
    steps.extend(_upload(plan, job, a, job.upload_always) for a in job.uploads)
    return steps


def _ghcr_login(plan: Plan) -> bool:
    """Push to ghcr.io with the job's own token (`packages: write`) unless a secret is named."""
    return bool(plan.image and plan.image.startswith("ghcr.io/")
                and "registry_password" not in plan.secrets)


def _title(job: Job) -> str:
    if job.attest and job.environment is not None:  # the attestation is GitHub's alone
        return f"build, push, attest and deploy to {job.environment.name}"
    return job.name


def _job(plan: Plan, flow: Flow, job: Job) -> dict[str, Any]:
    env: list[tuple[str, str]] = [(k, expr(plan, job, v))
                                  for k, v in sorted({**job.env, **_intent_env(job)}.items())]
    if job.secrets and job.environment is None:  # the plan never does this; keep the rule here
        raise ValueError(f"job {job.id} uses secrets without an environment")
    if (job.environment is None and job.secrets_environment is None
            and any(isinstance(v, SecretVar) for c in job.commands for v in c.env.values())):
        raise ValueError(f"job {job.id} reads a secret without an environment")
    perms = [{"scope": p.scope, "access": p.access, "why": p.why} for p in job.permissions]
    if job.id_token and not any(p.scope == "id-token" for p in job.permissions):
        raise ValueError(f"job {job.id} needs id-token but the plan gives no permission")
    matrix = []
    if job.matrix is not None:
        matrix = [{"key": k, "list": "[" + ", ".join(layer.double_quoted(_text(v))
                                                      for v in values) + "]"}
                  for k, values in job.matrix.axes]
    environment = []
    if job.environment is not None:
        environment.append({"name": yq(job.environment.name), "deployment": [],
                            "url": [yq(job.environment.url)] if job.environment.url else []})
    elif job.secrets_environment is not None:  # its secrets, no deployment record
        environment.append({"name": yq(job.secrets_environment), "url": [],
                            "deployment": [yq(False)]})
    return {
        "id": job.id, "name": yq(_title(job)),
        "needs": ["[" + ", ".join(job.needs) + "]"] if job.needs else [],
        "if": _job_if(plan, flow, job), "runs_on": yq(job.runner), "timeout": job.timeout_minutes,
        "container": [yq(job.image)] if job.image else [],
        "environment": environment, "permissions": perms,
        "no_permissions": [] if perms else [1], "perm_header": [1] if perms else [],
        "matrix": matrix, "matrix_header": [1] if matrix else [],
        "env": [{"key": k, "value": v} for k, v in env],
        "env_header": [1] if env else [],
        "outputs": [{"key": k, "value": "${{ steps.outputs.outputs." + k + " }}"}
                    for k in sorted(job.outputs)],
        "outputs_header": [1] if job.outputs else [],
        "steps": _steps(plan, flow, job),
    }


def _workflow(plan: Plan, flow: Flow) -> dict[str, Any]:
    branches = [t.pattern for t in flow.triggers if t.kind == "push_branch"]
    tags = [t.pattern for t in flow.triggers if t.kind == "push_tag"]
    group = {"experiment": "mlspec-experiment-${{ github.event.pull_request.number || "
                           "github.ref }}",
             "release": "mlspec-release-${{ github.ref }}",
             "schedule": "mlspec-schedule-${{ github.ref }}"}[flow.name]
    return {
        "name": yq(flow.title),
        "pull_request": [1] if any(t.kind == "pull_request" for t in flow.triggers) else [],
        "push": [[*([f"branches: [{', '.join(yq(b) for b in branches)}]"] if branches else []),
                  *([f"tags: [{', '.join(yq(t) for t in tags)}]"] if tags else [])]]
        if branches or tags else [],
        "schedule": [yq(t.pattern) for t in flow.triggers if t.kind == "schedule"],
        "schedule_header": [1] if any(t.kind == "schedule" for t in flow.triggers) else [],
        "manual": [1] if any(t.kind == "manual" for t in flow.triggers) else [],
        "rollback": [1] if any(t.kind == "rollback" for t in flow.triggers) else [],
        "modes": ["[" + ", ".join(("all", *flow.modes)) + "]"] if flow.modes else [],
        "group": group, "cancel": yq(flow.cancel_in_progress),
        "jobs": [_job(plan, flow, j) for j in flow.jobs],
    }
