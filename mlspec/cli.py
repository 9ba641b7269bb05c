"""The `mlspec` command line: parse options, call one function in api, print, pick the exit code.

Nothing heavy is imported here: api imports what each command needs when it runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mlspec import __version__, cli_production
from mlspec.cliout import (
    DEFAULT_SPEC,
    DiagFormat,
    GraphFormat,
    JsonOpt,
    MetricsFormat,
    RefOpt,
    SpecOpt,
    _finish,
    _spec,
    bare_diff,
)
from mlspec.lazygroup import lazy_group

app = typer.Typer(
    name="mlspec",
    help="Declarative GitOps for the ML lifecycle: YAML specs in, reproducible CI out.\n\n"
    "Example: mlspec validate && mlspec run && mlspec compile",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: importing rich costs ~60 ms of the 150 ms budget
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlspec {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Declarative GitOps for the ML lifecycle."""


@app.command()
def validate(
    legacy: Annotated[Path | None, typer.Argument(
        metavar="SPEC", show_default=False,
        help="deprecated: the spec file; use -f PATH as every other command does")] = None,
    spec: SpecOpt = DEFAULT_SPEC,
    format: Annotated[DiagFormat, typer.Option("--format", help="text, json or github")] = (
        DiagFormat.text),
) -> None:
    """Load and check the spec; print every error as file:line:col with a hint.

    Example: mlspec validate -f examples/iris/mlspec.yaml --format github
    """
    from mlspec import api

    if legacy is not None:
        if spec is not None:
            raise typer.BadParameter("give the spec once, with -f PATH", param_hint="SPEC")
        sys.stderr.write(f"warning: `mlspec validate {legacy}` is deprecated; use "
                         f"`mlspec validate -f {legacy}`\n")
        spec = legacy
    out = api.validate(_spec(spec))
    if out.code == 0 and format is DiagFormat.json:
        out.text = "[]"
    _finish(out, fmt=format.value)


@app.command()
def graph(
    spec: SpecOpt = DEFAULT_SPEC,
    format: Annotated[GraphFormat, typer.Option("--format", help="text, mermaid or dot")] = (
        GraphFormat.text),
) -> None:
    """Print the step DAG.

    Example: mlspec graph --format mermaid
    """
    from mlspec import api

    _finish(api.graph(_spec(spec), format.value))


@app.command()
def schema() -> None:
    """Print the JSON Schema of mlspec.yaml (for editors).

    Example: mlspec schema > mlspec.schema.json
    """
    from mlspec import api

    _finish(api.schema())


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(
        metavar="DIRECTORY", help="repository to scaffold", show_default=False)] = Path("."),
    name: Annotated[str | None, typer.Option(
        metavar="NAME", help="project name; default: the directory's, transliterated "
        "(proyecto-ñandú -> proyecto-nandu)")] = None,
    target: Annotated[str | None, typer.Option(
        metavar="LIST", help="CI targets, comma-separated: github, gitlab; default: github")]
    = None,
    with_serving: Annotated[bool, typer.Option(
        "--with-serving", help="add an inference section: a serving image deployed on release "
        "tags")] = False,
    nested: Annotated[bool, typer.Option(
        "--nested", help="start a project inside the directory of another mlspec project")]
    = False,
) -> None:
    """Scaffold a working spec and example scripts; refuses to overwrite anything.

    Example: mlspec init --target github,gitlab --with-serving
    """
    from mlspec import api

    _finish(api.init(directory, name, target, with_serving, nested))


@app.command(name="compile")
def compile_(
    spec: SpecOpt = DEFAULT_SPEC,
    target: Annotated[str | None, typer.Option(
        metavar="LIST",
        help="comma-separated: github,gitlab,docker; default: ci.targets plus docker")] = None,
    check: Annotated[bool, typer.Option("--check", help="write nothing; exit 1 with a diff when "
                                        "generated files are out of date")] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite hand-edited files")] = False,
) -> None:
    """Generate the CI pipelines and Dockerfiles from the spec.

    Example: mlspec compile --check
    """
    from mlspec import api

    _finish(api.compile(_spec(spec), target, check=check, force=force))


@app.command()
def run(
    steps: Annotated[list[str] | None, typer.Argument(
        metavar="STEP", help="steps to run (and their upstream); default: all")]
    = None,
    spec: SpecOpt = DEFAULT_SPEC,
    force: Annotated[bool, typer.Option("--force", help="rerun even when up to date")] = False,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="override a param (repeatable)")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="rerun everything (or only the STEPs "
                                         "named; their upstream must be up to date); exit 1 "
                                         "when outs or metrics differ from the lock")] = False,
    sweep: Annotated[bool, typer.Option("--sweep", help="run every sweep variant")] = False,
    base: RefOpt = None,
    no_gates: Annotated[bool, typer.Option("--no-gates", help="do not evaluate gates")] = False,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", metavar="N", help="use up to N cores: independent steps run at once "
        "while their resources.cpus (default 1) add up to at most N (default: the number of "
        "cores)")] = None,
    no_pull: Annotated[bool, typer.Option("--no-pull", help="never pull from the remote")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run steps in order, skipping those whose inputs are unchanged; record mlspec.lock.

    Example: mlspec run train --set n_estimators=200
    """
    from mlspec import api

    _finish(api.run(_spec(spec), steps or [], force=force, sets=set_ or [], verify=verify,
                    sweep=sweep, base=base, gates=not no_gates, jobs=jobs,
                    pull=not no_pull), as_json)


@app.command()
def status(
    spec: SpecOpt = DEFAULT_SPEC,
    as_json: JsonOpt = False,
    exit_code: Annotated[bool, typer.Option("--exit-code", help="exit 1 when any step is stale "
                                            "(as git diff --exit-code), for scripts and hooks")]
    = False,
    ci_keys: Annotated[bool, typer.Option("--ci-keys", help="print the CI cache keys of the "
                                          "steps as NAME=value lines (read by the generated "
                                          "pipelines)")] = False,
) -> None:
    """Which steps are stale, and which input changed for each.

    Example: mlspec status --exit-code || mlspec run
    """
    from mlspec import api

    _finish(api.status(_spec(spec), exit_code=exit_code, ci_keys=ci_keys), as_json)


@app.command(epilog="Exit (--remote): 2 bad input or git history that cannot say what to "
             "keep, 3 remote unusable or deletes disabled (remote.delete-disabled).")
def gc(
    spec: SpecOpt = DEFAULT_SPEC,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="delete; without it, only list what "
                                      "would be deleted and how many bytes")] = False,
    remote: Annotated[bool, typer.Option("--remote", help="the remote's step runs instead: "
                                         "keep those mlspec.lock names at a release tag, at a "
                                         "recent default-branch commit or in the working "
                                         "tree")] = False,
    keep_last: Annotated[int | None, typer.Option(
        "--keep-last", metavar="N", show_default=False, help="with --remote: the newest N "
        "default-branch commits that changed mlspec.lock count as recent [default: 20]")] = None,
    keep_days: Annotated[int | None, typer.Option(
        "--keep-days", metavar="D", show_default=False, help="with --remote: so do those of "
        "the last D days")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Drop local cache runs (.mlspec/cache) that mlspec.lock and .mlspec/steps do not name;
    with --remote, the remote's step runs no release tag or recent commit names.

    Example: mlspec gc --remote --keep-last 50 --yes
    """
    from mlspec import api

    _finish(api.gc(_spec(spec), yes, remote, keep_last, keep_days), as_json)


Steps = Annotated[list[str] | None, typer.Argument(metavar="STEP", help="default: all")]
EXITS = "Exit: 1 a named step stale/absent, 2 bad input, 3 remote unusable, 4 corrupt content."


@app.command(epilog=EXITS)
def push(steps: Steps = None, spec: SpecOpt = DEFAULT_SPEC,
         set_: Annotated[list[str] | None, typer.Option(
             "--set", metavar="KEY=VALUE", help="the params a run was given (a sweep "
             "variant's `mlspec run --set`), repeatable")] = None,
         as_json: JsonOpt = False) -> None:
    """Upload up-to-date steps' outs to the remote. Example: mlspec push train"""
    from mlspec import api
    _finish(api.push(_spec(spec), steps or [], set_ or []), as_json)


@app.command(epilog=EXITS)
def pull(steps: Steps = None, spec: SpecOpt = DEFAULT_SPEC, as_json: JsonOpt = False,
         release: Annotated[str | None, typer.Option(
             "--release", metavar="TAG", help="restore exactly the step runs this release tag "
             "pins, by manifest digest (check the tag out first)")] = None) -> None:
    """Restore stale steps from the remote, hashes checked.

    Example: mlspec pull

    Example: git checkout v1.2.0 && mlspec pull --release v1.2.0
    """
    from mlspec import api
    _finish(api.pull(_spec(spec), steps or [], release=release), as_json)


@app.command()
def metrics(
    spec: SpecOpt = DEFAULT_SPEC,
    diff: Annotated[str | None, typer.Option(
        "--diff", metavar="[REF]", help="compare with a git ref or release version; bare "
        "--diff finds the base (the PR's target, or the previous commit on the default "
        "branch)")] = None,
    format: Annotated[MetricsFormat, typer.Option(
        "--format", metavar="FORMAT",
        help="table (terminal), markdown (PR comment), json, or csv (--history)")
    ] = MetricsFormat.table,
    history: Annotated[bool, typer.Option(
        "--history", help="the declared metrics over the default branch's last commits that "
        "changed mlspec.lock, the release tags, and this change (read from git objects)")]
    = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", metavar="N", help="with --history: that many commits and release tags "
        "[default: 20]")] = None,
) -> None:
    """Metrics from mlspec.lock, their change against a base, and the gates (exit 1 when a gate
    fails); or their history.

    Example: mlspec metrics --diff origin/main --format markdown

    Example: mlspec metrics --history --limit 50 --format csv > history.csv
    """
    from mlspec import api

    _finish(api.metrics(_spec(spec), diff, format.value, history=history, limit=limit),
            format is MetricsFormat.json)


@app.command()
def report(
    spec: SpecOpt = DEFAULT_SPEC,
    base: RefOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE",
                                                help="write to a file")] = None,
) -> None:
    """Markdown for the PR comment / job summary: metrics vs base, gates, params, lineage.

    Example: mlspec report --base origin/main >> "$GITHUB_STEP_SUMMARY"
    """
    from mlspec import api

    _finish(api.report(_spec(spec), base, output))


@app.command()
def build(
    which: Annotated[str, typer.Argument(metavar="IMAGE",
                                                 help="serve or train")] = "serve",
    spec: SpecOpt = DEFAULT_SPEC,
    push: Annotated[bool, typer.Option("--push", help="push to the registry")] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", metavar="TAG",
                                                  help="extra image tag (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the serving or training image through the Docker Engine API, with lineage labels.

    Example: mlspec build serve --push
    """
    from mlspec import api

    _finish(api.build(_spec(spec), which, push=push, tags=tag or []), as_json)


@app.command()
def release(
    version: Annotated[str, typer.Argument(metavar="VERSION",
                                                help="the version, e.g. 1.2.0")],
    spec: SpecOpt = DEFAULT_SPEC,
    message: Annotated[str | None, typer.Option(
        "--message", "-m", metavar="TEXT",
        help="release notes: the model card's notes section and the tag message")] = None,
    push: Annotated[bool, typer.Option("--push", help="push the tag to origin")] = False,
) -> None:
    """Check a clean tree, a fresh lock and passing gates, then tag the model's commit.

    With a remote, every step run is pushed and pinned by manifest digest in the tag first;
    when the remote fails no tag is made (exit 3 unusable, 4 corrupt, 1 a stale step).

    Example: mlspec release 1.2.0 --push
    """
    from mlspec import api

    _finish(api.release(_spec(spec), version, message=message, push=push))


@app.command()
def models(spec: SpecOpt = DEFAULT_SPEC, as_json: JsonOpt = False) -> None:
    """The promoted models (release tags), newest first.

    Example: mlspec models --json
    """
    from mlspec import api

    _finish(api.models(_spec(spec)), as_json)


@app.command()
def lineage(
    ref: Annotated[str, typer.Argument(
        metavar="REF", help="a release version (1.2.0), tag, branch or commit")] = "HEAD",
    spec: SpecOpt = DEFAULT_SPEC,
    as_json: JsonOpt = False,
    model_card: Annotated[bool, typer.Option("--model-card", help="print the model card "
                                             "(markdown) instead")] = False,
) -> None:
    """Where a model came from: commit, data hashes, params, metrics, image digest.

    Example: mlspec lineage 1.2.0 --model-card > MODEL_CARD.md
    """
    from mlspec import api

    _finish(api.lineage(_spec(spec), ref, model_card=model_card), as_json)


app.command()(cli_production.monitor)
app.command()(cli_production.profile)
app.command()(cli_production.serve)
app.command()(cli_production.rollback)


@app.command(name="merge-lock")
def merge_lock(
    base: Annotated[Path, typer.Argument(metavar="BASE", help="the common ancestor's lock (%O)")],
    ours: Annotated[Path, typer.Argument(
        metavar="OURS", help="our lock (%A); the merged lock is written here")],
    theirs: Annotated[Path, typer.Argument(metavar="THEIRS", help="their lock (%B)")],
) -> None:
    """Git merge driver for mlspec.lock: merge three locks entry by entry into OURS.

    A step changed on one branch takes that branch's entry; a step changed differently on
    both is dropped (stale: `mlspec run` re-runs it), never a conflict marker. Exit 2, writing
    nothing, when a file is not a valid lock. Install in a repository (`mlspec init` writes the
    .gitattributes line): echo 'mlspec.lock merge=mlspec-lock' >> .gitattributes and
    git config merge.mlspec-lock.driver "mlspec merge-lock %O %A %B"

    Example: mlspec merge-lock base.lock mlspec.lock theirs.lock
    """
    from mlspec import api

    _finish(api.merge_lock(base, ours, theirs))


app.command()(cli_production.alert)


def main() -> None:
    from mlspec.startup import skip_pydantic_plugin_discovery

    skip_pydantic_plugin_discovery()  # ~12 ms of `validate`; see mlspec/startup.py
    lazy_group(app).main(args=bare_diff(sys.argv[1:]), prog_name="mlspec")
