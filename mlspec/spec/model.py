"""The `model` section: training and evaluation steps and the quality gates."""

from __future__ import annotations

from pydantic import Field, field_validator

from mlspec.spec.common import Name, Strict, fail
from mlspec.spec.gates import parse_gate
from mlspec.spec.step import Step


class Model(Strict):
    steps: dict[Name, Step] = Field(default_factory=dict)
    gates: list[str] = Field(
        default_factory=list,
        description="e.g. 'f1_macro >= 0.90' or 'f1_macro >= baseline - 0.01'")

    @field_validator("gates")
    @classmethod
    def _gates(cls, gates: list[str]) -> list[str]:
        for g in gates:
            parsed = parse_gate(g)
            if isinstance(parsed, str):
                raise fail("spec.gate", f"bad gate '{g}': {parsed}",
                           "e.g. 'f1_macro >= 0.90' or 'f1_macro >= baseline - 0.01'")
        return gates
