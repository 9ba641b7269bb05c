"""The monitor record: what one `mlspec monitor` run leaves in the remote store (issue 15).

One OCI manifest per run, artifact type MONITOR_RUN, tagged `monitor-<UTC yyyymmddThhmmssZ>-
<12 hex of the record's sha256>` (sortable by time, unique per content; step runs are tagged
`sha256-<hex>`, so the two never collide). Its config blob is the record: a small JSON object,
keys sorted, no blanks: the deployed release tag and its commit, the monitor's metrics, its gate
verdicts, the UTC time of the run, the CI run's URL when the environment names one, the mlspec
version.

Records are hostile input (anyone who can push to the registry writes them): `decode` reads at
most MAX_RECORD bytes, refuses NaN, infinities and anything outside the shape below with a
ValueError that says why. This module imports nothing of mlspec: `remote` stores records,
`gitops` shows them, `api` joins the two.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

MONITOR_RUN = "application/vnd.mlspec.monitor-run.v1+json"
TAG_PREFIX = "monitor-"
TAG = re.compile(r"monitor-(\d{8}T\d{6}Z)-[0-9a-f]{12}")
MAX_RECORD = 64 * 1024  # bytes of one record
MAX_METRICS = 256
MAX_GATES = 64
MAX_NAME = 128
MAX_TEXT = 512
VERDICTS = frozenset({"pass", "fail", "skipped"})
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass
class Record:
    time: str  # UTC, 2026-12-01T10:12:42Z
    release: str | None  # the release tag deployed when the monitor ran
    commit: str | None  # that tag's commit
    metrics: dict[str, float]
    gates: list[dict[str, str]] = field(default_factory=list)  # {"gate", "verdict"}
    run_url: str | None = None
    version: str = ""  # mlspec's
    tag: str = ""  # the tag it was read from (not part of the record's bytes)

    def to_data(self) -> dict[str, Any]:
        return {"time": self.time, "release": self.release, "commit": self.commit,
                "metrics": dict(sorted(self.metrics.items())), "gates": list(self.gates),
                "run_url": self.run_url, "mlspec": self.version}


def encode(record: Record) -> bytes:
    """The record's bytes: deterministic (keys sorted, no blanks)."""
    return json.dumps(record.to_data(), sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode()


def tag_of(record: Record, body: bytes) -> str:
    stamp = record.time.replace("-", "").replace(":", "")
    return f"{TAG_PREFIX}{stamp}-{hashlib.sha256(body).hexdigest()[:12]}"


def tag_time(tag: str) -> str | None:
    """The UTC time a record's tag names (2026-12-01T10:12:42Z), None for another tag."""
    m = TAG.fullmatch(tag)
    if m is None:
        return None
    d = m.group(1)
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}T{d[9:11]}:{d[11:13]}:{d[13:15]}Z"


def run_url(env: dict[str, str] | None = None) -> str | None:
    """The CI run's address when the environment names one (GitHub Actions, GitLab CI)."""
    env = dict(os.environ) if env is None else env
    server, repo, run = (env.get(k, "") for k in
                         ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    url = f"{server}/{repo}/actions/runs/{run}" if server and repo and run else \
        env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL") or ""
    return url if _url_ok(url) else None


def _url_ok(url: str) -> bool:
    return (url.startswith(("https://", "http://")) and len(url) <= MAX_TEXT
            and _printable(url) and " " not in url)


def _printable(text: str) -> bool:
    return all(c.isprintable() for c in text)


def _name_ok(name: object) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= MAX_NAME and _printable(name)
            and name == name.strip())


def clean(metrics: dict[str, object]) -> tuple[dict[str, float], int]:
    """The metrics a record may hold (finite numbers with printable names, at most
    MAX_METRICS), and how many were left out."""
    kept: dict[str, float] = {}
    for name, v in sorted(metrics.items()):
        if len(kept) < MAX_METRICS and _name_ok(name) and isinstance(v, int | float) \
                and not isinstance(v, bool):
            try:
                f = float(v)
            except OverflowError:
                continue
            if math.isfinite(f):
                kept[name] = v if isinstance(v, int) else f  # counts stay integers
    return kept, len(metrics) - len(kept)


def clean_gates(gates: list[dict[str, object]]) -> list[dict[str, str]]:
    """Gate verdicts as a record holds them: {gate, verdict}, at most MAX_GATES, texts cut to
    MAX_NAME characters."""
    out = []
    for g in gates[:MAX_GATES]:
        text, verdict = str(g.get("gate", ""))[:MAX_NAME].strip(), str(g.get("verdict"))
        if _name_ok(text) and verdict in VERDICTS:
            out.append({"gate": text, "verdict": verdict})
    return out


def _no_constant(name: str) -> float:
    raise ValueError(f"it holds {name}")


def decode(body: bytes, tag: str = "") -> Record:
    """A record from untrusted bytes, or ValueError saying what is wrong with it."""
    if len(body) > MAX_RECORD:
        raise ValueError(f"it is larger than {MAX_RECORD // 1024} KiB")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8") from None
    except RecursionError:
        raise ValueError("it nests too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    when = data.get("time")
    if not isinstance(when, str) or not _TIME.fullmatch(when):
        raise ValueError("its time is not UTC yyyy-mm-ddThh:mm:ssZ")
    release, commit = data.get("release"), data.get("commit")
    if release is not None and not _name_ok(release):
        raise ValueError("its release is not a tag name")
    if commit is not None and not (isinstance(commit, str) and _COMMIT.fullmatch(commit)):
        raise ValueError("its commit is not a commit id")
    metrics = data.get("metrics")
    if not isinstance(metrics, dict) or len(metrics) > MAX_METRICS:
        raise ValueError(f"its metrics are not an object of at most {MAX_METRICS} numbers")
    values: dict[str, float] = {}
    for name, v in metrics.items():
        if not _name_ok(name):
            raise ValueError("a metric name is empty, too long or holds control characters")
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"metric '{name[:40]}' is not a number")
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise ValueError(f"metric '{name[:40]}' is not finite")
        values[name] = v if isinstance(v, int) else f
    gates = data.get("gates", [])
    if not isinstance(gates, list) or len(gates) > MAX_GATES or not all(
            isinstance(g, dict) and _name_ok(g.get("gate")) and g.get("verdict") in VERDICTS
            for g in gates):
        raise ValueError("its gates are not a list of {gate, verdict}")
    url = data.get("run_url")
    if url is not None and not (isinstance(url, str) and _url_ok(url)):
        raise ValueError("its run_url is not an http(s) address")
    version = data.get("mlspec", "")
    if not isinstance(version, str) or len(version) > 64 or not _printable(version):
        raise ValueError("its mlspec version is not a short text")
    return Record(when, release, commit, values,
                  [{"gate": str(g["gate"]), "verdict": str(g["verdict"])} for g in gates],
                  url, version, tag)
