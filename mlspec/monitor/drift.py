"""Drift of a live sample against a reference profile: PSI and KS per feature, streamed.

The live sample is read in chunks and each chunk is counted into the profile's bins, so memory
is bounded by one chunk whatever the number of rows; the raw values are never kept.

- **PSI** (population stability index) over PSI_BINS bins of equal reference mass (the
  profile's percentile bins merged by tens: deciles): sum of (live% - ref%) * ln(live% / ref%),
  each share floored at EPS so an empty bin gives a large, finite index. Usual reading: below
  0.1 stable, 0.1-0.2 moderate, above 0.2 a real shift.
- **KS** (Kolmogorov-Smirnov statistic) is the largest gap between the reference and the live
  cumulative distributions, *evaluated at the profile's cut points* (the percentiles): exact at
  those points, so it is a lower bound of the exact two-sample statistic that misses at most
  the gap inside one percentile bin (at most 0.01 of reference mass). No p-value: with a large
  live sample every shift is "significant"; a gate on the size of the gap is what matters.

Metric names: `psi_<f>`, `ks_<f>`, `missing_<f>` (share of live rows without a numeric value),
`psi_max`, `ks_max`, `missing_max` (the largest missing share), `n_live`; `<f>` is the feature
name in lowercase with every other character than a-z, 0-9 and '_' replaced by '_'. Two compared
features with the same `<f>` (`X` and `x`) are refused: one would hide the other's numbers.
A feature with no numeric live value has no `psi_<f>`/`ks_<f>`, and then `psi_max` and `ks_max`
are absent too (they would be a maximum over some features only): a gate on them fails, closed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlspec.monitor.profile import Profile, bin_counts
from mlspec.monitor.sample import SampleError, chunks, numpy

PSI_BINS = 10
EPS = 1e-4


def metric_name(feature: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", feature.lower())


def psi(np: Any, ref: Any, live: Any) -> float:
    ref = np.asarray(ref, dtype=np.float64)
    live = np.asarray(live, dtype=np.float64)
    if len(ref) % PSI_BINS == 0:  # equal-mass deciles of the percentile bins
        ref = ref.reshape(PSI_BINS, -1).sum(axis=1)
        live = live.reshape(PSI_BINS, -1).sum(axis=1)
    p = np.maximum(ref / ref.sum(), EPS)
    q = np.maximum(live / live.sum(), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def ks(np: Any, ref: Any, live: Any) -> float:
    fr = np.cumsum(np.asarray(ref, dtype=np.float64))[:-1] / float(np.sum(ref))
    fl = np.cumsum(np.asarray(live, dtype=np.float64))[:-1] / float(np.sum(live))
    return float(np.max(np.abs(fr - fl))) if len(fr) else 0.0


def drift_metrics(profile: Profile, live: Path, shown: str,
                  features: Sequence[str] | None = None) -> dict[str, float]:
    """The drift metrics of a live sample (see the module docstring)."""
    np = numpy()
    names = list(features) if features else list(profile.features)
    unknown = [f for f in names if f not in profile.features]
    if unknown:
        raise SampleError(f"the reference profile has no feature "
                          f"{', '.join(map(repr, unknown))}",
                          f"its features: {', '.join(list(profile.features)[:20])}")
    keys: dict[str, str] = {}
    for f in names:
        key = metric_name(f)
        if key in keys:
            raise SampleError(f"the features {keys[key]!r} and {f!r} both give the metrics "
                              f"'psi_{key}', 'ks_{key}' and 'missing_{key}'",
                              "compare one of them: list the features in `drift.features`")
        keys[key] = f
    counts = {f: np.zeros(len(profile.features[f].counts), dtype=np.int64) for f in names}
    missing = dict.fromkeys(names, 0)
    rows = 0
    for chunk in chunks(live, shown, names, order=list(profile.features)):
        rows += len(chunk[names[0]])
        for f in names:
            c, nan = bin_counts(np, np.asarray(profile.features[f].edges), chunk[f])
            counts[f] += c
            missing[f] += nan
    if rows == 0:
        raise SampleError(f"the live sample '{shown}' holds no rows",
                          "the monitor compares production traffic: is the log being written?")
    out: dict[str, float] = {}
    psis: list[float] = []
    kss: list[float] = []
    compared = True
    for f in names:
        key = metric_name(f)
        out[f"missing_{key}"] = round(missing[f] / rows, 6)
        if counts[f].sum() == 0:
            compared = False  # psi_max/ks_max would leave this feature out: absent too
            continue  # no value to compare: psi_/ks_ stay absent, and a gate on them fails
        ref = profile.features[f].counts
        out[f"psi_{key}"] = p = round(psi(np, ref, counts[f]), 6)
        out[f"ks_{key}"] = k = round(ks(np, ref, counts[f]), 6)
        psis.append(p)
        kss.append(k)
    if psis and compared:
        out["psi_max"] = max(psis)
        out["ks_max"] = max(kss)
    out["missing_max"] = max(round(missing[f] / rows, 6) for f in names)
    out["n_live"] = rows
    return {k: v for k, v in out.items() if math.isfinite(v)}
