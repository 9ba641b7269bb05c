"""mlspec: declarative GitOps for the machine-learning lifecycle."""

__version__ = "0.1.0"

# The distribution's name on PyPI. The import package and the command are `mlspec`, but the
# PyPI name `mlspec` belongs to another project: installing that name in CI would run someone
# else's code with the pipeline's secrets. Every generated install line pins this name.
DISTRIBUTION = "mlspec-gitops"


def requirement() -> str:
    """The pip requirement of exactly this mlspec, as generated pipelines install it."""
    return f"{DISTRIBUTION}=={__version__}"
