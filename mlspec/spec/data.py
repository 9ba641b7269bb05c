"""The `data` section: steps that produce data, checked before use, and a refresh schedule."""

from __future__ import annotations

from pydantic import Field

from mlspec.spec.common import Cron, Name, Strict
from mlspec.spec.step import Step


class Data(Strict):
    steps: dict[Name, Step] = Field(default_factory=dict)
    refresh: Cron | None = Field(None, description="cron: scheduled data refresh and retrain")
