"""The HTML report: every section present, numbers matching the results, hostile input escaped,
no engine imported, baselines and machines handled, and a real browser rendering it."""

import shutil
import subprocess
import sys
import tempfile
from html import escape as html_escape
from pathlib import Path

import pytest
from results_factory import HOSTILE_ENGINE, HOSTILE_REASON, make_hostile, make_results

from harness.cli import main
from harness.report import cells_frame, render_report
from harness.report.format import seconds
from harness.report.render import TITLES
from harness.results import write_atomic

SMALL = {"problems": ("normal", "regression", "hierarchical"), "sizes": (10, 1000, 1_000_000)}


@pytest.fixture(scope="module")
def doc():
    return make_results(**SMALL)


@pytest.fixture(scope="module")
def html(doc):
    return render_report(cells_frame([doc]))


def test_every_section_is_present_and_in_the_contents(html):
    for anchor, title in TITLES.items():
        assert f'id="{anchor}"' in html, anchor
        assert f'href="#{anchor}"' in html and title in html


def test_numbers_match_the_results(doc, html):
    cell = next(
        c for c in doc["cells"] if (c["problem"], c["engine"], c["n"]) == ("normal", "compiled", 1000)
    )
    assert seconds(cell["vg_median_s"]) in html  # the grid shows the median as the results hold it
    failed = next(c for c in doc["cells"] if c["status"] == "failed")
    # the correctness matrix shows the worst rho, and the grid the failure's reason (escaped, as all data)
    assert "3.1e-07" in html and html_escape(failed["reason"]) in html
    assert "no CUDA device (jaxlib built without CUDA)" in html  # the reason an engine is unavailable
    compiled = [
        c for c in doc["cells"] if c["engine"] == "compiled" and c["problem"] == "normal" and c["n"] == 10
    ]
    assert "compiled" in html.split('id="summary"')[1].split('id="grid"')[0] and compiled


def test_hostile_strings_are_escaped_and_no_script_reaches_the_page(doc):
    html = render_report(cells_frame([make_hostile(doc)]))
    assert "<script" not in html.lower() and "<img" not in html.lower() and "<iframe" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "onerror=alert(1)" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert HOSTILE_ENGINE not in html and HOSTILE_REASON not in html


def test_a_hostile_run_id_cannot_write_outside_the_reports_folder(tmp_path, doc):
    path = tmp_path / "hostile.json"
    write_atomic(path, make_hostile(doc))
    out = tmp_path / "reports"
    assert main(["report", str(path), "--out", str(out), "--no-baseline"]) == 0
    written = [p for p in tmp_path.rglob("index.html")]
    assert written and all(out in p.parents for p in written)


def test_command_writes_the_report_and_the_latest_pointer(tmp_path, doc, capsys):
    path = tmp_path / "run.json"
    write_atomic(path, doc)
    assert main(["report", str(path), "--out", str(tmp_path / "reports"), "--no-baseline"]) == 0
    report = Path(capsys.readouterr().out.strip())
    assert report.is_file() and report.parent.parent == tmp_path / "reports"
    pointer = (tmp_path / "reports" / "index.html").read_text()
    assert f"{report.parent.name}/index.html" in pointer and "<script" not in pointer


def test_bad_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "adtiers-results/0"}')
    assert main(["report", str(bad), "--out", str(tmp_path)]) == 2
    assert "unknown schema version" in capsys.readouterr().err


def test_comparison_with_a_faster_run_on_the_same_machine(doc):
    faster = make_results(**SMALL, run="new", started="2025-02-01T00:00:00", speed=0.5, seed=1)
    html = render_report(cells_frame([faster]), cells_frame([doc]), "base run")
    comparison = html.split('id="comparison"')[1].split('id="environment"')[0]
    assert "faster" in comparison and "0.5" in comparison


def test_a_baseline_from_another_machine_gives_no_ratios(tmp_path, doc, capsys):
    other = make_results(**SMALL, machine="other-box", run="other")
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    write_atomic(base, other)
    write_atomic(new, doc)
    assert main(["report", str(new), "--baseline", str(base), "--out", str(tmp_path / "r")]) == 0
    assert "timings from different machines are not compared" in capsys.readouterr().err


def test_runs_from_two_machines_are_reported_per_machine(doc):
    other = make_results(**SMALL, machine="other-box", run="other")
    html = render_report(cells_frame([doc, other]))
    assert "Machine ci-box" in html and "Machine other-box" in html


def test_shards_merge_into_one_set_of_cells(doc):
    half = len(doc["cells"]) // 2
    a, b = dict(doc, cells=doc["cells"][:half]), dict(doc, cells=doc["cells"][half:])
    merged = cells_frame([a, b]).frame
    whole = cells_frame([doc]).frame
    key = ["machine", "problem", "engine", "n"]
    assert sorted(map(tuple, merged[key].values.tolist())) == sorted(map(tuple, whole[key].values.tolist()))


def test_probes_and_fits_are_shown(html):
    flexibility = html.split('id="flexibility"')[1].split('id="fits"')[0]
    assert "branch" in flexibility and "ControlFlowError" in flexibility
    fits = html.split('id="fits"')[1].split('id="comparison"')[0]
    assert "12 it, 15 grad" in fits


def test_the_report_imports_no_engine(tmp_path, doc):
    path = tmp_path / "run.json"
    write_atomic(path, doc)
    code = (
        "import sys, argparse; from harness import report_cmd; "
        f"args = argparse.Namespace(results=[{str(path)!r}], baseline=None, no_baseline=True, out={str(tmp_path / 'r')!r}); "
        "assert report_cmd.run(args) == 0; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('engines', 'jax', 'torch', 'numba')]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package: chromium)")
def test_a_real_browser_renders_the_report(tmp_path, html):
    page = tmp_path / "index.html"
    page.write_text(html)
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--window-size=1280,2000",
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
