"""Hostile samples and profiles (they come from pull requests and production traffic): a
SampleError (a located diagnostic, exit 2), never a raw exception; and the sample readers'
consistency (BOM, blank lines, booleans, nested values, metric-name collisions)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import need

np = pytest.importorskip("numpy")

from mlspec.monitor import sample  # noqa: E402
from mlspec.monitor.drift import drift_metrics  # noqa: E402
from mlspec.monitor.profile import Profile, build_profile, read_profile  # noqa: E402
from mlspec.monitor.sample import SampleError, chunks, columns  # noqa: E402


def _profile(tmp_path: Path, names: tuple[str, ...] = ("a", "b")) -> Profile:
    src = tmp_path / "ref.csv"
    src.write_text(",".join(names) + "\n" + "".join(
        ",".join(str(i + j) for j in range(len(names))) + "\n" for i in range(200)))
    return build_profile(src, "ref.csv")


def _jsonl(tmp_path: Path, *lines: str) -> Path:
    p = tmp_path / "live.jsonl"
    p.write_text("".join(line + "\n" for line in lines))
    return p


@pytest.mark.parametrize("line", [
    '{"inputs":[{"a":1,"b":2}, 5]}',
    '{"inputs":[[1,2], null]}',
    "[" * 100000,
])
def test_hostile_jsonl_lines_are_sample_errors(tmp_path: Path, line: str) -> None:
    prof = _profile(tmp_path)
    with pytest.raises(SampleError):
        drift_metrics(prof, _jsonl(tmp_path, line), "live.jsonl")


def test_a_huge_integer_is_missing_not_an_overflow(tmp_path: Path) -> None:
    prof = _profile(tmp_path)
    live = _jsonl(tmp_path, '{"inputs":{"a":1,"b":2}}', '{"inputs":[[1, ' + "9" * 400 + "]]}")
    m = drift_metrics(prof, live, "live.jsonl")
    assert m["missing_b"] == 0.5 and m["missing_a"] == 0.0


def test_hostile_csv_headers_are_sample_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,\xff\xfeb\n1,2\n")
    with pytest.raises(SampleError):
        columns(bad, "bad.csv")
    with pytest.raises(SampleError):
        list(chunks(bad, "bad.csv", ["a"]))
    wide = tmp_path / "wide.csv"
    wide.write_text("a," + "x" * 200_000 + "\n1,2\n")
    with pytest.raises(SampleError):
        columns(wide, "wide.csv")
    with pytest.raises(SampleError):
        list(chunks(wide, "wide.csv", ["a"]))


def test_corrupted_parquet_is_a_sample_error(tmp_path: Path) -> None:
    need(importlib.util.find_spec("pyarrow") is not None,
         "pyarrow is not installed (the dev extra has it: ./dev.sh setup)")
    import pyarrow as pa
    import pyarrow.parquet as pq
    p = tmp_path / "s.parquet"
    pq.write_table(pa.table({"a": np.arange(50000, dtype=np.float64)}), str(p),
                   compression="snappy")
    raw = bytearray(p.read_bytes())
    for i in range(200, min(len(raw) - 2000, 60000), 7):  # the data pages, not the footer
        raw[i] ^= 0x5A
    p.write_bytes(bytes(raw))
    with pytest.raises(SampleError):
        list(chunks(p, "s.parquet", ["a"]))


def test_profiles_with_huge_numbers_or_a_bool_format_are_refused(tmp_path: Path) -> None:
    good = json.loads(_profile(tmp_path).to_json())
    p = tmp_path / "p.json"
    for mutate in (lambda d: d["features"]["a"]["edges"].__setitem__(0, 10**400),
                   lambda d: d["features"]["a"]["counts"].__setitem__(0, 10**400),
                   lambda d: d.__setitem__("mlspec_profile", True)):
        data = json.loads(json.dumps(good))
        mutate(data)
        p.write_text(json.dumps(data))
        with pytest.raises(SampleError):
            read_profile(p, "p.json")


def test_csv_bom_and_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_bytes(b"\xef\xbb\xbfa,b\n1,2\n\n3,4\n\n")
    assert columns(p, "s.csv") == ["a", "b"]
    (chunk,) = chunks(p, "s.csv", ["a", "b"])
    assert chunk["a"].tolist() == [1.0, 3.0]


def test_a_json_bool_is_missing_on_every_path(tmp_path: Path) -> None:
    prof = _profile(tmp_path)
    m = drift_metrics(prof, _jsonl(tmp_path, '{"inputs":{"a":true,"b":2}}'), "live.jsonl")
    assert m["missing_a"] == 1.0


def test_nested_values_are_missing_not_a_negative_share(tmp_path: Path) -> None:
    prof = _profile(tmp_path)
    live = _jsonl(tmp_path, '{"inputs":{"a":[1,2],"b":2}}', '{"inputs":{"a":[3,4],"b":2}}')
    m = drift_metrics(prof, live, "live.jsonl")
    assert m["missing_a"] == 1.0 and m["missing_b"] == 0.0


def test_metric_name_collisions_are_refused(tmp_path: Path) -> None:
    prof = _profile(tmp_path, ("X", "x"))
    with pytest.raises(SampleError, match="psi_x"):
        drift_metrics(prof, _jsonl(tmp_path, '{"inputs":{"X":1,"x":2}}'), "live.jsonl")


def test_an_all_missing_feature_fails_the_aggregates(tmp_path: Path) -> None:
    prof = _profile(tmp_path)
    m = drift_metrics(prof, _jsonl(tmp_path, *[f'{{"inputs":{{"b":{i}}}}}' for i in range(200)]),
                      "live.jsonl")
    assert m["missing_a"] == 1.0 and m["missing_max"] == 1.0
    assert "psi_max" not in m and "ks_max" not in m  # a gate on them fails: fail closed


def test_chunk_limit_is_checked_per_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    monkeypatch.setattr(sample, "CELLS", 1000)
    prof = _profile(tmp_path)
    live = _jsonl(tmp_path, '{"inputs":[' + ",".join(["[1,2]"] * 5000) + "]}")
    sizes = [len(c["a"]) for c in chunks(live, "live.jsonl", ["a", "b"])]
    assert sum(sizes) == 5000 and max(sizes) <= 500
    assert drift_metrics(prof, live, "live.jsonl")["n_live"] == 5000


def test_long_csv_lines_and_too_many_columns_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "long.csv"
    p.write_text("a,b\n1," + "2" * (sample.MAX_LINE + 10) + "\n")
    with pytest.raises(SampleError, match="longer than"):
        list(chunks(p, "long.csv", ["a", "b"]))
    w = tmp_path / "wide.csv"
    n = sample.MAX_FEATURES + 1
    w.write_text(",".join(f"c{i}" for i in range(n)) + "\n" + ",".join(["1"] * n) + "\n")
    with pytest.raises(SampleError, match=f"more than {sample.MAX_FEATURES}"):
        build_profile(w, "wide.csv")
    assert list(build_profile(w, "wide.csv", features=["c1"]).features) == ["c1"]  # the hint
