"""run/lockfast.py never reads a lock differently from `Lock.parse`: generated locks (hostile
strings, NaN, huge floats) and single-character mutations of them."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlspec.errors import MlspecError
from mlspec.run.lock import Lock, StepLock, SweepLock
from mlspec.run.lockfast import parse_emitted

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
text = st.text(max_size=12)
names = st.one_of(st.sampled_from(["accuracy", "f1", "true", "null", "y", "a b", "k:v",
                                   "data/x.csv", "-x", "1a"]), text)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e300, 1e-7, -0.0])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), floats, text)


@st.composite
def locks(draw: st.DrawFn) -> Lock:
    steps = draw(st.dictionaries(names, st.builds(
        StepLock, key=text, command=text, deps=st.dictionaries(names, text, max_size=2),
        params=st.dictionaries(names, scalars, max_size=3),
        outs=st.dictionaries(names, text, max_size=2),
        metrics=st.dictionaries(names, floats, max_size=3)), max_size=3))
    sweeps = draw(st.dictionaries(names, st.builds(
        SweepLock, metric=text, best=st.dictionaries(names, scalars, max_size=2),
        variants=st.lists(st.fixed_dictionaries({
            "params": st.dictionaries(names, scalars, max_size=2),
            "metrics": st.dictionaries(names, floats, max_size=2)}), max_size=2)), max_size=1))
    return Lock(env=draw(st.dictionaries(names, text, max_size=2)), steps=steps, sweeps=sweeps)


def same(a: Lock, b: Lock) -> bool:
    return a.dump() == b.dump()  # NaN-safe: the emitter spells it .nan


def slow(t: str) -> Lock | None:
    try:
        return Lock.parse(t)
    except MlspecError:
        return None


@SETTINGS
@given(locks())
def test_an_emitted_lock_reads_as_lock_parse_reads_it(lock: Lock) -> None:
    t = lock.dump()
    fast = parse_emitted(t)
    assert fast is not None, t
    reference = slow(t)
    assert reference is not None and same(Lock.from_data(fast), reference)


@SETTINGS
@given(locks(), st.integers(0, 10**6), st.sampled_from(["delete", "insert", "replace"]),
       st.sampled_from([*' "\\:-{}[],#&*!|>\n\t0e.xu', "\u2028", "\ufeff", "é"]))
def test_a_mutated_lock_is_refused_or_read_alike(lock: Lock, where: int, how: str,
                                                 ch: str) -> None:
    t = lock.dump()
    i = where % (len(t) + 1)
    t = {"delete": t[:i] + t[i + 1:], "insert": t[:i] + ch + t[i:],
         "replace": t[:i] + ch + t[i + 1:]}[how]
    fast = parse_emitted(t)
    if fast is None:
        return
    reference = slow(t)
    try:
        fast_lock = Lock.from_data(fast)
    except (TypeError, ValueError, KeyError, AttributeError):
        assert reference is None, t
        return
    assert reference is not None, t
    assert same(fast_lock, reference), t


def test_nan_and_huge_values_survive() -> None:
    lock = Lock(steps={"e": StepLock(metrics={"a": math.nan, "b": 1e300, "c": -math.inf})})
    fast = parse_emitted(lock.dump())
    assert fast is not None
    got = Lock.from_data(fast).steps["e"].metrics
    assert math.isnan(got["a"]) and got["b"] == 1e300 and got["c"] == -math.inf
