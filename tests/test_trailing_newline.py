"""A pattern written `^...$` and applied with `re.match` accepts a trailing newline (`$` matches
before one): the lock's emitter wrote the key "A\\n" plain, which read back as another document
(found by hypothesis in tests/gitops/test_lockfast.py). Every validating pattern is applied
whole (`fullmatch`); these are the ones whose input is hostile text."""

from __future__ import annotations

import pytest

from mlspec.compile.render import scalar
from mlspec.gitops.gitrefs import SEMVER
from mlspec.run.lock import Lock
from mlspec.run.lockfast import parse_emitted
from mlspec.spec import common


def test_a_lock_key_with_a_trailing_newline_is_quoted_and_reads_back() -> None:
    lock = Lock(env={"A\n": "", "B": "x\n"}, steps={}, sweeps={})
    text = lock.dump()
    assert '"A\\u000a": ""' in text
    assert Lock.parse(text).dump() == text
    fast = parse_emitted(text)
    assert fast is not None and Lock.from_data(fast).dump() == text


@pytest.mark.parametrize("check", [common._check_name, common._check_ident,
                                   common._check_param, common._check_env])
def test_spec_names_with_a_trailing_newline_are_refused(check: object) -> None:
    for value in ("ab\n", "AB\n"):
        with pytest.raises(ValueError):
            check(value)  # type: ignore[operator]


def test_versions_and_yaml_scalars() -> None:
    assert SEMVER.fullmatch("1.2.0") and not SEMVER.fullmatch("1.2.0\n")
    assert scalar("abc\n") != "abc\n"  # quoted, never a plain scalar
