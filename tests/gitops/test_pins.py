"""The pinned-runs section of a release tag message: what render writes, parse reads back;
every other text is None (no section) or an MlspecError located at its line, never a
traceback and never a line skipped."""

from __future__ import annotations

import random

import pytest

from mlspec.errors import MlspecError
from mlspec.gitops.pins import PinnedRun, Pins, check_against, parse, render
from mlspec.run.lock import Lock

KEY = "sha256:" + "ab" * 32
DIGEST = "sha256:" + "cd" * 32
PINS = Pins("oci://registry.example.com/team/iris",
            {"prepare": PinnedRun(KEY, DIGEST), "train-2": PinnedRun(DIGEST, KEY)})
CARD = "# Model card: iris 1.0.0\n\n## Metrics\n\n(none)\n\n"


def test_render_then_parse_is_the_identity() -> None:
    back = parse(CARD + render(PINS) + "\n", "refs/tags/v1")
    assert back == PINS
    assert [r.line for r in back.runs.values()] == [9, 10]  # where the message says so
    assert parse(CARD, "refs/tags/v1") is None


@pytest.mark.parametrize(("text", "line", "words"), [
    (render(PINS).replace("run prepare", "run Prepare"), 9, "step name malformed"),
    (render(PINS).replace(DIGEST, DIGEST.upper(), 1), 9, "manifest digest malformed"),
    (render(PINS).replace("remote oci", "remote  oci"), 8, "unexpected line"),
    (render(PINS).replace("\nremote oci://registry.example.com/team/iris", ""), 7,
     "names no remote"),
    (render(PINS).replace(" v1", " v2"), 7, "unknown version"),
    (render(PINS) + "\n" + render(PINS), 12, "second pinned-runs section"),
    (render(PINS).replace("-->", "--> "), 7, "has no end"),
    (render(PINS).replace("run prepare", "run prepare extra"), 9, "unexpected line"),
    (render(PINS).replace("run prepare", "rm -rf /"), 9, "unexpected line"),
])
def test_hostile_sections_are_located(text: str, line: int, words: str) -> None:
    with pytest.raises(MlspecError) as err:
        parse(CARD + text, "refs/tags/v1")
    found = err.value.diagnostics
    assert any(d.line == line and words in d.message and d.file == "refs/tags/v1"
               for d in found), [d.render() for d in found]


def test_random_edits_never_raise_anything_else() -> None:
    rng = random.Random(13)
    base = CARD + render(PINS) + "\n"
    alphabet = "run remote sha256:0123456789abcdef-_ \n<!-->\x00é\u202e"
    for _ in range(2000):
        chars = list(base)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.4:
                chars[i] = rng.choice(alphabet)
            elif op < 0.7:
                del chars[i]
            else:
                chars.insert(i, rng.choice(alphabet))
        try:
            got = parse("".join(chars), "refs/tags/v1")
        except MlspecError as err:
            assert all(d.rule == "release.pins" and d.line >= 1 for d in err.diagnostics)
            continue
        assert got is None or all(r.key.startswith("sha256:") for r in got.runs.values())


def test_check_against_the_lock_at_the_tag() -> None:
    lock = Lock.parse(
        '{"version": 1, "env": {}, "steps": {"prepare": {"key": "' + KEY + '", "command": "x",'
        ' "deps": {}, "params": {}, "outs": {}, "metrics": {}}}}')
    pins = parse(CARD + render(PINS), "refs/tags/v1")
    assert pins is not None
    with pytest.raises(MlspecError) as err:
        check_against(pins, lock, ["prepare"], "refs/tags/v1", "v1")
    assert "step 'train-2' is pinned, but" in str(err.value)
    bad = Pins("x", {"prepare": PinnedRun(DIGEST, DIGEST, 3)})
    with pytest.raises(MlspecError, match="records sha256:abab"):
        check_against(bad, lock, ["prepare"], "refs/tags/v1", "v1")
    with pytest.raises(MlspecError, match="are not pinned: prepare"):
        check_against(Pins("x", {}), lock, ["prepare"], "refs/tags/v1", "v1")
    check_against(Pins("x", {"prepare": PinnedRun(KEY, DIGEST)}), lock, ["prepare"], "t", "v1")
