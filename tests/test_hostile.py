"""The hostile-spec corpus: every bad input gets its exact diagnostic, exit 2, and no writes.

Each case is a directory under tests/hostile/: its mlspec.yaml (plus any stage files), or a
generator below for inputs that should not be committed (a 20 MB file, a NUL byte, a symlink
out of the repository), and expected.txt: the exact stderr of `mlspec validate`, that is every
diagnostic's file, line, column, message, rule and hint. Regenerate with `pytest --update-golden`
and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import mlspec

HOSTILE = Path(__file__).parent / "hostile"
BASE = b"version: 1\nproject: {name: hostile}\n"


def _deep(d: Path) -> None:
    (d / "mlspec.yaml").write_text("version: 1\nproject: {name: hostile}\nnested: "
                                   + "[" * 5000 + "]" * 5000 + "\n")


def _huge(d: Path) -> None:
    with (d / "mlspec.yaml").open("wb") as fh:
        fh.write(BASE + b"design:\n  hypothesis: '")
        fh.write(b"x" * (20 * 1024 * 1024))
        fh.write(b"'\n")


def _nul(d: Path) -> None:
    (d / "mlspec.yaml").write_bytes(BASE + b"design: {hypothesis: \"nul\x00byte\"}\n")


def _utf8(d: Path) -> None:
    (d / "mlspec.yaml").write_bytes(BASE + b"design: {hypothesis: \"caf\xe9\"}\n")


def _symlink_dep(d: Path) -> None:
    (d / "mlspec.yaml").write_text(
        "version: 1\nproject: {name: hostile}\ndata:\n  steps:\n    leak:\n"
        "      command: cp passwd.txt out.txt\n      deps: [passwd.txt]\n      outs: [out.txt]\n")
    os.symlink("/etc/passwd", d / "passwd.txt")


def _symlink_stage(d: Path) -> None:
    (d / "mlspec.yaml").write_text("version: 1\nproject: {name: hostile}\nmodel: model.yaml\n")
    outside = d.parent / "outside-model.yaml"
    outside.write_text("steps: {}\n")
    os.symlink(outside, d / "model.yaml")


def _symlink_loop(d: Path) -> None:
    (d / "mlspec.yaml").write_text(
        "version: 1\nproject: {name: hostile}\ndata:\n  steps:\n    spin:\n"
        "      command: cat loop > out.txt\n      deps: [loop]\n      outs: [out.txt]\n"
        "model: model.yaml\n")
    os.symlink("loop", d / "loop")
    os.symlink("model.yaml", d / "model.yaml")


def _out_via_symlinked_dir(d: Path) -> None:
    (d / "mlspec.yaml").write_text(
        "version: 1\nproject: {name: hostile}\ndata:\n  steps:\n    drop:\n"
        "      command: python drop.py\n      outs: [reports/summary.txt]\n")
    outside = d.parent / "elsewhere"
    outside.mkdir()
    os.symlink(outside, d / "reports")


GENERATED: dict[str, Callable[[Path], None]] = {
    "symlink_loop": _symlink_loop,
    "out_through_symlinked_dir": _out_via_symlinked_dir,
    "deep_nesting": _deep,
    "huge_file": _huge,
    "nul_byte": _nul,
    "invalid_utf8": _utf8,
    "symlink_out_of_repo": _symlink_dep,
    "symlink_stage_file": _symlink_stage,
}
CASES = sorted(p.name for p in HOSTILE.iterdir() if p.is_dir())


def _setup(case: str, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    src = HOSTILE / case
    shutil.copytree(src, repo, ignore=shutil.ignore_patterns("expected.txt"), symlinks=True)
    if case in GENERATED:
        GENERATED[case](repo)
    assert (repo / "mlspec.yaml").exists() or os.path.islink(repo / "mlspec.yaml"), case
    return repo


def _listing(root: Path) -> list[tuple[str, int, int]]:
    """Every entry under root (and beside it) with its size and mtime: any write shows."""
    out = []
    for base in (root.parent,):
        for dirpath, dirnames, filenames in os.walk(base):
            for name in sorted(dirnames + filenames):
                p = Path(dirpath, name)
                st = p.lstat()
                out.append((str(p.relative_to(base)), st.st_size, st.st_mtime_ns))
    return sorted(out)


def test_corpus_is_complete() -> None:
    assert len(CASES) >= 25
    for case in CASES:
        assert (HOSTILE / case / "expected.txt").is_file(), f"{case} has no expected.txt"
        assert (HOSTILE / case / "mlspec.yaml").exists() or case in GENERATED, case
    assert set(GENERATED) <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_hostile_spec(case: str, tmp_path: Path, update_golden: bool) -> None:
    repo = _setup(case, tmp_path)
    before = _listing(repo)
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stdout == ""
    expected = HOSTILE / case / "expected.txt"
    if update_golden:
        expected.write_text(r.stderr)
    assert r.stderr == expected.read_text()
    # every diagnostic is located and names its rule
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith(("mlspec.yaml:", "specs/"))]
    assert lines, r.stderr
    for ln in lines:
        assert ln.endswith("]") and " [" in ln, ln
    assert _listing(repo) == before, "validate wrote something"


# Commands that load the spec first must also stop with exit 2 and write nothing.
WRITERS = ["graph", "compile", "run", "status"]


@pytest.mark.parametrize("command", WRITERS)
def test_hostile_commands_write_nothing(command: str, tmp_path: Path) -> None:
    for case in ("cycle", "misspelt_key", "symlink_out_of_repo", "all_errors_at_once"):
        repo = _setup(case, tmp_path / case)
        before = _listing(repo)
        r = mlspec(command, cwd=repo)
        assert r.returncode == 2, (case, command, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr + r.stdout
        assert r.stderr == (HOSTILE / case / "expected.txt").read_text()
        assert _listing(repo) == before, f"{command} wrote something for {case}"


def test_billion_laughs_is_rejected_in_milliseconds(tmp_path: Path) -> None:
    from mlspec.errors import MlspecError
    from mlspec.spec.loader import load_spec
    from mlspec.spec.yamlsafe import parse_yaml

    parse_yaml("warm: up\n", "warm.yaml")  # import the parser outside the timing
    repo = _setup("billion_laughs", tmp_path)
    timings = []
    for _ in range(3):  # best of three: a busy CI box should not make this flaky
        start = time.perf_counter()
        with pytest.raises(MlspecError) as err:
            load_spec(repo / "mlspec.yaml", display="mlspec.yaml")
        timings.append(time.perf_counter() - start)
        assert [d.rule for d in err.value.diagnostics] == ["yaml.anchor"]
    # expanding it would build 9**8 = 43 million strings; stopping at the anchor takes ~1 ms
    assert min(timings) < 0.02, f"took {min(timings) * 1000:.1f} ms"


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    """The size is checked with stat(): a 20 MB spec costs no parsing and no reading."""
    from mlspec.errors import MlspecError
    from mlspec.spec.loader import load_spec

    repo = _setup("huge_file", tmp_path)
    start = time.perf_counter()
    with pytest.raises(MlspecError) as err:
        load_spec(repo / "mlspec.yaml", display="mlspec.yaml")
    assert time.perf_counter() - start < 0.05
    assert [d.rule for d in err.value.diagnostics] == ["yaml.too-large"]


@pytest.mark.parametrize("case", ["all_errors_at_once", "bad_stage_file", "misspelt_key"])
def test_json_format(case: str, tmp_path: Path) -> None:
    repo = _setup(case, tmp_path)
    r = mlspec("validate", "--format", "json", cwd=repo)
    assert r.returncode == 2
    items = json.loads(r.stdout)
    text = (HOSTILE / case / "expected.txt").read_text()
    rendered = [f"{d['file']}:{d['line']}:{d['col']}: {d['message']} [{d['rule']}]"
                for d in items]
    assert [ln for ln in text.splitlines() if not ln.startswith(("  hint:", f"{len(items)} "))
            ] == rendered
    assert all(set(d) == {"file", "line", "col", "message", "rule", "hint"} for d in items)


def test_github_format(tmp_path: Path) -> None:
    repo = _setup("misspelt_key", tmp_path)
    r = mlspec("validate", "--format", "github", cwd=repo)
    assert r.returncode == 2
    assert r.stdout == (
        "::error file=mlspec.yaml,line=6,col=7,title=spec.unknown-field::unknown field 'comand' "
        "in step 'prepare' [spec.unknown-field] (hint: did you mean 'command'?)\n")


def test_github_format_escapes(tmp_path: Path) -> None:
    repo = _setup("bad_stage_file", tmp_path)
    r = mlspec("validate", "--format", "github", cwd=repo)
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert lines and all(ln.startswith("::error file=") for ln in lines)
    assert "file=specs/model.yaml,line=6,col=5,title=spec.unknown-field::" in r.stdout


def test_valid_spec_formats() -> None:
    from conftest import EXAMPLES

    r = mlspec("validate", "--format", "json", cwd=EXAMPLES / "iris")
    assert (r.returncode, json.loads(r.stdout)) == (0, [])
    r = mlspec("validate", "--format", "github", cwd=EXAMPLES / "iris")
    assert r.returncode == 0 and "::error" not in r.stdout


def test_placeless_diagnostics_print_without_a_pseudo_location() -> None:
    """An error with no place (line 0) prints no 'file:0:0:' or invented '1:1'."""
    from mlspec.errors import Diagnostic, format_diagnostics

    nowhere = Diagnostic.nowhere("git is not installed", "git.missing", "install git")
    whole = Diagnostic.in_file("mlspec.lock", "cannot read the lock", "lock.read")
    placed = Diagnostic("mlspec.yaml", 3, 5, "bad", "spec.x")
    assert format_diagnostics([nowhere, whole, placed]) == (
        "git is not installed [git.missing]\n  hint: install git\n"
        "mlspec.lock: cannot read the lock [lock.read]\n"
        "mlspec.yaml:3:5: bad [spec.x]\n")
    assert format_diagnostics([nowhere, whole, placed], "github") == (
        "::error title=git.missing::git is not installed [git.missing] (hint: install git)\n"
        "::error file=mlspec.lock,title=lock.read::cannot read the lock [lock.read]\n"
        "::error file=mlspec.yaml,line=3,col=5,title=spec.x::bad [spec.x]\n")
    items = json.loads(format_diagnostics([nowhere], "json"))
    assert items == [{"file": "", "line": 0, "col": 0, "message": "git is not installed",
                      "rule": "git.missing", "hint": "install git"}]


def test_missing_spec_has_no_location(tmp_path: Path) -> None:
    r = mlspec("validate", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("no mlspec.yaml in "), r.stderr
    assert "[spec.missing-file]" in r.stderr.splitlines()[0]


@pytest.mark.parametrize("written", ["true", "1.0", "0x1", "+1", "1e0", "01", "0o1", '"1"', "'1'",
                                     "2", "!!int 1"])
def test_version_must_be_the_integer_literal_1(written: str, tmp_path: Path) -> None:
    from mlspec.errors import MlspecError
    from mlspec.spec.loader import load_spec

    spec = tmp_path / "mlspec.yaml"
    spec.write_text(f"version: {written}\nproject: {{name: p}}\n")
    with pytest.raises(MlspecError) as err:
        load_spec(spec, display="mlspec.yaml")
    [d] = err.value.diagnostics
    assert (d.file, d.line, d.col) == ("mlspec.yaml", 1, 10), d
    assert d.rule in ("spec.version", "yaml.tag"), d
    spec.write_text("version: 1\nproject: {name: p}\n")
    assert load_spec(spec).spec.version == 1
