"""The report's Production section (gitops.production) from fixed monitor records, against a
golden file: the chart, the offline-vs-production table, the runs with their CI links, notes."""

from __future__ import annotations

from pathlib import Path

from mlspec.gitops import production
from mlspec.prodrecord import Record

EXPECTED = Path(__file__).parent / "expected"


def section() -> production.Production:
    def rec(t: str, acc: float, psi: float, verdict: str, run: int) -> Record:
        return Record(t, "v1.2.0", "c" * 40, {"accuracy": acc, "psi_max": psi, "n_live": 5000},
                      [{"gate": "psi_max <= 0.2", "verdict": verdict}],
                      f"https://github.com/acme/iris/actions/runs/{run}", "0.1.0")

    return production.Production(
        "oci://ghcr.io/acme/iris-store", "v1.2.0", "c" * 40, "the newest release",
        {"accuracy": 0.95, "f1": 0.94},
        [rec("2026-11-29T06:00:04Z", 0.94, 0.05, "pass", 101),
         rec("2026-11-30T06:00:03Z", 0.93, 0.12, "pass", 102),
         rec("2026-12-01T06:00:05Z", 0.88, 0.31, "fail", 103)],
        ["monitor record monitor-20261128T060000Z-0123456789ab is left out: it holds NaN"])


def test_production_section_matches_golden(update_golden: bool) -> None:
    text = production.markdown(section())
    golden = EXPECTED / "production.md"
    if update_golden:
        golden.write_text(text)
    assert text == golden.read_text()


def test_production_text_lists_the_same_numbers() -> None:
    text = production.text(section())
    assert text.splitlines()[:4] == [
        "production: v1.2.0 (the newest release), 3 monitor run(s)",
        "metric    offline  production (latest)  Δ",
        "--------  -------  -------------------  -------",
        "accuracy  0.9500   0.8800               -0.0700"]
    assert "2026-12-01 06:00:05  1 FAIL  0.8800    5000    0.3100" in text
