"""The `design` section: the hypothesis and the metrics that prove it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mlspec.spec.common import Ident, Strict, fail


class Metric(Strict):
    goal: Literal["maximize", "minimize"]
    threshold: float | int | None = Field(
        None, description="absolute bar: >= when maximized, <= when minimized")
    primary: bool = Field(False, description="the metric sweeps are ranked by; one at most")
    tolerance: float | int = Field(
        0.0, ge=0, description="absolute difference `mlspec run --verify` accepts")


class Design(Strict):
    hypothesis: str = Field(min_length=1)
    metrics: dict[Ident, Metric] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_primary(self) -> Design:
        primaries = [n for n, m in self.metrics.items() if m.primary]
        if len(primaries) > 1:
            raise fail("spec.primary-metric",
                       f"more than one primary metric: {', '.join(primaries)}",
                       "mark exactly one metric `primary: true`")
        return self

    @property
    def primary(self) -> str | None:
        for name, m in self.metrics.items():
            if m.primary:
                return name
        return next(iter(self.metrics), None)
