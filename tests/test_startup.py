"""The CLI's start-up trims: pydantic plugin discovery skipped (mlspec/startup.py), and only the
invoked command built (mlspec/lazygroup.py)."""

from __future__ import annotations

import subprocess
import sys

from conftest import EXAMPLES

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


LAZY = """
import sys
import typer.main

real = typer.main.get_command_from_info
built = []


def spy(info, **kwargs):
    built.append(info.callback.__name__)
    return real(info, **kwargs)


typer.main.get_command_from_info = spy  # before mlspec.cli imports it
from mlspec import cli

sys.argv = ["mlspec", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as stop:
    code = stop.code
others = sorted(m for m in sys.modules if m.split(".")[:2] in (
    ["mlspec", "run"], ["mlspec", "compile"], ["mlspec", "gitops"], ["mlspec", "image"],
    ["mlspec", "scaffold"]) or m.split(".")[0] in ("git", "docker", "sklearn"))
# spec/ci.py validates ci.targets against the registry, which imports nothing
others = [m for m in others if m not in ("mlspec.compile", "mlspec.compile.registry")]
print(code, built, others, file=sys.stderr)
"""


def test_validate_builds_and_imports_only_its_own_command() -> None:
    """`mlspec validate` builds one click command (not one per command) and imports none of
    the packages that other commands use."""
    r = subprocess.run([sys.executable, "-c", LAZY, "validate"], capture_output=True, text=True,
                       cwd=EXAMPLES / "iris")
    assert r.stderr.splitlines()[-1] == "0 ['validate'] []", r.stderr


def test_help_still_builds_every_command() -> None:
    """`mlspec --help` lists every command with its one-line help: each is built for it."""
    r = subprocess.run([sys.executable, "-c", LAZY, "--help"], capture_output=True, text=True,
                       cwd=EXAMPLES / "iris")
    code, rest = r.stderr.splitlines()[-1].split(" ", 1)
    assert code == "0", r.stderr
    assert "'validate'" in rest and "'serve'" in rest and "'compile_'" in rest, r.stderr
