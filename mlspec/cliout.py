"""What every `mlspec` command shares: option types, output formats, the spec to load, and how
an api Outcome is printed and becomes the exit code (mlspec.cli holds the commands)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from mlspec import layout

SpecOpt = Annotated[Path | None, typer.Option(
    "--file", "-f", metavar="PATH", show_default=False,
    help=f"the spec file [default: {layout.SPEC} here or in a parent directory, up to the "
    "repository root]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
RefOpt = Annotated[str | None, typer.Option("--base", metavar="REF", help="git ref (or release "
                                            "version) of the baseline; default: found from git")]
DEFAULT_SPEC: Path | None = None


class DiagFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


class GraphFormat(StrEnum):
    text = "text"
    mermaid = "mermaid"
    dot = "dot"


class MetricsFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"
    csv = "csv"


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


def _spec(given: Path | None) -> Path:
    """The spec to load: -f as given, or mlspec.yaml here or above (said on stderr when found
    above). Exits 2 with a diagnostic when there is none."""
    from mlspec.errors import MlspecError, Outcome
    from mlspec.specpath import locate

    try:
        found = locate(given)
    except MlspecError as err:
        _finish(Outcome.from_error(err))
    if found.note:
        sys.stderr.write(found.note)
    return found.path


def bare_diff(argv: list[str]) -> list[str]:
    """`mlspec metrics --diff` with no ref means the automatic base (`--diff auto`); click has
    no optional option values, so the bare form is spelled out before parsing."""
    if "metrics" not in argv:
        return argv
    out = list(argv)
    for i in range(len(out) - 1, out.index("metrics"), -1):
        if out[i] == "--diff" and (i + 1 == len(out) or out[i + 1].startswith("-")):
            out.insert(i + 1, "auto")
    return out
