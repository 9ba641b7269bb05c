"""`mlspec init`: write a starter spec, its schema and small example scripts into a repository.

The files come from templates/init/ (shipped in the wheel as mlspec.templates). Nothing is
overwritten: when any of its own files (the spec, the schema, the scripts) exists, init reports
each one and writes nothing (exit 2). A .gitignore or requirements.txt the repository already
has is kept as it is, and init says which lines it lacks.
"""

from __future__ import annotations

import os
import re
import sys
from importlib.resources import files
from pathlib import Path

from mlspec.errors import Diagnostic, MlspecError, Outcome
from mlspec.fsutil import write_atomic

# target path in the repository -> template under templates/init/
FILES = {
    "mlspec.yaml": "mlspec.yaml.j2",
    "mlspec.schema.json": None,  # from the models: `mlspec schema`
    "requirements.txt": "requirements.txt",
    ".gitignore": "gitignore",
    "src/prepare.py": "src/prepare.py",
    "src/train.py": "src/train.py",
    "src/evaluate.py": "src/evaluate.py",
}
# files a repository often has already: init keeps the user's (untouched) and says what to add
SHARED = (".gitignore", "requirements.txt")


def project_name(directory: Path) -> str:
    """A valid project name from a directory name: lowercase, [a-z0-9_-], at most 63 chars."""
    name = re.sub(r"[^a-z0-9_-]+", "-", Path(os.path.realpath(directory)).name.lower()).strip("-_")
    return name[:63].strip("-_") or "ml-project"


def render(name: str) -> dict[str, str]:
    """The files `mlspec init` writes, by repository path."""
    import jinja2

    from mlspec.spec.schema import schema_text

    root = files("mlspec.templates").joinpath("init")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    out: dict[str, str] = {}
    for target, template in FILES.items():
        if template is None:
            out[target] = schema_text()
            continue
        text = root.joinpath(*template.split("/")).read_text(encoding="utf-8")
        if template.endswith(".j2"):
            env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     autoescape=False)
            text = env.from_string(text).render(name=name, python=python)
        out[target] = text
    return out


def _keep_note(path: Path, shown: str, ours: str) -> str:
    """What the user's own .gitignore / requirements.txt lacks of the starter's lines."""
    try:
        theirs = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        theirs = ""
    def key(line: str) -> str:  # a requirement is present whatever its version specifier
        return re.split(r"[<>=!~; \[]", line.strip(), maxsplit=1)[0].lower()

    have = {key(ln) for ln in theirs.splitlines()}
    missing = [ln for ln in ours.splitlines()
               if ln.strip() and not ln.startswith("#") and key(ln) not in have]
    if not missing:
        return f"kept {shown}"
    return f"kept {shown}; add: {' '.join(missing)}"


def scaffold(directory: Path, name: str | None) -> Outcome:
    from mlspec.spec.common import NAME_RE

    directory = Path(directory)
    shown = directory.as_posix().rstrip("/") or "."
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise MlspecError([Diagnostic(shown, 0, 0, f"'{shown}' is not a directory", "init.target",
                                      None)])
    if name is None:
        name = project_name(directory)
    elif not NAME_RE.match(name):
        raise MlspecError([Diagnostic("mlspec", 0, 0, f"project name '{name}' is not allowed",
                                      "spec.name", "use lowercase letters, digits, '_' and '-' "
                                      "(at most 63 characters)")])
    prefix = "" if shown == "." else shown + "/"
    existing = [t for t in FILES if t not in SHARED and os.path.lexists(directory / t)]
    if existing:
        raise MlspecError([
            Diagnostic(f"{prefix}{t}", 0, 0, f"{prefix}{t} already exists; init overwrites nothing",
                       "init.exists", "run init in a repository without an mlspec project, "
                       "or move the file away") for t in existing])
    rendered = render(name)
    kept = [t for t in SHARED if os.path.lexists(directory / t)]
    notes = [_keep_note(directory / t, f"{prefix}{t}", rendered.pop(t)) for t in kept]
    written: list[Path] = []
    try:
        for target, text in rendered.items():
            path = directory / target
            write_atomic(path, text)
            written.append(path)
    except OSError as exc:
        for path in written:  # leave the directory as it was
            path.unlink(missing_ok=True)
        raise MlspecError([Diagnostic(shown, 0, 0, f"cannot write the scaffold: {exc}",
                                      "init.write", None)]) from None
    lines = [f"created {prefix}{t}" for t in rendered] + [n for n in notes if n]
    steps = "mlspec validate && mlspec run && mlspec compile"
    lines += ["", f"next: cd {shown} && {steps}" if prefix else f"next: {steps}"]
    return Outcome(text="\n".join(lines) + "\n")
