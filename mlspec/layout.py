"""Every file name mlspec reads or writes, in one place.

Paths are relative to the spec's directory (the project root) unless a name says otherwise.
Change a name here and every reader, writer and generated pipeline follows.
"""

from __future__ import annotations

SPEC = "mlspec.yaml"  # the entry point of a project
LOCK = "mlspec.lock"  # committed: every step's key, dep/out hashes, params and metrics
STATE = ".mlspec"  # mlspec's own working state (git-ignored)
RECORDS = f"{STATE}/steps"  # `mlspec run` leaves RECORDS/<step>.lock: that step's entry alone
SWEEPS = f"{STATE}/sweeps"  # sweep variant records: SWEEPS/<step>/<params>.json
CACHE = f"{STATE}/cache"  # outs of every step run, by step key: restored instead of re-executed
TRANSFER_SCRATCH = ".remote-"  # CACHE/.remote-*: a push's or pull's temporary directory
HASH_CACHE = f"{STATE}/hashes.json"  # file hashes keyed by (path, size, mtime_ns, inode)
LOGS = f"{STATE}/logs"  # LOGS/<step>.log: a step's output when `mlspec run` overlaps steps
RUN_LOCK = f"{STATE}/run.lock"  # fcntl lock held by one `mlspec run` at a time
BUILD_RECORD = f"{STATE}/build.json"  # images `mlspec build` made (digest, tags, lineage)
ESTIMATORS_VALID = f"{STATE}/estimators-valid"  # cache of built-in estimators checked
PARAMS_FILE = "params.json"  # a step's params, written beside the command it runs
REPORT = "report.md"  # `mlspec report -o` in CI: job summary and PR comment


def record(step: str) -> str:
    """The record `mlspec run` leaves for one step."""
    return f"{RECORDS}/{step}.lock"
