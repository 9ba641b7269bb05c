"""`mlspec release`, `mlspec models`, `mlspec lineage`: refusals, the annotated tag and its
model card, pushing, and reading releases back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import git, mlspec
from gitops_helpers import commit, copy_history, env, run, set_depth, template


@pytest.fixture
def repo(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The history on main, its outputs rebuilt by `mlspec run` (as after a checkout + run)."""
    root = copy_history(template(tmp_path_factory), tmp_path / "repo")
    git("checkout", "-q", "main", cwd=root)
    run(root)
    assert git("status", "--porcelain", cwd=root) == ""  # the rerun reproduced the lock
    return root


def release(repo: Path, *args: str, date: str = "2026-02-01T09:00:00Z"
            ) -> tuple[int, str, str]:
    r = mlspec("release", *args, cwd=repo,
               env={**env(), "GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date})
    assert "Traceback" not in r.stderr
    return r.returncode, r.stdout, r.stderr


def test_good_release_creates_the_annotated_tag_with_the_model_card(repo: Path) -> None:
    code, out, err = release(repo, "1.0.0", "-m", "First promoted model.")
    assert code == 0, err
    head = git("rev-parse", "HEAD", cwd=repo)
    assert out.startswith(f"tagged v1.0.0 at {head[:12]} (f1_macro 0.9665)")
    assert "git push origin v1.0.0" in out
    assert git("cat-file", "-t", "v1.0.0", cwd=repo) == "tag"  # annotated, not lightweight
    assert git("rev-parse", "v1.0.0^{commit}", cwd=repo) == head
    card = git("tag", "-l", "--format=%(contents)", "v1.0.0", cwd=repo)
    lock = (repo / "mlspec.lock").read_text()
    data_hash = re.search(r'data/toy.csv: "(sha256:[0-9a-f]{64})"', lock)
    assert data_hash is not None
    assert card.startswith("# Model card: toy 1.0.0")
    assert "First promoted model." in card
    assert "| **f1_macro** (primary) | 0.9665 | maximize |" in card
    assert "| train | `max_depth` | `5` |" in card
    assert f"| `data/toy.csv` | `{data_hash.group(1)}` |" in card
    assert f"| commit | `{head}` |" in card
    from mlspec.spec.loader import load_spec

    assert f"| spec | `sha256:{load_spec(repo / 'mlspec.yaml').spec_hash}` |" in card


def test_refuses_a_dirty_tree(repo: Path) -> None:
    (repo / "src" / "train.py").write_text("# edited\n")
    (repo / "notes.txt").write_text("untracked\n")
    code, _, err = release(repo, "1.0.0")
    assert code == 1
    assert "cannot release v1.0.0" in err
    assert "uncommitted changes: notes.txt, src/train.py" in err
    assert git("tag", cwd=repo) == ""


def test_refuses_a_stale_lock(repo: Path) -> None:
    set_depth(repo, 7)
    commit(repo, "deeper trees, not rerun", "2026-01-02T10:00:00Z")
    code, _, err = release(repo, "1.0.0")
    assert code == 1
    assert "mlspec.lock is stale: step 'train': param max_depth: 5 → 7" in err
    assert "run `mlspec run` and commit mlspec.lock" in err
    assert git("tag", cwd=repo) == ""


def test_refuses_failing_gates(repo: Path) -> None:
    git("checkout", "-q", "deeper", cwd=repo)  # the worse model, compared with main
    run(repo)
    code, _, err = release(repo, "1.0.0")
    assert code == 1
    assert "gate failed: f1_macro >= baseline - 0.01: f1_macro = 0.9331 (threshold 0.9565)" in err
    assert "gate failed: log_loss <= baseline * 1.5" in err
    assert git("tag", cwd=repo) == ""


def test_refuses_without_a_committed_lock(repo: Path) -> None:
    git("rm", "-q", "mlspec.lock", cwd=repo)
    commit(repo, "drop the lock", "2026-01-02T10:00:00Z")
    code, _, err = release(repo, "1.0.0")
    assert code == 1 and "mlspec.lock is not committed" in err


def test_refuses_an_existing_tag_and_a_bad_version(repo: Path) -> None:
    assert release(repo, "1.0.0")[0] == 0
    code, _, err = release(repo, "v1.0.0")  # the prefix is accepted and means the same tag
    assert code == 1 and "tag v1.0.0 already exists" in err
    code, _, err = release(repo, "1.2")
    assert code == 2 and "'1.2' is not a release version" in err
    assert git("tag", cwd=repo) == "v1.0.0"


def test_push_only_when_asked(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=repo)
    assert release(repo, "1.0.0")[0] == 0
    assert git("ls-remote", "--tags", "origin", cwd=repo) == ""
    code, out, err = release(repo, "1.0.1", "--push")
    assert code == 0, err
    assert "pushed to origin" in out
    assert "note:" not in out  # no origin/main fetched: nothing to say
    git("push", "-q", "origin", "main~1:refs/heads/main", cwd=repo)  # the remote is behind
    git("fetch", "-q", "origin", cwd=repo)
    code, out, _ = release(repo, "1.0.3")
    assert code == 0 and "note: this commit is not on origin/main" in out
    assert "refs/tags/v1.0.1" in git("ls-remote", "--tags", "origin", cwd=repo)
    # a push that fails is reported, and the tag stays for a retry
    git("remote", "set-url", "origin", str(tmp_path / "gone.git"), cwd=repo)
    code, _, err = release(repo, "1.0.2", "--push")
    assert code == 1 and "pushing it to origin failed" in err and "git push origin v1.0.2" in err
    assert "v1.0.2" in git("tag", cwd=repo).split()


def test_tag_prefix_from_the_spec(repo: Path) -> None:
    spec = repo / "mlspec.yaml"
    spec.write_text(spec.read_text().replace("  default_branch: main\n",
                                             "  default_branch: main\n  tag_prefix: model-\n"))
    run(repo)
    commit(repo, "release tags model-*", "2026-01-02T10:00:00Z")
    code, _, err = release(repo, "2.0.0-rc.1")
    assert code == 0, err
    assert git("tag", cwd=repo) == "model-2.0.0-rc.1"


def test_models_and_lineage_read_back_what_release_wrote(repo: Path) -> None:
    r = mlspec("models", "--json", cwd=repo)
    assert r.returncode == 0 and json.loads(r.stdout) == []
    assert "no releases yet" in mlspec("models", cwd=repo).stdout
    assert release(repo, "1.0.0", "-m", "Baseline model.", date="2026-02-01T09:00:00Z")[0] == 0
    first = git("rev-parse", "HEAD", cwd=repo)
    set_depth(repo, 7)  # a better model, promoted next
    run(repo)
    commit(repo, "deeper trees", "2026-02-02T10:00:00Z")
    assert release(repo, "1.1.0", date="2026-02-03T09:00:00Z")[0] == 0
    second = git("rev-parse", "HEAD", cwd=repo)

    r = mlspec("models", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(m["tag"], m["commit"], m["date"], m["primary_metric"], m["value"]) for m in rows] \
        == [("v1.1.0", second, "2026-02-03T09:00:00+00:00", "f1_macro", 0.9801),
            ("v1.0.0", first, "2026-02-01T09:00:00+00:00", "f1_macro", 0.9665)]
    table = mlspec("models", cwd=repo).stdout.splitlines()
    assert table[0].split() == ["tag", "date", "commit", "primary", "metric"]
    assert table[1].split() == ["v1.1.0", "2026-02-03T09:00:00+00:00", second[:12], "f1_macro",
                                "0.9801"]

    r = mlspec("lineage", "v1.0.0", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    lin = json.loads(r.stdout)
    lock_then = git("show", "v1.0.0:mlspec.lock", cwd=repo)
    assert lin["commit"] == first and lin["ref"] == "v1.0.0"
    assert lin["author"] == "mlspec tests <ci@example.com>"
    assert lin["tag"]["tagger"] == "mlspec tests <ci@example.com>"
    assert lin["params"] == {"train": {"max_depth": 5, "n_estimators": 100}}
    assert lin["metrics"] == {"accuracy": 0.9667, "f1_macro": 0.9665, "log_loss": 0.12}
    assert lin["env"]["python"] == "3.11"
    for step in ("prepare", "train", "evaluate"):
        for path, h in {**lin["steps"][step]["deps"], **lin["steps"][step]["outs"]}.items():
            assert f'{path}: "{h}"' in lock_then
    card = git("tag", "-l", "--format=%(contents)", "v1.0.0", cwd=repo)
    assert f"| spec | `{lin['spec_hash']}` |" in card  # the spec hash at that commit
    assert lin["image"] is None

    text = mlspec("lineage", "v1.0.0", cwd=repo).stdout
    assert f"  commit       {first}" in text and "  image        no image built" in text
    md = mlspec("lineage", "v1.0.0", "--model-card", cwd=repo).stdout
    assert md.startswith("# Model card: toy 1.0.0")
    assert "| **f1_macro** (primary) | 0.9665 | maximize |" in md
    assert "\nBaseline model.\n" in md  # the release notes, read back from the tag
    # the card CI attaches equals the tag's message (no image was built in between)
    assert md == git("tag", "-l", "--format=%(contents)", "v1.0.0", cwd=repo) + "\n"

    r = mlspec("lineage", "v9.9.9", cwd=repo)
    assert r.returncode == 2 and "unknown git ref 'v9.9.9'" in r.stderr


def test_lineage_of_a_plain_commit(repo: Path) -> None:
    r = mlspec("lineage", "main~1", "--json", cwd=repo)  # the first commit: no lock yet
    assert r.returncode == 2 and "has no committed mlspec.lock" in r.stderr
    r = mlspec("lineage", "HEAD", "--json", cwd=repo)
    assert r.returncode == 0 and json.loads(r.stdout)["tag"] is None


def test_lineage_shows_the_image_a_build_recorded(repo: Path) -> None:
    assert release(repo, "1.0.0")[0] == 0
    digest = "sha256:" + "ab" * 32
    note = json.dumps({"image": "ghcr.io/acme/toy", "digest": digest})
    git("notes", "--ref", "mlspec", "add", "-m", note, "v1.0.0^{commit}", cwd=repo)
    lin = json.loads(mlspec("lineage", "v1.0.0", "--json", cwd=repo).stdout)
    assert lin["image"] == {"image": "ghcr.io/acme/toy", "digest": digest}
    md = mlspec("lineage", "v1.0.0", "--model-card", cwd=repo).stdout
    assert f"| image | `ghcr.io/acme/toy@{digest}` |" in md


def test_model_card_matches_golden(repo: Path, update_golden: bool) -> None:
    assert release(repo, "1.0.0", "-m", "The first promoted model.")[0] == 0
    r = mlspec("lineage", "v1.0.0", "--model-card", cwd=repo)
    assert r.returncode == 0, r.stderr
    golden = Path(__file__).parent / "expected" / "model-card.md"
    if update_golden:
        golden.write_text(r.stdout)
    assert r.stdout == golden.read_text()


def test_lineage_reads_the_build_record_of_mlspec_build(repo: Path) -> None:
    """The record `mlspec build --push` writes (.mlspec/build.json, mlspec.image.build's format)."""
    assert release(repo, "1.0.0")[0] == 0
    head = git("rev-parse", "HEAD", cwd=repo)
    digest = "sha256:" + "cd" * 32
    entry = {"image": "ghcr.io/acme/toy", "id": "sha256:" + "01" * 32, "revision": head,
             "dirty": False, "version": "1.0.0", "tags": ["ghcr.io/acme/toy:1.0.0"],
             "pushed": [{"ref": "ghcr.io/acme/toy:1.0.0", "digest": digest}], "digest": digest,
             "repo_digest": f"ghcr.io/acme/toy@{digest}"}
    record = repo / ".mlspec" / "build.json"
    record.parent.mkdir(exist_ok=True)
    record.write_text(json.dumps({"version": 1, "images": {"serve": entry}}))
    lin = json.loads(mlspec("lineage", "v1.0.0", "--json", cwd=repo).stdout)
    assert lin["image"] == {"which": "serve", "image": "ghcr.io/acme/toy", "digest": digest,
                            "repo_digest": f"ghcr.io/acme/toy@{digest}"}
    # a build of another commit, or one never pushed, is not this model's image
    record.write_text(json.dumps({"version": 1, "images": {"serve": {**entry, "digest": None}}}))
    assert json.loads(mlspec("lineage", "v1.0.0", "--json", cwd=repo).stdout)["image"] is None
    record.write_text(json.dumps({"version": 1, "images": {"serve": {**entry,
                                                                     "revision": "0" * 40}}}))
    assert "no image built" in mlspec("lineage", "v1.0.0", cwd=repo).stdout


def test_git_without_an_identity_is_a_clear_failure(repo: Path, tmp_path: Path) -> None:
    git("config", "--unset", "user.email", cwd=repo)
    git("config", "--unset", "user.name", cwd=repo)
    home = tmp_path / "home"
    home.mkdir()
    r = mlspec("release", "1.0.0", cwd=repo,
               env={**env(), "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
                    "EMAIL": "", "GIT_COMMITTER_NAME": "", "GIT_COMMITTER_EMAIL": ""})
    assert r.returncode == 1, r.stdout
    assert "git could not create tag v1.0.0" in r.stderr and "Traceback" not in r.stderr


def test_models_lists_hand_made_tags_too(repo: Path) -> None:
    git("tag", "v0.0.1", "main~1", cwd=repo)  # lightweight, on the commit before any lock
    git("tag", "not-a-release", "main", cwd=repo)
    rows = json.loads(mlspec("models", "--json", cwd=repo).stdout)
    assert [(r["tag"], r["has_lock"], r["value"]) for r in rows] == [("v0.0.1", False, None)]
    assert rows[0]["date"] == "2026-01-01T10:00:00+00:00"  # the commit's date
    assert "no mlspec.lock" in mlspec("models", cwd=repo).stdout


def test_data_hashes_include_raw_inputs_but_not_code() -> None:
    from mlspec.gitops.lineage import Lineage, StepLineage

    step = StepLineage("train", "model", "python src/train.py", "k",
                       {"src/train.py": "h1", "data/raw.txt": "h2", "requirements.txt": "h3",
                        "data/clean.csv": "h4"}, {"model.pkl": "h5"}, {}, {})
    prep = StepLineage("clean", "data", "python src/clean.py", "k", {}, {"data/clean.csv": "h4"},
                       {}, {})
    lin = Lineage("p", "HEAD", None, False, "", "", "", "", "", None, {}, [prep, step], {})
    assert lin.data_hashes() == {"data/clean.csv": "h4", "data/raw.txt": "h2"}
    assert lin.artifacts() == {"model.pkl": "h5"}


def test_release_and_lineage_in_a_monorepo_subdirectory(repo: Path, tmp_path: Path) -> None:
    import shutil

    top = tmp_path / "mono"
    shutil.copytree(repo, top / "ml" / "toy", ignore=shutil.ignore_patterns(".git"))
    from conftest import init_repo

    init_repo(top)
    (top / "README.md").write_text("other projects live here\n")
    git("add", "-A", cwd=top)
    git("commit", "-q", "-m", "monorepo", cwd=top)
    proj = top / "ml" / "toy"
    (top / "scratch.txt").write_text("outside the project: not its business\n")
    code, _, err = release(proj, "1.0.0")
    assert code == 0, err
    lin = json.loads(mlspec("lineage", "v1.0.0", "--json", cwd=proj).stdout)
    from mlspec.spec.loader import load_spec

    assert lin["spec_hash"] == "sha256:" + load_spec(proj / "mlspec.yaml").spec_hash
    assert lin["metrics"]["f1_macro"] == 0.9665 and lin["path"] == "ml/toy"
    card = mlspec("lineage", "v1.0.0", "--model-card", cwd=proj).stdout
    assert f"git checkout {lin['commit']}\ncd ml/toy\nmlspec run --verify" in card
    (proj / "src" / "train.py").write_text("# edited\n")
    code, _, err = release(proj, "1.0.1")
    assert code == 1 and "uncommitted changes: ml/toy/src/train.py" in err
