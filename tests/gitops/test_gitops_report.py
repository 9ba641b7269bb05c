"""`mlspec report`: the PR comment markdown, against a golden file, and rendered for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git, mlspec
from gitops_helpers import copy_history, template

EXPECTED = Path(__file__).parent / "expected"


@pytest.fixture
def repo(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_history(template(tmp_path_factory), tmp_path / "repo")


def report(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    r = mlspec("report", *args, cwd=repo, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_report_matches_golden(repo: Path, update_golden: bool) -> None:
    text = report(repo, "--base", "main")
    golden = EXPECTED / "report.md"
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


def test_report_is_deterministic_and_written_to_a_file(repo: Path) -> None:
    first = report(repo, "--base", "main")
    r = mlspec("report", "--base", "main", "-o", "out/report.md", cwd=repo)
    assert r.returncode == 0 and r.stdout == ""
    assert (repo / "out" / "report.md").read_text() == first
    assert str(repo) not in first  # no absolute paths


def test_report_in_a_github_pull_request(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git("clone", "-q", "--no-local", str(repo), str(clone), cwd=tmp_path)
    git("checkout", "-q", "--detach", "origin/deeper", cwd=clone)
    text = report(clone, env={"GITHUB_BASE_REF": "main"})
    assert text.splitlines()[0] == "<!-- mlspec-report -->"
    assert text.count("<!-- mlspec-report -->") == 1
    assert "base `origin/main`" in text
    assert "❌ **2 of 4 gates failed**" in text


def test_report_when_the_base_cannot_be_found_still_renders(repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "shallow"
    git("clone", "-q", "--depth", "1", "--branch", "deeper", f"file://{repo}", str(dest),
        cwd=tmp_path)
    text = report(dest)
    assert "no base (the default branch 'main' is not in this clone" in text
    assert "⚪ skipped" in text  # relative gates wait for a baseline
    r = mlspec("report", "--base", "auto", cwd=dest)
    assert r.returncode == 2 and "git fetch --depth=50 origin main" in r.stderr


def test_report_renders_as_github_flavoured_markdown(repo: Path) -> None:
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(report(repo, "--base", "main"))
    assert html.startswith("<!-- mlspec-report -->")  # hidden in the rendered comment
    # metrics, metric history, gates, params, data checks, lineage, data hashes, artifact hashes
    assert html.count("<table>") == 8
    assert '<code class="language-mermaid">xychart-beta' in html
    assert '<code class="language-mermaid">flowchart TD' in html
    assert "<td><strong>f1_macro</strong> (primary)</td>" in html
    assert "<td><code>f1_macro &gt;= baseline - 0.01</code></td>" in html
    assert "<blockquote>" in html and "Hypothesis:" in html
    assert "&lt;ci@example.com&gt;" in html  # the author's address is text, not a tag


def test_report_shows_sweep_variants(repo: Path) -> None:
    from gitops_helpers import env

    spec = repo / "mlspec.yaml"
    spec.write_text(spec.read_text().replace(
        "      outs: [model/model.json]\n",
        "      outs: [model/model.json]\n      sweep: {max_depth: [3, 5, 7]}\n"))
    r = mlspec("run", "--sweep", "--no-gates", cwd=repo, env=env())
    assert r.returncode == 0, r.stderr
    text = report(repo, "--base", "main")
    assert "**train**, ranked by `f1_macro`:" in text
    assert "| ★ | `7` | 0.9801 |" in text and "|  | `3` | 0.9331 |" in text


def test_warns_when_the_lock_misses_the_latest_run(repo: Path) -> None:
    """As in a CI job that restored the step jobs' records but not their lock."""
    git("checkout", "main", "--", "mlspec.lock", cwd=repo)  # records of the deeper run remain
    text = report(repo, "--base", "main")
    assert "> [!WARNING]\n> mlspec.lock does not hold the latest run of train, evaluate" in text
    r = mlspec("metrics", "--diff", "main", cwd=repo)
    assert r.returncode == 0 and "warning: mlspec.lock does not hold" in r.stderr
    from gitops_helpers import env

    assert mlspec("run", "--no-gates", cwd=repo, env=env()).returncode == 0  # adopts them
    assert "[!WARNING]" not in report(repo, "--base", "main")
    assert "does not hold" not in mlspec("metrics", cwd=repo).stderr


def test_a_report_too_long_for_a_comment_drops_the_hash_lists(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlspec.gitops.report
    from mlspec.gitops.commands import report_outcome
    from mlspec.spec.loader import load_spec

    loaded = load_spec(repo / "mlspec.yaml")
    full = report_outcome(loaded, "main", None).text
    monkeypatch.setattr(mlspec.gitops.report, "MAX_CHARS", len(full) - 1)
    short = report_outcome(loaded, "main", None).text
    assert "Data and artifact hashes" in full and "Data and artifact hashes" not in short
    assert "1 data files and 2 artifacts: too many to list here" in short
    assert short.startswith("<!-- mlspec-report -->") and "### Metrics" in short
