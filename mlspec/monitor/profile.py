"""The reference profile: per-feature quantile bins of the training data, recorded with the model.

A profile holds, for each numeric feature, BINS-1 cut points (the 1st..99th percentiles) and
the exact number of training rows in each of the BINS bins they make (below the first cut,
between cuts, from the last cut up), plus the number of missing values: never the raw data.

It is built in two streaming passes, so memory does not grow with the rows: the first keeps
a uniform reservoir of at most RESERVOIR values per feature (Vitter's algorithm R, seeded: the
same file gives the same profile) and takes the cut points from it (exact percentiles when a
feature has at most RESERVOIR values, a sample's percentiles beyond); the second counts every
row into those bins exactly. The file is JSON with fixed key order: same data, same bytes.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec.monitor.sample import MAX_FEATURES, SampleError, chunks, columns, numpy

if TYPE_CHECKING:
    from mlspec.monitor.sample import Chunk

BINS = 100
RESERVOIR = 100_000
MAX_PROFILE_BYTES = 16 * 1024 * 1024
MAX_COUNT = 1 << 53  # counts and rows: exact as float64
FORMAT = 1


@dataclass(frozen=True)
class FeatureProfile:
    edges: tuple[float, ...]  # BINS-1 ascending cut points
    counts: tuple[int, ...]  # BINS counts: bin i holds edges[i-1] <= x < edges[i]
    missing: int


@dataclass(frozen=True)
class Profile:
    rows: int
    features: dict[str, FeatureProfile]  # file order

    def to_json(self) -> str:
        data = {"mlspec_profile": FORMAT, "rows": self.rows, "bins": BINS, "features": {
            name: {"edges": list(f.edges), "counts": list(f.counts), "missing": f.missing}
            for name, f in self.features.items()}}
        return json.dumps(data, indent=1, allow_nan=False) + "\n"


def build_profile(path: Path, shown: str, features: Sequence[str] | None = None,
                  exclude: Sequence[str] = ()) -> Profile:
    """The profile of a sample file (CSV, Parquet or JSON lines); see the module docstring."""
    names = list(features) if features else [c for c in columns(path, shown)
                                              if c not in set(exclude)]
    if not names:
        raise SampleError(f"'{shown}' leaves no feature to profile")
    if len(names) > MAX_FEATURES:  # the profile stays far below what read_profile accepts
        raise SampleError(f"'{shown}' has {len(names)} features to profile, more than "
                          f"{MAX_FEATURES}", "profile a selection: `--feature NAME …`")
    return profile_of(lambda cols: chunks(path, shown, cols), names, shown,
                      strict=bool(features))


def profile_of_array(names: Sequence[str], x: Any) -> Profile:
    """The profile of an in-memory feature matrix (the built-in trainer's training rows)."""
    np = numpy()
    x = np.asarray(x, dtype=np.float64)

    def one(cols: Sequence[str]) -> Iterator[Chunk]:
        yield {c: x[:, names.index(c)].copy() for c in cols}

    return profile_of(one, list(names), "the training data", strict=False)


def profile_of(read: Callable[[Sequence[str]], Iterator[Chunk]], names: list[str], shown: str,
               strict: bool) -> Profile:
    """Two passes of `read(columns)`: percentile cuts from a reservoir, then exact counts."""
    np = numpy()
    reservoirs = {f: np.empty(RESERVOIR, dtype=np.float64) for f in names}
    seen = dict.fromkeys(names, 0)
    rngs = {f: np.random.default_rng(i) for i, f in enumerate(names)}
    for chunk in read(names):
        for f in names:
            values = chunk[f][~np.isnan(chunk[f])]
            seen[f] = _reservoir(np, rngs[f], reservoirs[f], seen[f], values)
    numeric = [f for f in names if seen[f] > 0]
    empty = [f for f in names if seen[f] == 0]
    if strict and empty:
        raise SampleError(f"'{shown}' has no numeric value in {', '.join(map(repr, empty))}",
                          "the drift check compares numeric features")
    if not numeric:
        raise SampleError(f"'{shown}' has no numeric column", "the drift check compares "
                          "numeric features")
    qs = np.arange(1, BINS) / BINS
    edges = {f: np.quantile(reservoirs[f][:min(seen[f], RESERVOIR)], qs) for f in numeric}
    counts = {f: np.zeros(BINS, dtype=np.int64) for f in numeric}
    missing = dict.fromkeys(numeric, 0)
    rows = 0
    for chunk in read(numeric):
        rows += len(chunk[numeric[0]])
        for f in numeric:
            bins, nan = bin_counts(np, edges[f], chunk[f])
            counts[f] += bins
            missing[f] += nan
    return Profile(rows, {f: FeatureProfile(tuple(float(e) for e in edges[f]),
                                            tuple(int(c) for c in counts[f]), missing[f])
                          for f in numeric})


def _reservoir(np: Any, rng: Any, res: Any, seen: int, values: Any) -> int:
    """Algorithm R over one chunk (vectorised; later values overwrite earlier ones in order,
    as the sequential algorithm does). Returns the number of values seen so far."""
    k = max(0, min(RESERVOIR - seen, len(values)))
    res[seen:seen + k] = values[:k]
    rest = values[k:]
    if len(rest):
        pos = np.arange(seen + k, seen + len(values), dtype=np.int64)
        j = rng.integers(0, pos + 1)
        keep = j < RESERVOIR
        res[j[keep]] = rest[keep]
    return seen + len(values)


def bin_counts(np: Any, edges: Any, values: Any) -> tuple[Any, int]:
    """(counts per bin against `edges`, number of missing values) of one chunk."""
    ok = ~np.isnan(values)
    idx = np.searchsorted(edges, values[ok], side="right")
    return np.bincount(idx, minlength=len(edges) + 1), int(len(values) - ok.sum())


def read_profile(path: Path, shown: str) -> Profile:
    """A profile file, checked: bounded size, the expected shape, finite ascending cuts."""
    try:
        if not path.is_file():
            raise SampleError(f"the reference profile '{shown}' does not exist",
                              "record it at training time: `mlspec profile DATA -o "
                              f"{shown}` (built-in estimator steps write it themselves)")
        with path.open("rb") as fh:
            raw = fh.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise SampleError(f"cannot read the reference profile '{shown}': {exc.strerror}"
                          ) from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise SampleError(f"the reference profile '{shown}' is larger than "
                          f"{MAX_PROFILE_BYTES >> 20} MB")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise SampleError(f"the reference profile '{shown}' is not JSON: {exc}") from None
    bad = SampleError(f"'{shown}' is not an mlspec profile (format {FORMAT})",
                      "write it with `mlspec profile DATA -o PATH`")
    if not isinstance(data, dict) or type(data.get("mlspec_profile")) is not int \
            or data["mlspec_profile"] != FORMAT:  # `true` is no format
        raise bad
    feats, rows = data.get("features"), data.get("rows")
    if not isinstance(feats, dict) or not feats or len(feats) > MAX_FEATURES \
            or not _count(rows):
        raise bad
    out: dict[str, FeatureProfile] = {}
    for name, f in feats.items():
        edges = f.get("edges") if isinstance(f, dict) else None
        counts = f.get("counts") if isinstance(f, dict) else None
        if (not isinstance(edges, list) or not isinstance(counts, list)
                or len(counts) != len(edges) + 1 or len(edges) < 1
                or not all(_finite(e) for e in edges)
                or any(b < a for a, b in itertools.pairwise(edges))
                or not all(_count(c) for c in counts) or sum(counts) == 0
                or not _count(f.get("missing"))):
            raise SampleError(f"the reference profile '{shown}' has a malformed feature "
                              f"'{name}'", "write it again with `mlspec profile`")
        out[str(name)] = FeatureProfile(tuple(float(e) for e in edges), tuple(counts),
                                        f["missing"])
    return Profile(int(rows or 0), out)


def _count(v: object) -> bool:
    return type(v) is int and 0 <= v <= MAX_COUNT


def _finite(v: object) -> bool:
    """A number that is a finite float64 (an int of 400 digits is not: float() overflows)."""
    if type(v) not in (int, float):
        return False
    try:
        return math.isfinite(float(v))  # type: ignore[arg-type]
    except OverflowError:
        return False
