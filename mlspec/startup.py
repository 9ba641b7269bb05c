"""Start-up trims for the `mlspec` command (never applied when mlspec is imported as a library).

pydantic looks for plugins the first time it builds a validator: its plugin loader imports
importlib.metadata (with email, zipfile, csv …) and scans every installed distribution's entry
points. That is 10-15 ms of `mlspec validate`'s 200 ms budget (bench/startup.py), for plugins the
CLI's own spec validation has no use for. Here the loader module is replaced, in this process
only, by one that reports no plugins; the user's commands that `mlspec run` starts are separate
processes and keep theirs. Any other name pydantic may ever import from the loader is served
by the real module, loaded on first use, so a pydantic upgrade cannot break the CLI through this.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

LOADER = "pydantic.plugin._loader"


def _no_plugins() -> tuple[()]:
    return ()


def _real_attribute(name: str) -> Any:
    """Fall back to the real loader for anything but get_plugins."""
    if name.startswith("__"):  # the import system probes __path__, __spec__ …: not ours to load
        raise AttributeError(name)
    stub = sys.modules.pop(LOADER, None)
    try:
        real = importlib.import_module(LOADER)
    except ImportError:
        if stub is not None:
            sys.modules[LOADER] = stub
        raise AttributeError(name) from None
    return getattr(real, name)


def skip_pydantic_plugin_discovery() -> None:
    if LOADER in sys.modules:  # already loaded (or a plugin is in use): leave it alone
        return
    stub = types.ModuleType(LOADER, "mlspec: no pydantic plugins in the CLI process")
    stub.get_plugins = _no_plugins  # type: ignore[attr-defined]
    stub.__getattr__ = _real_attribute  # type: ignore[method-assign]
    sys.modules[LOADER] = stub
