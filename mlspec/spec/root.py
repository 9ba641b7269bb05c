"""The whole spec: `version`, `project` and the lifecycle stages."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlspec.spec.ci import CI
from mlspec.spec.common import Strict
from mlspec.spec.data import Data
from mlspec.spec.design import Design
from mlspec.spec.inference import Inference
from mlspec.spec.model import Model
from mlspec.spec.project import Project
from mlspec.spec.step import Step

STAGES = ("design", "data", "model", "inference", "ci")


class Spec(Strict):
    version: Literal[1]
    project: Project
    design: Design | None = None
    data: Data | None = None
    model: Model | None = None
    inference: Inference | None = None
    ci: CI = Field(default_factory=CI)

    def steps(self) -> dict[str, tuple[str, Step]]:
        """Every step across stages, in declaration order: name -> (stage, step)."""
        out: dict[str, tuple[str, Step]] = {}
        for stage_name, stage in (("data", self.data), ("model", self.model)):
            if stage is not None:
                for name, step in stage.steps.items():
                    out.setdefault(name, (stage_name, step))
        return out
