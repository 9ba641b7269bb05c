"""The `inference` section: serving image, serving command, deployments, monitoring."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from mlspec.spec.common import (
    IMAGE_REF,
    Cron,
    Name,
    RelPath,
    ShellWords,
    Strict,
    fail,
    ref_problem,
)
from mlspec.spec.model import GateExpr

_IMAGE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_BASE = IMAGE_REF


class Image(Strict):
    name: str = Field(description="image repository without a tag, e.g. ghcr.io/acme/iris")
    base: str = Field("python:3.11-slim", description="base image with a tag (never latest), "
                      "optionally @sha256:digest")
    username: str | None = Field(None, description="registry user for `mlspec build --push`",
                                 pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,254}$")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _IMAGE.fullmatch(v):
            raise fail("spec.image", f"'{v}' is not an image repository name",
                       "lowercase, like ghcr.io/acme/iris, with no tag")
        return v

    @field_validator("base")
    @classmethod
    def _base(cls, v: str) -> str:
        m = _BASE.fullmatch(v)
        if not m:
            raise fail("spec.image", f"'{v}' is not an image reference",
                       "like python:3.11-slim or python:3.11-slim@sha256:…")
        if not m.group("tag"):
            raise fail("spec.image", f"base image '{v}' has no tag", "pin a tag: python:3.11-slim")
        if m.group("tag") == "latest":
            raise fail("spec.image", "base image tag 'latest' is not reproducible",
                       "pin a version tag (and ideally a digest)")
        return v


class Serve(Strict):
    command: ShellWords = Field("mlspec serve model/model.pkl --port 8080")
    port: int = Field(8080, ge=1, le=65535)
    health: str = Field("/healthz", pattern=r"^/[A-Za-z0-9_./-]*$")


class Deploy(Strict):
    when: str = Field(description="a branch name (e.g. main) or tag:<glob> (e.g. tag:v*)")
    approval: bool = Field(False, description="the CI environment requires a reviewer")
    url: str | None = Field(None, description="the environment's URL (http or https)")
    command: str | None = Field(None, description="what deploys the pushed image")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"^https?://[^\s\"'<>`\\]+$", v):
            raise fail("spec.url", f"'{v}' is not an http(s) URL",
                       "e.g. https://staging.example.com")
        return v

    @field_validator("when")
    @classmethod
    def _when(cls, v: str) -> str:
        if v.startswith("tag:"):
            problem = ref_problem(v[4:], glob=True)
            if problem:
                raise fail("spec.deploy-when", f"bad tag pattern '{v[4:]}': {problem}",
                           "e.g. tag:v*")
        elif problem := ref_problem(v):
            raise fail("spec.deploy-when", f"'{v}' is neither a branch nor tag:<glob>: {problem}",
                       "e.g. main, or tag:v*")
        return v


class OnFailure(Strict):
    """What the schedule pipeline does when the monitor job fails (its `monitor-failed` job).

    Both default to on: a failing production check that nobody acts on is the gap issue 15
    closes, and `on_failure: {retrain: false, issue: false}` opts out in one line."""

    retrain: bool = Field(True, description="start the refresh-and-retrain flow (GitHub: "
                          "workflow_dispatch of mlspec-schedule.yml with mode refresh; GitLab: "
                          "a pipeline trigger with MLSPEC_SCHEDULE=refresh)")
    issue: bool = Field(True, description="open, or update, the one open issue labelled "
                        "mlspec-monitor with the monitor's report (never one per run; GitLab "
                        "needs a token with api scope in ci.secrets.gitlab_token)")


class Drift(Strict):
    """The built-in drift check: a live sample against the profile recorded at training time."""

    reference: RelPath = Field(description="the profile written at training time (per-feature "
                               "quantiles: `mlspec profile` or a built-in estimator step)")
    live: RelPath = Field(description="the live sample: .csv, .parquet (needs pyarrow) or "
                          "serve's JSON-lines request log (.jsonl)")
    # a column's own name (`sepal length (cm)`, `Age`): it never reaches a generated file, and
    # its metrics are psi_<slug> / ks_<slug> (mlspec.monitor.drift.metric_name)
    features: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        None, min_length=1, description="the features compared (column names as in the "
        "profile); default: every feature in the profile")


class Monitor(Strict):
    schedule: Cron
    command: str | None = Field(None, description="a custom monitor; it may write `metrics`")
    drift: Drift | None = None
    metrics: RelPath | None = Field(None, description="the monitor's metrics file (JSON); "
                                    "`mlspec monitor` writes the drift metrics into it")
    gates: list[GateExpr] = Field(
        default_factory=list, description="e.g. 'psi_max <= 0.2' or 'ks_max <= 0.1'")
    on_failure: OnFailure = Field(default_factory=OnFailure,
                                  description="what a failed monitor run does")

    @model_validator(mode="after")
    def _complete(self) -> Monitor:
        if self.command is None and self.drift is None:
            raise fail("spec.monitor", "a monitor needs a `command`, a `drift` check or both",
                       "e.g. drift: {reference: model/profile.json, live: logs/requests.jsonl}")
        if self.metrics is None and (self.drift is not None or self.gates):
            raise fail("spec.monitor", "`drift` and `gates` need a `metrics` file to write and "
                       "read", "e.g. metrics: monitor/metrics.json")
        return self


class Inference(Strict):
    image: Image
    serve: Serve = Field(default_factory=Serve)
    deploy: dict[Name, Deploy] = Field(default_factory=dict)
    monitor: Monitor | None = None
