"""The compiled-template cache keeps one entry per template *source*: two mlspec checkouts or
versions with different templates no longer evict each other's entry (each compile then paid
the ~25 ms jinja compile), and a stale entry can never be used for a changed template."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from mlspec.compile import render


def test_entries_are_named_by_source_so_versions_do_not_evict_each_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    sources = {"t.j2": "A {{ x }}"}
    compiled: list[str] = []
    cache = render._bytecode_cache()
    assert cache is not None

    def env() -> jinja2.Environment:
        e = jinja2.Environment(loader=jinja2.DictLoader(sources), bytecode_cache=cache,
                               trim_blocks=True)
        real = e.compile

        def counting(source, name=None, filename=None, raw=False, defer_init=False):  # type: ignore[no-untyped-def]
            compiled.append(source)
            return real(source, name, filename, raw, defer_init)

        e.compile = counting  # type: ignore[method-assign]
        return e

    assert env().get_template("t.j2").render(x=1) == "A 1"
    sources["t.j2"] = "B {{ x }}"  # another version of the same template
    assert env().get_template("t.j2").render(x=2) == "B 2"
    sources["t.j2"] = "A {{ x }}"
    assert env().get_template("t.j2").render(x=3) == "A 3"
    sources["t.j2"] = "B {{ x }}"
    assert env().get_template("t.j2").render(x=4) == "B 4"
    assert compiled == ["A {{ x }}", "B {{ x }}"]  # each version compiled once, then cached
    assert len(list((tmp_path / "mlspec" / "jinja").iterdir())) == 2
