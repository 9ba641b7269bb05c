"""The command line surface: --help with an example for every command, --version, exit codes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import BIN, EXAMPLES, REPO, git, init_repo, mlspec

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
    assert "no mlspec.yaml in" in r.stderr
    assert "hint: run `mlspec init` to create one" in r.stderr
    r = mlspec("graph", "-f", "elsewhere/ml.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert "no spec at elsewhere/ml.yaml" in r.stderr


def _project(tmp_path: Path) -> Path:
    """A scaffolded project in a real git repository, with a nested source directory."""
    root = init_repo(tmp_path / "proj")
    assert mlspec("init", cwd=root).returncode == 0
    (root / "src" / "deep").mkdir()
    return root


def test_a_subdirectory_finds_the_spec_above(tmp_path: Path) -> None:
    """issue 12.1: `cd src && mlspec status` used the spec above, not 'run mlspec init'."""
    root = _project(tmp_path)
    for cwd, shown in ((root / "src", "../mlspec.yaml"),
                       (root / "src" / "deep", "../../mlspec.yaml")):
        r = mlspec("status", "--json", cwd=cwd)
        assert r.returncode == 0, r.stderr
        assert r.stderr == f"mlspec: using {shown} (found in {root}); steps run there\n"
        assert json.loads(r.stdout)["stale"] == ["prepare", "train", "evaluate"]
    # in the spec's own directory nothing is said
    r = mlspec("validate", cwd=root)
    assert (r.returncode, r.stderr) == (0, "")
    # diagnostics name the spec as the user can open it from where they are
    spec = root / "mlspec.yaml"
    spec.write_text(spec.read_text().replace("version: 1", "version: 7"))
    r = mlspec("validate", cwd=root / "src")
    assert r.returncode == 2
    assert "\n../mlspec.yaml:" in "\n" + r.stderr.split("\n", 1)[1], r.stderr


def test_the_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    outer = _project(tmp_path)
    inner = init_repo(outer / "vendor" / "other")  # a nested repository: its own root
    r = mlspec("status", cwd=inner)
    assert r.returncode == 2
    assert "no mlspec.yaml in" in r.stderr and "mlspec init" in r.stderr


def test_never_advise_init_when_a_spec_exists_above(tmp_path: Path) -> None:
    root = _project(tmp_path)
    r = mlspec("status", "-f", "mlspec.yaml", cwd=root / "src")
    assert r.returncode == 2
    assert "mlspec init" not in r.stderr
    assert "a spec exists at ../mlspec.yaml" in r.stderr


def test_specs_below_are_named_instead_of_init(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "mono")
    _project(repo / "projects")
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 2
    assert "projects/proj/mlspec.yaml" in r.stderr and "mlspec init" not in r.stderr


def test_steps_run_in_the_spec_directory_from_a_subdirectory(tmp_path: Path) -> None:
    root = _project(tmp_path)
    git("add", "-A", cwd=root)
    r = mlspec("run", "prepare", cwd=root / "src", env={"PATH": f"{BIN}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "data" / "dataset.csv").is_file()
    assert not (root / "src" / "data").exists() and not (root / "src" / "mlspec.lock").exists()


def test_status_exit_code(tmp_path: Path) -> None:
    """issue 12.14: --exit-code exits 1 while a step is stale, 0 once everything is fresh."""
    root = _project(tmp_path)
    assert mlspec("status", cwd=root).returncode == 0  # informational without the flag
    r = mlspec("status", "--exit-code", cwd=root)
    assert r.returncode == 1 and "3 of 3 step(s) stale" in r.stdout
    r = mlspec("run", "--no-gates", cwd=root, env={"PATH": f"{BIN}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stdout + r.stderr
    r = mlspec("status", "--exit-code", cwd=root)
    assert r.returncode == 0, r.stdout


def test_every_command_takes_the_spec_as_dash_f() -> None:
    """issue 12.7: one spelling of the spec option for every command that reads one."""
    for command in COMMANDS:
        if command in ("init", "schema", "serve", "merge-lock", "profile", "alert"):  # no spec read
            continue
        r = mlspec(command, "--help", cwd=REPO)
        assert "-f, --file PATH" in r.stdout, (command, r.stdout)


def test_validate_positional_still_works_as_a_deprecated_alias() -> None:
    r = mlspec("validate", "mlspec.yaml", cwd=EXAMPLES / "iris")
    assert r.returncode == 0, r.stderr
    assert "deprecated; use `mlspec validate -f mlspec.yaml`" in r.stderr
    r = mlspec("validate", "mlspec.yaml", "-f", "mlspec.yaml", cwd=EXAMPLES / "iris")
    assert r.returncode == 2


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_python_types_and_every_option_is_explained(command: str) -> None:
    """issue 12.7: no `<list[str]>` / `<str>` metavars; every option says what it does."""
    r = mlspec(command, "--help", cwd=REPO)
    assert not re.search(r"<(?:[a-z]+|list\[.*?\])>", r.stdout), r.stdout
    options = r.stdout.split("Options:", 1)[1]
    for line in options.splitlines():
        m = re.match(r"  (-\S.*?)(?:  +(.*))?$", line)
        if m:  # an option's first line: its description starts on the same line
            assert m.group(2), (command, line)


def test_metrics_diff_without_a_ref_means_the_automatic_base() -> None:
    from mlspec.cli import bare_diff

    assert bare_diff(["metrics", "--diff"]) == ["metrics", "--diff", "auto"]
    assert bare_diff(["metrics", "--diff", "--format", "json"]) == [
        "metrics", "--diff", "auto", "--format", "json"]
    assert bare_diff(["metrics", "--diff", "v1.0.0"]) == ["metrics", "--diff", "v1.0.0"]
    assert bare_diff(["run", "--diff"]) == ["run", "--diff"]


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
