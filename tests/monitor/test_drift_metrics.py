"""The drift check's numbers: profiles, PSI and KS on synthetic samples with and without a
shift, the sample formats, and bounded memory on a million rows."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
stats = pytest.importorskip("scipy.stats")

from mlspec.monitor.drift import drift_metrics, metric_name  # noqa: E402
from mlspec.monitor.profile import build_profile, read_profile  # noqa: E402
from mlspec.monitor.sample import SampleError, numpy  # noqa: E402


def _csv(path: Path, cols: dict[str, object]) -> Path:
    arrays = {k: np.asarray(v) for k, v in cols.items()}
    n = len(next(iter(arrays.values())))
    with path.open("w") as fh:
        fh.write(",".join(arrays) + "\n")
        for i in range(n):
            fh.write(",".join(str(a[i]) for a in arrays.values()) + "\n")
    return path


@pytest.fixture
def reference(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(7)
    a = rng.normal(0, 1, 20_000)
    b = rng.uniform(0, 10, 20_000)
    data = _csv(tmp_path / "train.csv", {"a": a, "b": b, "species": ["x"] * 20_000})
    prof = build_profile(data, "train.csv")
    out = tmp_path / "profile.json"
    out.write_text(prof.to_json())
    return out, a


def test_profile_skips_text_columns_and_counts_every_row(reference: tuple[Path, object]
                                                         ) -> None:
    prof = read_profile(reference[0], "profile.json")
    assert list(prof.features) == ["a", "b"]  # species is text: not profiled
    assert prof.rows == 20_000
    for f in prof.features.values():
        assert sum(f.counts) == 20_000 and len(f.counts) == 100 and len(f.edges) == 99
        assert all(1 <= c <= 400 for c in f.counts)  # percentile bins: about 200 each


def test_profile_bytes_are_deterministic(tmp_path: Path, reference: tuple[Path, object]) -> None:
    again = build_profile(tmp_path / "train.csv", "train.csv").to_json()
    assert again == reference[0].read_text()


def test_no_shift_passes_and_a_shift_fails(tmp_path: Path, reference: tuple[Path, object]
                                           ) -> None:
    prof = read_profile(reference[0], "profile.json")
    rng = np.random.default_rng(99)
    same = _csv(tmp_path / "same.csv", {"a": rng.normal(0, 1, 5000),
                                         "b": rng.uniform(0, 10, 5000)})
    moved = _csv(tmp_path / "moved.csv", {"a": rng.normal(0.5, 1, 5000),
                                           "b": rng.uniform(0, 10, 5000)})
    m0 = drift_metrics(prof, same, "same.csv")
    m1 = drift_metrics(prof, moved, "moved.csv")
    assert m0["n_live"] == 5000 and m0["psi_max"] < 0.05 and m0["ks_max"] < 0.05
    assert m1["psi_a"] > 0.2 and m1["ks_a"] > 0.15  # half a standard deviation
    assert m1["psi_b"] < 0.05 and m1["psi_max"] == m1["psi_a"]


def test_ks_agrees_with_scipy_within_one_percentile_bin(tmp_path: Path,
                                                        reference: tuple[Path, object]) -> None:
    prof = read_profile(reference[0], "profile.json")
    train = reference[1]
    for shift in (0.0, 0.2, 0.5, 1.0):
        live = np.random.default_rng(3).normal(shift, 1, 4000)
        path = _csv(tmp_path / f"live{shift}.csv", {"a": live})
        ours = drift_metrics(prof, path, "live.csv", ["a"])["ks_a"]
        exact = stats.ks_2samp(train, live).statistic
        assert ours <= exact + 1e-9  # evaluated at the cut points: a lower bound
        assert exact - ours <= 0.02, (shift, ours, exact)


def test_missing_values_are_counted_not_compared(tmp_path: Path,
                                                 reference: tuple[Path, object]) -> None:
    prof = read_profile(reference[0], "profile.json")
    path = tmp_path / "live.csv"
    path.write_text("a,b\n0.1,\n,3\nnan,4\nabc,5\n")
    m = drift_metrics(prof, path, "live.csv")
    assert m["missing_a"] == 0.75 and m["missing_b"] == 0.25 and m["n_live"] == 4


def test_serve_request_log_lines(tmp_path: Path, reference: tuple[Path, object]) -> None:
    prof = read_profile(reference[0], "profile.json")
    log = tmp_path / "requests.jsonl"
    lines = [{"inputs": {"a": 0.1, "b": 2.0}, "prediction": "x"},
             {"inputs": [0.2, 3.0], "prediction": "y"},            # positional: profile order
             {"inputs": [[0.3, 4.0], {"a": 0.4, "b": 5.0}], "prediction": ["x", "y"]},
             {"a": 0.5, "b": 6.0}]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    m = drift_metrics(prof, log, "requests.jsonl")
    assert m["n_live"] == 5 and m["missing_a"] == 0 and m["missing_b"] == 0
    log.write_text('{"inputs": 3}\n')
    with pytest.raises(SampleError, match="line 1 holds no inputs"):
        drift_metrics(prof, log, "requests.jsonl")
    log.write_text("{not json\n")
    with pytest.raises(SampleError, match="line 1 is not JSON"):
        drift_metrics(prof, log, "requests.jsonl")


def test_bad_inputs_say_what_is_wrong(tmp_path: Path, reference: tuple[Path, object]) -> None:
    prof = read_profile(reference[0], "profile.json")
    with pytest.raises(SampleError, match="no feature 'zzz'"):
        drift_metrics(prof, tmp_path / "train.csv", "train.csv", ["zzz"])
    (tmp_path / "x.txt").write_text("a\n1\n")
    with pytest.raises(SampleError, match="not a sample mlspec reads"):
        drift_metrics(prof, tmp_path / "x.txt", "x.txt")
    (tmp_path / "bad.json").write_text('{"mlspec_profile": 1, "rows": 3, "features": '
                                       '{"a": {"edges": [2, 1], "counts": [1, 1, 1], '
                                       '"missing": 0}}}')
    with pytest.raises(SampleError, match="malformed feature 'a'"):
        read_profile(tmp_path / "bad.json", "bad.json")
    with pytest.raises(SampleError, match="does not exist"):
        read_profile(tmp_path / "nope.json", "nope.json")


def test_parquet_without_pyarrow_says_so(tmp_path: Path, reference: tuple[Path, object],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    prof = read_profile(reference[0], "profile.json")
    (tmp_path / "live.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(SampleError, match="needs pyarrow") as info:
        drift_metrics(prof, tmp_path / "live.parquet", "live.parquet")
    assert info.value.hint is not None and "pip install pyarrow" in info.value.hint


def test_missing_numpy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(SampleError) as info:
        numpy()
    assert info.value.hint == "pip install 'mlspec-gitops[sklearn]'"


def test_metric_names_are_gate_identifiers() -> None:
    assert metric_name("Sepal Length (cm)") == "sepal_length__cm_"


def test_a_million_rows_in_bounded_memory(tmp_path: Path, reference: tuple[Path, object]
                                          ) -> None:
    """Peak RSS of checking 1M rows stays far below holding them: the check is streamed."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("peak RSS is read from /proc (Linux)")
    big = tmp_path / "big.csv"
    rng = np.random.default_rng(5)
    with big.open("w") as fh:
        fh.write("a,b\n")
        for _ in range(10):
            block = np.column_stack([rng.normal(0, 1, 100_000), rng.uniform(0, 10, 100_000)])
            np.savetxt(fh, block, delimiter=",", fmt="%.17g")
    script = textwrap.dedent(f"""
        from pathlib import Path
        import numpy
        from mlspec.monitor.drift import drift_metrics
        from mlspec.monitor.profile import read_profile
        def hwm():  # peak RSS of this process (ru_maxrss would include the parent's, on Linux)
            line = [x for x in open("/proc/self/status") if x.startswith("VmHWM:")][0]
            return int(line.split()[1])
        base = hwm()
        m = drift_metrics(read_profile(Path({str(reference[0])!r}), "p"), Path({str(big)!r}), "b")
        grown = hwm() - base
        print(int(m["n_live"]), m["psi_max"], grown)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    n, psi_max, grown_kib = int(out[0]), float(out[1]), int(out[2])
    assert n == 1_000_000 and psi_max < 0.01
    # the rows as text are ~40 MB and as two float64 columns 16 MB: one chunk is ~1 MB
    assert grown_kib < 40 * 1024, f"RSS grew by {grown_kib} KiB"
