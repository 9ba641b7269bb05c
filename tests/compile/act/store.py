"""Artifact and cache store shared by the act stand-ins (see README.md)."""

from __future__ import annotations

import fnmatch
import os
import shutil
import sys
from pathlib import Path

STORE = Path(os.environ["MLSPEC_ACT_STORE"])
WS = Path(os.environ.get("GITHUB_WORKSPACE") or ".").resolve()


def lines(value: str) -> list[str]:
    return [x.strip() for x in value.splitlines() if x.strip()]


def copy_tree(src: Path, dest: Path) -> None:
    for item in sorted(src.rglob("*")):
        if item.is_file():
            target = dest / item.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, target)


def upload(name: str, paths: str, if_missing: str) -> int:
    dest = STORE / "artifacts" / name
    if dest.exists():
        print(f"::error::an artifact named {name} already exists")
        return 1
    searches = [WS / p for p in lines(paths)]
    roots = [p if p.is_dir() or str(p).endswith("/") else p.parent for p in searches]
    root = Path(os.path.commonpath([str(r) for r in roots]))
    files = []
    for p in searches:
        files.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir()
                     else [p] if p.is_file() else [])
    if not files:
        print(f"no files found for {name}")
        return 1 if if_missing == "error" else 0
    for f in files:
        target = dest / f.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    print(f"uploaded {len(files)} files as {name}")
    return 0


def download(name: str, pattern: str, path: str, merge: bool) -> int:
    base = STORE / "artifacts"
    dest = WS / (path or ".")
    if name:
        if not (base / name).is_dir():
            print(f"::error::artifact {name} not found")
            return 1
        copy_tree(base / name, dest)
        return 0
    found = sorted(p.name for p in base.iterdir() if fnmatch.fnmatch(p.name, pattern)) \
        if base.is_dir() else []
    for n in found:
        copy_tree(base / n, dest if merge else dest / n)
    print(f"downloaded {len(found)} artifacts matching {pattern}")
    return 0


def cache_restore(key: str, out: str) -> int:
    entry = STORE / "cache" / key
    hit = entry.is_dir()
    if hit:
        copy_tree(entry, WS)
    with open(out, "a") as fh:
        fh.write(f"cache-hit={'true' if hit else 'false'}\ncache-primary-key={key}\n")
    print(("hit " if hit else "miss ") + key)
    return 0


def cache_save(key: str, paths: str) -> int:
    entry = STORE / "cache" / key
    if entry.exists():
        return 0
    for p in lines(paths):
        src = WS / p
        if src.is_dir():
            copy_tree(src, entry / p)
        elif src.is_file():
            (entry / p).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, entry / p)
    print(f"saved {key}")
    return 0


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    e = os.environ.get
    if cmd == "upload":
        sys.exit(upload(e("A_NAME", ""), e("A_PATH", ""), e("A_MISSING", "warn")))
    if cmd == "download":
        sys.exit(download(e("A_NAME", ""), e("A_PATTERN", ""), e("A_PATH", "."),
                          e("A_MERGE", "false") == "true"))
    if cmd == "restore":
        sys.exit(cache_restore(e("A_KEY", ""), e("GITHUB_OUTPUT", "/dev/null")))
    if cmd == "save":
        sys.exit(cache_save(e("A_KEY", ""), e("A_PATH", "")))
    sys.exit(f"unknown command {cmd}")
