"""`mlspec.lock`: what every step was run with and what it produced.

The lock sits at the repository root, is meant to be committed, and is byte-for-byte
deterministic: YAML, keys sorted, 2-space indent, one comment header line, strings quoted.
It is written by a small emitter here (no YAML library needed to write) and read with the
hardened reader of mlspec.spec.yamlsafe (no anchors, tags or alias bombs in a lock that came
from someone else's branch).

    # mlspec.lock: written by `mlspec run`; commit it. Do not edit by hand.
    env:
      python: "3.11"
      requirements: "sha256:…"
    steps:
      evaluate:
        command: "python src/evaluate.py"
        deps:
          data/iris.csv: "sha256:…"
        key: "sha256:…"
        metrics:
          accuracy: 0.97
        outs:
          metrics.json: "sha256:…"
        params: {}
    sweeps:                 # only after `mlspec run --sweep`
      train:
        best: {n_estimators: 100}
        metric: f1_macro
        variants: [{params: {…}, metrics: {…}}]
    version: 1
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.fsutil import write_atomic
from mlspec.spec.yamlsafe import parse_yaml

LOCK_NAME = layout.LOCK
LOCK_VERSION = 1
HEADER = "# mlspec.lock: written by `mlspec run`; commit it. Do not edit by hand.\n"

Scalar = str | int | float | bool | None


@dataclass
class StepLock:
    """One step's record: its key and everything that went into it and came out."""

    key: str = ""
    command: str = ""
    deps: dict[str, str] = field(default_factory=dict)  # path -> "sha256:<hex>"
    params: dict[str, Scalar] = field(default_factory=dict)
    outs: dict[str, str] = field(default_factory=dict)  # path -> "sha256:<hex>"
    metrics: dict[str, float] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return {"command": self.command, "deps": dict(self.deps), "key": self.key,
                "metrics": dict(self.metrics), "outs": dict(self.outs),
                "params": dict(self.params)}


@dataclass
class SweepLock:
    """The result of `mlspec run --sweep` for one step: each variant and the best one."""

    metric: str
    best: dict[str, Scalar] = field(default_factory=dict)
    variants: list[dict[str, Any]] = field(default_factory=list)  # {params: {}, metrics: {}}

    def to_data(self) -> dict[str, Any]:
        return {"best": dict(self.best), "metric": self.metric,
                "variants": [{"metrics": dict(v.get("metrics", {})),
                              "params": dict(v.get("params", {}))} for v in self.variants]}


@dataclass
class Lock:
    env: dict[str, str] = field(default_factory=dict)  # python, requirements
    steps: dict[str, StepLock] = field(default_factory=dict)
    sweeps: dict[str, SweepLock] = field(default_factory=dict)
    version: int = LOCK_VERSION

    # -- queries ---------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Every step's metrics merged (step order by name; a later name wins a clash)."""
        out: dict[str, float] = {}
        for name in sorted(self.steps):
            out.update(self.steps[name].metrics)
        return out

    def params(self) -> dict[str, dict[str, Scalar]]:
        return {name: dict(s.params) for name, s in sorted(self.steps.items())}

    # -- text ------------------------------------------------------------------------------
    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "env": dict(self.env),
            "steps": {n: s.to_data() for n, s in self.steps.items()},
            "version": self.version,
        }
        if self.sweeps:
            data["sweeps"] = {n: s.to_data() for n, s in self.sweeps.items()}
        return data

    def dump(self) -> str:
        return HEADER + dump_yaml(self.to_data())

    @classmethod
    def parse(cls, text: str, file: str = LOCK_NAME) -> Lock:
        """Parse a lock; raise MlspecError (exit 2) when it is not a valid lock."""

        doc = parse_yaml(text, file)
        try:
            return cls.from_data(doc.data)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise MlspecError([Diagnostic(
                file, 0, 0, f"corrupt lock: {exc}", "lock.corrupt",
                "restore it from git (`git checkout -- mlspec.lock`) or delete it and "
                "run `mlspec run`")]) from None

    @classmethod
    def from_data(cls, data: Any) -> Lock:
        if data is None:
            data = {}
        _want(isinstance(data, dict), "the document is not a mapping")
        version = data.get("version", LOCK_VERSION)
        _want(version == LOCK_VERSION, f"unsupported lock version {version!r}")
        env = data.get("env") or {}
        _want(isinstance(env, dict), "'env' is not a mapping")
        steps_data = data.get("steps") or {}
        _want(isinstance(steps_data, dict), "'steps' is not a mapping")
        steps: dict[str, StepLock] = {}
        for name, s in steps_data.items():
            _want(isinstance(s, dict), f"step '{name}' is not a mapping")
            steps[str(name)] = StepLock(
                key=_str(s.get("key", ""), f"steps.{name}.key"),
                command=_str(s.get("command", ""), f"steps.{name}.command"),
                deps=_str_map(s.get("deps"), f"steps.{name}.deps"),
                params=_scalar_map(s.get("params"), f"steps.{name}.params"),
                outs=_str_map(s.get("outs"), f"steps.{name}.outs"),
                metrics=_num_map(s.get("metrics"), f"steps.{name}.metrics"),
            )
        sweeps: dict[str, SweepLock] = {}
        for name, sw in (data.get("sweeps") or {}).items():
            _want(isinstance(sw, dict), f"sweep '{name}' is not a mapping")
            variants = sw.get("variants") or []
            _want(isinstance(variants, list), f"sweeps.{name}.variants is not a list")
            sweeps[str(name)] = SweepLock(
                metric=_str(sw.get("metric", ""), f"sweeps.{name}.metric"),
                best=_scalar_map(sw.get("best"), f"sweeps.{name}.best"),
                variants=[{"params": _scalar_map(v.get("params"), f"sweeps.{name}.variants"),
                           "metrics": _num_map(v.get("metrics"), f"sweeps.{name}.variants")}
                          for v in variants],
            )
        return cls(env={str(k): str(v) for k, v in env.items()}, steps=steps, sweeps=sweeps,
                   version=LOCK_VERSION)


def _want(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _str(v: Any, where: str) -> str:
    _want(isinstance(v, str), f"{where} is not a string")
    return str(v)


def _str_map(v: Any, where: str) -> dict[str, str]:
    if v is None:
        return {}
    _want(isinstance(v, dict), f"{where} is not a mapping")
    return {str(k): _str(x, f"{where}.{k}") for k, x in v.items()}


def _scalar_map(v: Any, where: str) -> dict[str, Scalar]:
    if v is None:
        return {}
    _want(isinstance(v, dict), f"{where} is not a mapping")
    for k, x in v.items():
        _want(x is None or isinstance(x, str | int | float | bool), f"{where}.{k} is not a scalar")
    return {str(k): x for k, x in v.items()}


def _num_map(v: Any, where: str) -> dict[str, float]:
    if v is None:
        return {}
    _want(isinstance(v, dict), f"{where} is not a mapping")
    out: dict[str, float] = {}
    for k, x in v.items():
        _want(isinstance(x, int | float) and not isinstance(x, bool),
              f"{where}.{k} is not a number")
        out[str(k)] = x
    return out


# -- the emitter ---------------------------------------------------------------------------
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _quote(s: str) -> str:
    """A YAML double-quoted scalar: printable characters as they are, the rest escaped."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif (0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD
              or o >= 0x10000) and o != 0xFEFF:
            out.append(ch)
        else:
            out.append(f"\\u{o:04x}")
    out.append('"')
    return "".join(out)


def _key(k: str) -> str:
    if _PLAIN_KEY.fullmatch(k) and k.lower() not in _RESERVED:
        return k
    return _quote(k)


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        return repr(v)
    if isinstance(v, str):
        return _quote(v)
    raise TypeError(f"cannot write {type(v).__name__} to the lock")


def _flow(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(str(k))}: {_flow(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def _emit(v: Any, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    if isinstance(v, dict):
        for k in sorted(v):
            x = v[k]
            if isinstance(x, dict) and x:
                lines.append(f"{pad}{_key(str(k))}:")
                _emit(x, indent + 1, lines)
            elif isinstance(x, list) and x:
                lines.append(f"{pad}{_key(str(k))}:")
                for item in x:  # list items (sweep variants) in flow style, one per line
                    lines.append(f"{pad}  - {_flow(item)}")
            else:
                lines.append(f"{pad}{_key(str(k))}: {_flow(x)}")
    else:
        lines.append(pad + _flow(v))


def dump_yaml(data: dict[str, Any]) -> str:
    """Deterministic block YAML: keys sorted, 2-space indent, strings double-quoted."""
    lines: list[str] = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


# -- files ---------------------------------------------------------------------------------
def read_lock(root: Path) -> Lock | None:
    """The lock at the repository root, or None when there is none yet."""
    path = Path(root) / LOCK_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise MlspecError([Diagnostic(LOCK_NAME, 0, 0, f"cannot read the lock: {exc}",
                                      "lock.corrupt", None)]) from None
    return Lock.parse(text)


def write_lock(root: Path, lock: Lock) -> None:
    write_atomic(Path(root) / LOCK_NAME, lock.dump())
