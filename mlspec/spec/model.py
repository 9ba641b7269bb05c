"""The `model` section: training and evaluation steps and the quality gates."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from mlspec.spec.common import Name, Strict, fail
from mlspec.spec.gates import parse_gate
from mlspec.spec.step import Step


def _check_gate(text: str) -> str:
    parsed = parse_gate(text)
    if isinstance(parsed, str):
        raise fail("spec.gate", f"bad gate '{text}': {parsed}",
                   "e.g. 'f1_macro >= 0.90' or 'f1_macro >= baseline - 0.01'")
    return text


GateExpr = Annotated[str, AfterValidator(_check_gate)]


class Model(Strict):
    steps: dict[Name, Step] = Field(default_factory=dict)
    gates: list[GateExpr] = Field(
        default_factory=list,
        description="e.g. 'f1_macro >= 0.90' or 'f1_macro >= baseline - 0.01'")
