"""The command line surface: --help with an example for every command, --version, exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import EXAMPLES, REPO, mlspec

from mlspec import __version__
from mlspec.cli import app

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands
                  if c.callback is not None)


def test_every_design_command_exists() -> None:
    assert set(COMMANDS) >= {"init", "validate", "compile", "graph", "run", "status", "metrics",
                             "report", "build", "release", "models", "lineage", "serve",
                             "schema"}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_an_example(command: str) -> None:
    r = mlspec(command, "--help", cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Usage: mlspec {command} ")
    examples = re.findall(r"Example: (mlspec .+|mkdir .+)", r.stdout)
    assert examples, r.stdout
    assert any(f"mlspec {command}" in e for e in examples), examples
    assert "Traceback" not in r.stdout + r.stderr


def test_top_level_help_lists_commands_with_an_example() -> None:
    for args in (["--help"], ["-h"]):
        r = mlspec(*args, cwd=REPO)
        assert r.returncode == 0
        assert "Example: mlspec validate" in r.stdout
        for command in COMMANDS:
            assert f"\n  {command} " in r.stdout, command


def test_no_arguments_prints_help_and_exits_2() -> None:
    r = mlspec(cwd=REPO)
    assert r.returncode == 2
    assert "Usage: mlspec" in r.stdout + r.stderr


def test_version() -> None:
    r = mlspec("--version", cwd=REPO)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"mlspec {__version__}\n", "")
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_exit_0_on_success() -> None:
    for args in (["validate"], ["graph"], ["graph", "--format", "mermaid"], ["schema"]):
        r = mlspec(*args, cwd=EXAMPLES / "iris")
        assert r.returncode == 0, (args, r.stderr)
        assert r.stderr == ""


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["validate", "--format", "xml"],
    ["graph", "--format", "png"],
    ["no-such-command"],
    ["validate", "a.yaml", "b.yaml"],
])
def test_exit_2_on_bad_usage(args: list[str]) -> None:
    r = mlspec(*args, cwd=EXAMPLES / "iris")
    assert r.returncode == 2, r.stdout
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("Usage: mlspec")


def test_exit_2_on_missing_spec(tmp_path: Path) -> None:
    r = mlspec("validate", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == ("no spec at mlspec.yaml [spec.missing-file]\n"
                        "  hint: run `mlspec init` to create one\n1 error\n")
    r = mlspec("graph", "--spec", "elsewhere/ml.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("no spec at elsewhere/ml.yaml")


def test_graph_formats() -> None:
    r = mlspec("graph", "--format", "mermaid", cwd=EXAMPLES / "iris")
    assert r.stdout.splitlines()[0] == "flowchart TD"
    assert "  s_prepare --> s_train" in r.stdout
    r = mlspec("graph", "--format", "dot", cwd=EXAMPLES / "iris")
    assert r.stdout.startswith("digraph mlspec {")
    assert '  "train" -> "evaluate";' in r.stdout


def test_exit_1_when_a_check_fails(capsys: pytest.CaptureFixture[str]) -> None:
    """CheckFailed (gates, --check, --verify) becomes exit 1; the commands raising it are
    tested in their areas, the mapping here."""
    import typer

    from mlspec.api import _outcome
    from mlspec.cli import _finish
    from mlspec.errors import CheckFailed, Outcome

    @_outcome
    def failing() -> Outcome:
        raise CheckFailed("gate 'f1_macro >= 0.90' failed: 0.85")

    out = failing()
    assert (out.code, out.stderr) == (1, "gate 'f1_macro >= 0.90' failed: 0.85\n")
    with pytest.raises(typer.Exit) as exit_:
        _finish(out)
    assert exit_.value.exit_code == 1
    assert capsys.readouterr().err == "gate 'f1_macro >= 0.90' failed: 0.85\n"
