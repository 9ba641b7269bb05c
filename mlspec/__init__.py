"""mlspec: declarative GitOps for the machine-learning lifecycle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlspec.spec.root import Spec

__version__ = "0.1.0"

# The distribution's name on PyPI. The import package and the command are `mlspec`, but the
# PyPI name `mlspec` belongs to another project: installing that name in CI would run someone
# else's code with the pipeline's secrets. Every generated install line pins this name.
DISTRIBUTION = "mlspec-gitops"

# The extra holding scikit-learn (with numpy, scipy) and joblib: the built-in `estimator:` steps
# and `mlspec serve` of a pickled model need it; nothing else does (bench/install_size.py).
SKLEARN_EXTRA = "sklearn"


def requirement(extras: Iterable[str] = ()) -> str:
    """The pip requirement of exactly this mlspec, as generated pipelines install it."""
    wanted = sorted(set(extras))
    return f"{DISTRIBUTION}{'[' + ','.join(wanted) + ']' if wanted else ''}=={__version__}"


def spec_extras(spec: Spec) -> tuple[str, ...]:
    """The extras a spec's pipeline needs: `sklearn` when a step is a built-in `estimator:` step
    or the serving command is `mlspec serve …` (it unpickles a scikit-learn model), or the
    monitor has a built-in `drift:` check (numpy)."""
    import shlex  # `import mlspec` (the CLI's first import) stays as small as it was

    if any(step.estimator is not None for _, step in spec.steps().values()):
        return (SKLEARN_EXTRA,)
    inf = spec.inference
    if inf is not None and shlex.split(inf.serve.command)[:2] == ["mlspec", "serve"]:
        return (SKLEARN_EXTRA,)
    if inf is not None and inf.monitor is not None and inf.monitor.drift is not None:
        return (SKLEARN_EXTRA,)  # the built-in drift check computes with numpy
    return ()
