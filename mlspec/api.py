"""The functions the CLI calls. Each returns an Outcome (exit code, diagnostics, output).

Bad input raises MlspecError (exit 2); a failed check raises CheckFailed (exit 1). Heavy
modules are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec

from mlspec.errors import CheckFailed, MlspecError, Outcome

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec

P = ParamSpec("P")


def _outcome(fn: Callable[P, Outcome]) -> Callable[P, Outcome]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Outcome:
        try:
            return fn(*args, **kwargs)
        except MlspecError as err:
            return Outcome.from_error(err)
        except CheckFailed as err:
            return Outcome(code=1, stderr=f"{err}\n")
        except KeyboardInterrupt:
            return Outcome(code=130, stderr="interrupted\n")

    return wrapper


def load(spec_path: Path) -> LoadedSpec:
    """Load and validate a spec, raising MlspecError with every problem."""
    from mlspec.spec.loader import load_spec

    return load_spec(spec_path, display=str(spec_path))


@_outcome
def validate(spec_path: Path) -> Outcome:
    loaded = load(spec_path)
    if any(s.estimator for s in loaded.graph.steps.values()):
        from mlspec.run.sklearn_step import validate_builtin  # imports sklearn: only for these

        validate_builtin(loaded)
    n = len(loaded.graph.order)
    return Outcome(text=f"{spec_path}: ok ({n} step{'s' if n != 1 else ''})")


@_outcome
def graph(spec_path: Path, fmt: str) -> Outcome:
    from mlspec.spec.graph import render_graph

    loaded = load(spec_path)
    return Outcome(text=render_graph(loaded.graph, fmt))


@_outcome
def schema() -> Outcome:
    from mlspec.spec.schema import schema_text

    return Outcome(text=schema_text())


@_outcome
def init(directory: Path, name: str | None) -> Outcome:
    from mlspec.scaffold import scaffold

    return scaffold(directory, name)


@_outcome
def compile(spec_path: Path, targets: str | None, check: bool, force: bool) -> Outcome:
    from mlspec.compile.driver import compile_spec

    return compile_spec(load(spec_path), targets, check=check, force=force)


@_outcome
def run(spec_path: Path, steps: list[str], force: bool, sets: list[str], verify: bool,
        sweep: bool, base: str | None, gates: bool) -> Outcome:
    from mlspec.run.runner import run_steps

    return run_steps(load(spec_path), steps, force=force, sets=sets, verify=verify, sweep=sweep,
                     base=base, gates=gates)


@_outcome
def status(spec_path: Path) -> Outcome:
    from mlspec.run.runner import status as runner_status

    return runner_status(load(spec_path))


@_outcome
def metrics(spec_path: Path, diff: str | None, fmt: str) -> Outcome:
    from mlspec.gitops.commands import metrics_outcome

    return metrics_outcome(load(spec_path), diff, fmt)


@_outcome
def report(spec_path: Path, base: str | None, output: Path | None) -> Outcome:
    from mlspec.gitops.commands import report_outcome

    return report_outcome(load(spec_path), base, output)


@_outcome
def build(spec_path: Path, which: str, push: bool, tags: list[str]) -> Outcome:
    from mlspec.image.build import build_image

    return build_image(load(spec_path), which, push=push, tags=tags)


@_outcome
def release(spec_path: Path, version: str, message: str | None, push: bool) -> Outcome:
    from mlspec.gitops.commands import release as gitops_release

    return gitops_release(load(spec_path), version, message=message, push=push)


@_outcome
def models(spec_path: Path) -> Outcome:
    from mlspec.gitops.commands import models as gitops_models

    return gitops_models(load(spec_path))


@_outcome
def lineage(spec_path: Path, ref: str, model_card: bool = False) -> Outcome:
    from mlspec.gitops.commands import lineage as gitops_lineage

    return gitops_lineage(load(spec_path), ref, model_card=model_card)


@_outcome
def serve(model: Path, host: str, port: int) -> Outcome:
    from mlspec.image.serve import serve_model

    return serve_model(model, host=host, port=port)
