"""The `mlspec` command line: parse options, call one function in api, print, pick the exit code.

Nothing heavy is imported here: api imports what each command needs when it runs.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from mlspec import __version__, layout

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

SpecOpt = Annotated[Path, typer.Option("--spec", "-f", help="the spec file", show_default=True)]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
DEFAULT_SPEC = Path(layout.SPEC)


class DiagFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


class GraphFormat(StrEnum):
    text = "text"
    mermaid = "mermaid"
    dot = "dot"


class TableFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


def _finish(outcome: Any, as_json: bool = False, fmt: str = "text") -> None:
    """Print an api Outcome and exit with its code."""
    from mlspec.errors import format_diagnostics

    if outcome.diagnostics:
        stream = sys.stdout if fmt in ("json", "github") else sys.stderr
        stream.write(format_diagnostics(outcome.diagnostics, fmt))
        if fmt == "text" and outcome.code == 2:
            n = len(outcome.diagnostics)
            sys.stderr.write(f"{n} error{'s' if n != 1 else ''}\n")
    if outcome.stderr:
        sys.stderr.write(outcome.stderr)
    if as_json and outcome.data is not None:
        sys.stdout.write(json.dumps(outcome.data, indent=2, sort_keys=True) + "\n")
    elif outcome.text and not (fmt in ("json", "github") and outcome.diagnostics):
        sys.stdout.write(outcome.text if outcome.text.endswith("\n") else outcome.text + "\n")
    sys.stdout.flush()
    raise typer.Exit(outcome.code)


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
    spec: Annotated[Path, typer.Argument(help="the spec file")] = DEFAULT_SPEC,
    format: Annotated[DiagFormat, typer.Option("--format", help="text, json or github")] = (
        DiagFormat.text),
) -> None:
    """Load and check the spec; print every error as file:line:col with a hint.

    Example: mlspec validate examples/iris/mlspec.yaml --format github
    """
    from mlspec import api

    out = api.validate(spec)
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

    _finish(api.graph(spec, format.value))


@app.command()
def schema() -> None:
    """Print the JSON Schema of mlspec.yaml (for editors).

    Example: mlspec schema > mlspec.schema.json
    """
    from mlspec import api

    _finish(api.schema())


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="repository to scaffold")] = Path("."),
    name: Annotated[str | None, typer.Option(help="project name; default: the directory's")] = None,
) -> None:
    """Scaffold a working spec and example scripts; refuses to overwrite anything.

    Example: mkdir demo && cd demo && git init && mlspec init && mlspec run
    """
    from mlspec import api

    _finish(api.init(directory, name))


@app.command(name="compile")
def compile_(
    spec: SpecOpt = DEFAULT_SPEC,
    target: Annotated[str | None, typer.Option(
        help="comma-separated: github,gitlab,docker; default: ci.targets plus docker")] = None,
    check: Annotated[bool, typer.Option("--check", help="write nothing; exit 1 with a diff when "
                                        "generated files are out of date")] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite hand-edited files")] = False,
) -> None:
    """Generate the CI pipelines and Dockerfiles from the spec.

    Example: mlspec compile --check
    """
    from mlspec import api

    _finish(api.compile(spec, target, check=check, force=force))


@app.command()
def run(
    steps: Annotated[list[str] | None, typer.Argument(help="steps to run (and their upstream)")]
    = None,
    spec: SpecOpt = DEFAULT_SPEC,
    force: Annotated[bool, typer.Option("--force", help="rerun even when up to date")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a param: name=value")]
    = None,
    verify: Annotated[bool, typer.Option("--verify", help="rerun everything; exit 1 when outs or "
                                         "metrics differ from the lock")] = False,
    sweep: Annotated[bool, typer.Option("--sweep", help="run every sweep variant")] = False,
    base: Annotated[str | None, typer.Option("--base", help="git ref of the baseline")] = None,
    no_gates: Annotated[bool, typer.Option("--no-gates", help="do not evaluate gates")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run steps in order, skipping those whose inputs are unchanged; record mlspec.lock.

    Example: mlspec run train --set n_estimators=200
    """
    from mlspec import api

    _finish(api.run(spec, steps or [], force=force, sets=set_ or [], verify=verify, sweep=sweep,
                    base=base, gates=not no_gates), as_json)


@app.command()
def status(spec: SpecOpt = DEFAULT_SPEC, as_json: JsonOpt = False) -> None:
    """Which steps are stale, and which input changed for each.

    Example: mlspec status --json
    """
    from mlspec import api

    _finish(api.status(spec), as_json)


@app.command()
def metrics(
    spec: SpecOpt = DEFAULT_SPEC,
    diff: Annotated[str | None, typer.Option("--diff", help="git ref to compare with; "
                                             "'auto' finds the base")] = None,
    format: Annotated[TableFormat, typer.Option("--format")] = TableFormat.table,
) -> None:
    """Metrics from mlspec.lock, and their change against another git ref.

    Example: mlspec metrics --diff origin/main --format markdown
    """
    from mlspec import api

    _finish(api.metrics(spec, diff, format.value), format is TableFormat.json)


@app.command()
def report(
    spec: SpecOpt = DEFAULT_SPEC,
    base: Annotated[str | None, typer.Option("--base", help="git ref of the baseline")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to a file")] = None,
) -> None:
    """Markdown for the PR comment / job summary: metrics vs base, gates, params, lineage.

    Example: mlspec report --base origin/main >> "$GITHUB_STEP_SUMMARY"
    """
    from mlspec import api

    _finish(api.report(spec, base, output))


@app.command()
def build(
    which: Annotated[str, typer.Argument(help="serve or train")] = "serve",
    spec: SpecOpt = DEFAULT_SPEC,
    push: Annotated[bool, typer.Option("--push", help="push to the registry")] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="extra tag")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the serving or training image through the Docker Engine API, with lineage labels.

    Example: mlspec build serve --push
    """
    from mlspec import api

    _finish(api.build(spec, which, push=push, tags=tag or []), as_json)


@app.command()
def release(
    version: Annotated[str, typer.Argument(help="the version, e.g. 1.2.0")],
    spec: SpecOpt = DEFAULT_SPEC,
    message: Annotated[str | None, typer.Option("--message", "-m")] = None,
    push: Annotated[bool, typer.Option("--push", help="push the tag to origin")] = False,
) -> None:
    """Check a clean tree, a fresh lock and passing gates, then tag the model's commit.

    Example: mlspec release 1.2.0 --push
    """
    from mlspec import api

    _finish(api.release(spec, version, message=message, push=push))


@app.command()
def models(spec: SpecOpt = DEFAULT_SPEC, as_json: JsonOpt = False) -> None:
    """The promoted models (release tags), newest first.

    Example: mlspec models --json
    """
    from mlspec import api

    _finish(api.models(spec), as_json)


@app.command()
def lineage(
    ref: Annotated[str, typer.Argument(help="a tag or commit")] = "HEAD",
    spec: SpecOpt = DEFAULT_SPEC,
    as_json: JsonOpt = False,
    model_card: Annotated[bool, typer.Option("--model-card", help="print the model card "
                                             "(markdown) instead")] = False,
) -> None:
    """Where a model came from: commit, data hashes, params, metrics, image digest.

    Example: mlspec lineage v1.2.0 --model-card > MODEL_CARD.md
    """
    from mlspec import api

    _finish(api.lineage(spec, ref, model_card=model_card), as_json)


@app.command()
def serve(
    model: Annotated[Path, typer.Argument(help="a pickled or joblib scikit-learn model")],
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    allow_unlocked: Annotated[bool, typer.Option(
        "--allow-unlocked",
        help="serve a model that mlspec.lock does not record with these exact bytes "
        "(no lock, no entry, or a different hash). Unpickling runs any code the file holds: "
        "use it only for a file you trust as you trust code you run")] = False,
) -> None:
    """Serve a scikit-learn model over HTTP: POST /predict, GET /healthz, GET /metadata.

    Loading a pickle or joblib file runs code from that file. So the model is loaded only
    when the mlspec.lock of its repository records its exact bytes (sha256, checked before
    unpickling): a file that `mlspec run` produced. Never serve a model file from elsewhere.

    Example: mlspec serve model/model.pkl --port 8080 --host 0.0.0.0
    """
    from mlspec import api

    _finish(api.serve(model, host=host, port=port, allow_unlocked=allow_unlocked))


def main() -> None:
    from mlspec.startup import skip_pydantic_plugin_discovery

    skip_pydantic_plugin_discovery()  # ~12 ms of `validate`; see mlspec/startup.py
    app()
