"""The report's charts rendered for real: headless Chromium runs mermaid 11 (from npm, cached)
on every mermaid block of a real `mlspec report`, including hostile sweep labels and values.
Skips on a laptop without chromium or npm; fails in CI (MLSPEC_REQUIRE_TOOLS=1)."""

from __future__ import annotations

import html
import math
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from conftest import git, mlspec, need, tool
from history_repo import fast_history, lock_text

from mlspec.run.lock import SweepLock

MERMAID = "mermaid@11"


@pytest.fixture(scope="session")
def mermaid_js() -> Path:
    """mermaid.min.js from npm, installed once into a cache kept between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    cache = Path(base) / "mlspec-tests" / "mermaid11"
    js = cache / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    if not js.exists():
        npm = tool("npm")
        r = subprocess.run([npm, "install", "--no-fund", "--no-audit", "--loglevel=error",
                            "--prefix", str(cache), MERMAID], capture_output=True, text=True,
                           timeout=900)
        need(r.returncode == 0 and js.exists(), f"npm install {MERMAID} failed: "
             f"{r.stderr[-400:]}")
    return js


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found else tool("chromium")


def render(blocks: list[str], out: Path, js: Path) -> tuple[str, bytes]:
    """The DOM after mermaid ran on each block, and a screenshot of the page."""
    pres = "\n".join(f'<pre class="mermaid">{html.escape(b)}</pre>' for b in blocks)
    page = out / "page.html"
    page.write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<script src="{js.as_uri()}"></script></head><body style="background:#fff;margin:0">
{pres}
<script>
mermaid.initialize({{startOnLoad: false, securityLevel: "strict"}});
mermaid.run().then(() => {{ document.body.dataset.done = "ok"; }},
                   (e) => {{ document.body.dataset.done = "error: " + e; }});
</script></body></html>
""")
    common = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--user-data-dir={out / 'profile'}", "--allow-file-access-from-files",
              "--virtual-time-budget=30000"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=300)
    shot = out / "report-charts.png"
    subprocess.run([*common, "--window-size=760,2200", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=300)
    assert shot.exists(), dom.stderr[-2000:]
    return dom.stdout, shot.read_bytes()


def png_byte_values(png: bytes) -> int:
    """How many distinct byte values the image data holds: a blank (one-colour) screenshot
    holds a handful under any PNG row filter, a drawn chart hundreds."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        size = int.from_bytes(png[pos:pos + 4], "big")
        if png[pos + 4:pos + 8] == b"IDAT":
            idat += png[pos + 8:pos + 8 + size]
        pos += 12 + size
    return len(set(zlib.decompress(idat)))


HOSTILE_PARAMS = ['"]', "`x`", "a\nb", "%%{init: {}}%%", "#quot;", "]; bar [9"]


@pytest.fixture
def report_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    fast_history(root, [lock_text({"f1_macro": v, "accuracy": v}) for v in
                        (0.82, 0.86, 0.84, 0.9, 0.91)], tags={1: "v0.1.0"},
                 annotated={3: "v0.2.0"})
    git("checkout", "-q", "-b", "pr", cwd=root)
    variants = [{"params": {"max_depth": p}, "metrics": {"f1_macro": v}}
                for p, v in zip(HOSTILE_PARAMS, [0.9, 0.93, math.nan, 1e300, 0.95, -0.1],
                                strict=True)]
    sweep = SweepLock("f1_macro", {"max_depth": "#quot;"}, variants)
    (root / "mlspec.lock").write_text(lock_text({"f1_macro": 0.95, "accuracy": 0.96}, sweep))
    return root


def test_the_report_charts_render_in_chromium(report_repo: Path, tmp_path: Path,
                                              mermaid_js: Path) -> None:
    from markdown_it import MarkdownIt

    r = mlspec("report", "--base", "main", cwd=report_repo)
    assert r.returncode == 0, r.stderr
    fences = [t.content for t in MarkdownIt("commonmark").parse(r.stdout)
              if t.type == "fence" and t.info == "mermaid"]
    assert [f.split("\n")[0] for f in fences] == ["xychart-beta", "xychart-beta", "flowchart TD"]
    out = tmp_path / "render"
    out.mkdir()
    dom, png = render(fences, out, mermaid_js)
    assert 'data-done="ok"' in dom, dom[-3000:]
    assert "Syntax error" not in dom and "error-icon" not in dom.split("<style>")[0]
    svgs = re.findall(r'<svg id="mermaid-[^"]*".*?</svg>', dom, re.S)
    assert len(svgs) == 3
    history, sweep, flow = svgs
    # history: 5 commits (two of them tagged) + this PR = 6 bars, and this PR's line
    assert history.count('class="bar-plot-0"') == 1 and 'class="line-plot-1"' in history
    bars = history.split('class="bar-plot-0"')[1].split("</g>")[0]
    assert len(re.findall(r"<rect ", bars)) == 6
    for text in ("v0.1.0", "v0.2.0", "this PR", "f1_macro"):
        assert f">{text}<" in history
    # sweep: the hostile labels stay labels; NaN and 1e300 are not drawn (4 of 6 bars)
    bars = sweep.split('class="bar-plot-0"')[1].split("</g>")[0]
    assert len(re.findall(r"<rect ", bars)) == 4
    for text in ("max_depth", "__", "_x_", "_quot_ best", "__ bar _9"):
        assert f">{text}<" in sweep
    assert ">a_b<" not in sweep and "_init" not in sweep  # NaN, 1e300: not drawn
    assert "flowchart" in flow or "evaluate" in flow
    assert png_byte_values(png) > 100
    shutil.copy(out / "report-charts.png", tmp_path / "report-charts.png")
