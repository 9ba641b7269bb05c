"""The CLI's start-up trim (mlspec/startup.py): pydantic works, plugin discovery is skipped."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from mlspec.startup import skip_pydantic_plugin_discovery
skip_pydantic_plugin_discovery()
from pydantic import TypeAdapter
assert TypeAdapter(int).validate_python(3) == 3
from mlspec.spec.root import Spec
Spec.model_validate({"version": 1, "project": {"name": "p"}})
assert "importlib.metadata" not in sys.modules, "plugin discovery ran"
from pydantic.plugin._loader import PYDANTIC_ENTRY_POINT_GROUP  # any other name: the real one
assert PYDANTIC_ENTRY_POINT_GROUP == "pydantic"
print("ok")
"""


def test_pydantic_validates_without_plugin_discovery() -> None:
    r = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr


def test_library_import_leaves_pydantic_alone() -> None:
    code = ("import sys, mlspec.api, mlspec.spec.loader\n"
            "assert 'pydantic.plugin._loader' not in sys.modules or "
            "sys.modules['pydantic.plugin._loader'].__file__\nprint('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
