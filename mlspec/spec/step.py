"""A step: one command (or a built-in scikit-learn estimator) with deps, params and outs.

Data and model steps share this model; together they form one DAG (see mlspec.spec.graph).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlspec.spec.common import ImageRef, ParamName, RelPath, Scalar, Strict, fail


class Checks(Strict):
    """Checks on a step's CSV outs, evaluated before anything downstream uses them."""

    min_rows: int | None = Field(None, ge=0)
    columns: dict[str, Literal["str", "int", "float", "bool"]] = Field(default_factory=dict)
    max_null_fraction: float | int | None = Field(None, ge=0, le=1)


class Resources(Strict):
    runner: str = Field("ubuntu-latest", description="GitHub runner label / GitLab tag")
    timeout_minutes: int = Field(30, ge=1, le=360)
    image: ImageRef | None = Field(None, description="container image for this step's CI job")
    cpus: int = Field(1, ge=1, le=1024, description="cores the step's command keeps busy (its "
                      "n_jobs, threads or workers): `mlspec run --jobs N` runs steps at once "
                      "only while their cpus add up to at most N")


class Dataset(Strict):
    """The data a built-in estimator is trained on: a CSV in the repo or a bundled dataset."""

    path: RelPath | None = None
    sklearn: Literal["iris", "wine", "breast_cancer", "digits", "diabetes"] | None = None
    target: str | None = Field(None, description="target column of the CSV")

    @model_validator(mode="after")
    def _one_source(self) -> Dataset:
        if (self.path is None) == (self.sklearn is None):
            raise fail("spec.dataset", "dataset needs exactly one of 'path' or 'sklearn'")
        if self.path is not None and not self.target:
            raise fail("spec.dataset", "a CSV dataset needs its 'target' column")
        return self


class Split(Strict):
    test_size: float = Field(0.2, gt=0, lt=1)
    random_state: int = 0
    stratify: bool = True


class Step(Strict):
    command: str | None = Field(None, description="shell command, run from the repository root")
    deps: list[RelPath] = Field(default_factory=list)
    params: dict[ParamName, Scalar] = Field(
        default_factory=dict, description="written to params.json and exported as MLSPEC_PARAM_*")
    outs: list[RelPath] = Field(default_factory=list)
    metrics: RelPath | None = Field(None, description="JSON file of metrics the step writes")
    checks: Checks | None = None
    sweep: dict[ParamName, list[Scalar]] | None = Field(
        None, description="param grid; CI fans it out as a matrix, best by the primary metric")
    resources: Resources = Field(default_factory=Resources)
    estimator: str | None = Field(
        None, description="dotted scikit-learn class, trained by mlspec itself (no command)")
    dataset: Dataset | None = None
    split: Split | None = None

    @field_validator("params", "sweep")
    @classmethod
    def _case_clash(cls, names: dict[str, Any] | None) -> dict[str, Any] | None:
        upper: dict[str, str] = {}
        for name in names or {}:
            if name.upper() in upper:
                raise fail("spec.param-clash", f"params '{upper[name.upper()]}' and '{name}' both "
                           f"become MLSPEC_PARAM_{name.upper()}",
                           "param names must differ by more than letter case")
            upper[name.upper()] = name
        return names

    @model_validator(mode="after")
    def _shape(self) -> Step:
        if (self.command is None) == (self.estimator is None):
            raise fail("spec.step-kind", "a step needs exactly one of 'command' or 'estimator'",
                       "give a shell command, or an estimator with a dataset")
        if self.estimator is not None and self.dataset is None:
            raise fail("spec.dataset", "an estimator step needs a 'dataset'")
        if self.command is not None and (self.dataset is not None or self.split is not None):
            raise fail("spec.step-kind", "'dataset' and 'split' belong to estimator steps")
        if self.sweep:
            for name, values in self.sweep.items():
                if not values:
                    raise fail("spec.sweep", f"sweep of '{name}' has no values")
        for field_name, paths in (("deps", self.deps), ("outs", self.outs)):
            seen: set[str] = set()
            for p in paths:
                if p in seen:
                    raise fail("spec.duplicate-path", f"'{p}' listed twice in {field_name}")
                seen.add(p)
        return self

    def all_outs(self) -> list[str]:
        """Outs plus the metrics file: everything the step writes."""
        return [*self.outs, *([self.metrics] if self.metrics and self.metrics not in self.outs
                              else [])]
