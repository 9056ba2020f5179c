"""A real browser renders the report: headless Chromium opens it from file:// and takes a screenshot.

Skipped where Chromium is absent (Debian: ``apt-get install chromium``). The browser runs with no
network, background services or GPU, in a fresh profile, so it can only show what the file holds.
"""

import shutil
import struct
import subprocess

import pytest
from results_factory import make_hostile, make_results

from harness.report import cells_frame, render_report
from harness.report.output import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium(page, profile, *args, timeout=120):
    """Open ``page`` in headless Chromium with ``args``; returns the finished process."""
    argv = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_chromium_renders_the_report(tmp_path):
    doc = make_hostile(make_results(problems=("normal", "regression"), sizes=(10, 1000, 100_000)))
    page = write_report(tmp_path / "reports", "browser", render_report(cells_frame([doc])))
    png = tmp_path / "report.png"
    proc = chromium(page, tmp_path / "profile", "--window-size=1280,2400", f"--screenshot={png}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2400)
    # a page of tables and figures compresses far worse than a blank one (a blank page is ~14 KB)
    assert len(data) > 100_000

    # the DOM the browser built: the hostile strings are text, no element came from the data
    dom = chromium(page, tmp_path / "profile-dom", "--dump-dom").stdout
    # every figure the report wrote was built as an element (one per section that draws; at least
    # the summary's two), and none was added or lost on the way
    figures = page.read_text().count("<svg")
    assert figures >= 2
    assert "<h2>Summary</h2>" in dom and dom.count("<svg") == figures
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom

    # reports/index.html leads to the latest report (a meta refresh; headless needs virtual time for it)
    latest = page.parent.parent / "index.html"
    followed = chromium(
        latest, tmp_path / "profile-latest", "--virtual-time-budget=3000", "--dump-dom"
    ).stdout
    assert "<h2>Summary</h2>" in followed
