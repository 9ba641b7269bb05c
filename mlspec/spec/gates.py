"""Quality-gate expressions: `metric OP rhs`, rhs a number or `baseline [+-*] number`."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}
_NUM = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_GATE = re.compile(
    rf"^\s*(?P<metric>[a-z][a-z0-9_]*)\s*(?P<op>>=|<=|==|>|<)\s*"
    rf"(?:(?P<num>{_NUM})|baseline(?:\s*(?P<bop>[-+*])\s*(?P<bnum>{_NUM}))?)\s*$"
)


@dataclass(frozen=True)
class Gate:
    text: str
    metric: str
    op: str
    number: float | None  # absolute threshold, or None when relative to the baseline
    base_op: str | None = None  # '+', '-', '*' applied to the baseline
    base_num: float = 0.0

    @property
    def relative(self) -> bool:
        return self.number is None

    def threshold(self, baseline: float | None) -> float | None:
        """The value the metric is compared with; None when a baseline is needed but missing."""
        if self.number is not None:
            return self.number
        if baseline is None:
            return None
        if self.base_op == "+":
            return baseline + self.base_num
        if self.base_op == "-":
            return baseline - self.base_num
        if self.base_op == "*":
            return baseline * self.base_num
        return baseline

    def passes(self, value: float, baseline: float | None) -> bool | None:
        bar = self.threshold(baseline)
        if bar is None:
            return None
        return OPS[self.op](value, bar)


def parse_gate(text: str) -> Gate | str:
    """A Gate, or a message saying what is wrong with the expression."""
    m = _GATE.match(text)
    if not m:
        return ("expected '<metric> <op> <number>' or '<metric> <op> baseline [+|-|* <number>]'"
                ", op one of >=, >, <=, <, ==")
    num = m.group("num")
    return Gate(
        text=text.strip(), metric=m.group("metric"), op=m.group("op"),
        number=float(num) if num is not None else None,
        base_op=m.group("bop"), base_num=float(m.group("bnum") or 0.0),
    )
