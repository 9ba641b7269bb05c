"""The mlspec.lock format: deterministic, sorted, round-trips, rejects what is not a lock."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec.errors import MlspecError
from mlspec.run.lock import HEADER, Lock, StepLock, SweepLock, read_lock, write_lock

keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
               max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=False), st.text(max_size=20))
numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False))
step_locks = st.builds(
    StepLock, key=st.text(max_size=20), command=st.text(max_size=40),
    deps=st.dictionaries(keys, st.text(max_size=20), max_size=3),
    params=st.dictionaries(keys, scalars, max_size=3),
    outs=st.dictionaries(keys, st.text(max_size=20), max_size=3),
    metrics=st.dictionaries(keys, numbers, max_size=3))


@settings(max_examples=60, deadline=None)
@given(steps=st.dictionaries(keys, step_locks, max_size=3),
       env=st.dictionaries(keys, st.text(max_size=10), max_size=2))
def test_round_trip_is_exact(steps: dict[str, StepLock], env: dict[str, str]) -> None:
    lock = Lock(env=env, steps=steps)
    text = lock.dump()
    again = Lock.parse(text)
    assert again.dump() == text
    assert again.steps == steps


def test_layout_is_sorted_and_stable(tmp_path: Path) -> None:
    lock = Lock(env={"requirements": "sha256:1", "python": "3.11"},
                steps={"b": StepLock(key="k", params={"yes": "on", "n": 1}),
                       "a": StepLock(metrics={"f1": 0.5})},
                sweeps={"b": SweepLock(metric="f1", best={"n": 1},
                                       variants=[{"params": {"n": 1}, "metrics": {"f1": 0.5}}])})
    text = lock.dump()
    assert text.startswith(HEADER)
    top = [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()]
    assert top == ["env", "steps", "sweeps", "version"]
    assert text.index("  a:") < text.index("  b:")
    assert '"yes": "on"' in text  # YAML 1.1 booleans as keys are quoted
    write_lock(tmp_path, lock)
    assert (tmp_path / "mlspec.lock").read_text() == text
    assert read_lock(tmp_path) == Lock.parse(text)
    assert not list(tmp_path.glob(".mlspec.lock.*"))  # no temp file left behind
    assert Lock.parse(text).metrics() == {"f1": 0.5}
    assert Lock.parse(text).params() == {"a": {}, "b": {"n": 1, "yes": "on"}}


@pytest.mark.parametrize("text", [
    "steps: [1, 2]\n",
    "version: 2\n",
    "steps:\n  a:\n    metrics: {f1: high}\n",
    "a: &x [1]\nb: *x\n",
    "steps: {a: {key: !!python/object:os.system x}}\n",
    "- 1\n",
])
def test_corrupt_or_hostile_locks_are_errors(text: str) -> None:
    with pytest.raises(MlspecError) as exc:
        Lock.parse(text)
    assert exc.value.diagnostics
