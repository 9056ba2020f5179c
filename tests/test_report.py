"""The HTML report rendered from a small run: sections, numbers, escaping, files, the command."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from results_factory import HOSTILE_ENGINE, HOSTILE_REASON, make_hostile, make_results

from harness import units as fmt
from harness.cli import main
from harness.report import cells_frame, render_report
from harness.report.data import scaling_slope
from harness.report.output import run_dir_name
from harness.report.sections import SECTIONS
from harness.results import write_atomic

ENGINES = ("manual", "graph", "graph-scalar", "tape", "jax", "jax-cuda", "torch")
SMALL = {"engines": ENGINES, "problems": ("normal", "regression"), "sizes": (10, 1000, 100_000, 1_000_000)}


@pytest.fixture(scope="module")
def doc():
    return make_results(**SMALL)


@pytest.fixture(scope="module")
def report(doc):
    return render_report(cells_frame([doc]))


def _cell(doc, problem, engine, n):
    return next(c for c in doc["cells"] if (c["problem"], c["engine"], c["n"]) == (problem, engine, n))


def _text(html):
    """The visible text of a fragment: tags dropped, entities kept as written."""
    return re.sub(r"<[^>]+>", " ", html)


TITLES = {s.key: s.title for s in SECTIONS}


def test_every_section_is_present_in_order_with_its_guide(report):
    positions = [report.index(f'<section id="{anchor}"><h2>{title}</h2>') for anchor, title in TITLES.items()]
    assert positions == sorted(positions)
    assert report.count('<p class="how">') == len(TITLES)
    assert all(f'<a href="#{anchor}">' in report for anchor in TITLES)
    assert report.count("<svg") == 3  # one scaling figure per problem, and the AoS / SoA figure


def test_the_comparison_guide_names_the_tests_compare_uses():
    guide = next(s.guide for s in SECTIONS if s.key == "comparison")
    assert "Welch's t" in guide and "process medians" in guide  # cells of several processes
    assert "Mann-Whitney" in guide and "rounds" in guide  # the fallback for one process per cell


def test_summary_names_the_fastest_ad_engine_and_its_margin(doc, report):
    summary = _text(report[report.index('id="summary"') : report.index('id="grid"')])
    for problem in ("normal", "regression"):
        for n in (10, 1_000_000):
            timed = [
                c
                for c in doc["cells"]
                if c["problem"] == problem and c["n"] == n and c["status"] == "ok" and c["tier"] != "baseline"
            ]
            best, second = sorted(timed, key=lambda c: c["vg_median_s"])[:2]
            margin = fmt.ratio(second["vg_median_s"] / best["vg_median_s"])
            expected = (
                f"at n = {fmt.size_n(n)} {best['engine']} ({fmt.seconds(best['vg_median_s'])}), "
                f"{margin} ahead of {second['engine']}"
            )
            assert expected in summary


def test_grid_shows_times_relative_to_the_fastest_and_greys_the_rest(doc, report):
    grid = report[report.index('id="grid"') : report.index('id="scaling"')]
    graph, fastest = _cell(doc, "normal", "graph", 1000), _cell(doc, "normal", "jax", 1000)
    rel = graph["vg_median_s"] / min(
        c["vg_median_s"]
        for c in doc["cells"]
        if c["problem"] == "normal" and c["n"] == 1000 and "vg_median_s" in c
    )
    assert fastest["vg_median_s"] < graph["vg_median_s"]
    assert f"{fmt.seconds(graph['vg_median_s'])} {fmt.ratio(rel)}" in grid
    assert 'class="na" title="no CUDA device (jaxlib built without CUDA)">unavailable [' in grid
    assert "over budget: one call took 0.31 s &gt; budget 0.25 s" in grid
    assert "skipped: a smaller size was over budget" in grid


def test_cost_memory_and_correctness_tables_carry_the_cell_values(doc, report):
    cell = _cell(doc, "regression", "tape", 1000)
    grad = report[report.index('id="grad-ratio"') : report.index('id="first-call"')]
    assert f">{fmt.ratio(cell['grad_ratio'])}<" in grad
    first = report[report.index('id="first-call"') : report.index('id="memory"')]
    assert fmt.seconds(_cell(doc, "regression", "tape", 10)["first_call_s"]) in first
    memory = report[report.index('id="memory"') : report.index('id="correctness"')]
    big = _cell(doc, "normal", "graph", 100_000)
    assert fmt.size_bytes(big["mem_peak_bytes"]) in memory
    assert fmt.size_bytes(big["mem_peak_bytes"] / 100_000) in memory
    correctness = report[report.index('id="correctness"') : report.index('id="tiers"')]
    assert (
        f'<td class="good" title="worst at hard value; tolerance 1.0e-09">{fmt.scientific(cell["check_rho"])}<'
        in (correctness)
    )


def test_tier_table_replaces_speed_with_measured_times(doc, report):
    tiers = _text(report[report.index('id="tiers"') : report.index('id="comparison"')])
    tape, manual = _cell(doc, "normal", "tape", 1_000_000), _cell(doc, "normal", "manual", 1_000_000)
    jax = _cell(doc, "normal", "jax", 1_000_000)
    best = min((tape, jax), key=lambda c: c["vg_median_s"])
    ratio = fmt.ratio(best["vg_median_s"] / manual["vg_median_s"])
    assert f"normal: {fmt.seconds(best['vg_median_s'])} {best['engine']}, {ratio}" in tiers
    assert "Tape-based tracing" in tiers and "Production-grade" not in tiers.split("replaced by")[1]
    assert "PyTorch eager autograd: a graph per call" in tiers


def test_slope_is_the_exponent_of_a_power_law():
    n = [10, 100, 1000, 10_000, 100_000, 1_000_000]
    assert scaling_slope(n, [3e-9 * x**1.5 for x in n]) == pytest.approx(1.5)
    # the overhead-dominated lower half is left out of the fit
    assert scaling_slope(n, [1e-3 if x < 10_000 else 1e-9 * x for x in n]) == pytest.approx(1.0)
    assert scaling_slope([10], [1e-6]) is None


def test_hostile_strings_are_escaped_and_no_script_reaches_the_page(doc):
    html = render_report(cells_frame([make_hostile(doc)]))
    assert "<script" not in html.lower() and "<img" not in html.lower() and "<iframe" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;iframe src=javascript:alert(1)&gt;" in html
    assert "&lt;/table&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert HOSTILE_ENGINE not in html and HOSTILE_REASON not in html


def test_engine_names_are_drawn_literally_in_figures(doc):
    named = json.loads(json.dumps(doc))
    for cell in named["cells"]:
        cell["engine"] = cell["engine"].replace("graph-scalar", r"$\frac{1}{0}$")
    html = render_report(cells_frame([named]))
    assert re.search(r">\$\\frac\{1\}\{0\}\$ \(slope [0-9.]+\)</text>", html)  # drawn as text, not math


def test_an_unfinished_run_is_said_so(doc):
    running = dict(doc, run=dict(doc["run"], status="interrupted"))
    assert "is interrupted: cells may be missing" in render_report(cells_frame([running]))


def test_formatting_is_human():
    assert [fmt.seconds(x) for x in (2.5, 0.0123, 4.56e-6, 7e-9, None, "x")] == [
        "2.5 s",
        "12.3 ms",
        "4.56 µs",
        "7 ns",
        "–",
        "–",
    ]
    assert [fmt.size_bytes(x) for x in (512, 2048, 3 * 2**20, float("nan"))] == [
        "512 B",
        "2 KiB",
        "3 MiB",
        "–",
    ]
    assert fmt.ratio(404000.4) == "404,000×" and fmt.size_n(1_000_000) == "1e6" and fmt.size_n(1000) == "1000"


def test_run_ids_cannot_leave_the_reports_directory():
    assert run_dir_name("../../etc/passwd") == "_.._etc_passwd"
    assert "/" not in run_dir_name("a/b") and run_dir_name("...") == "run"


def test_bad_cells_are_reported_not_lost(doc):
    broken = json.loads(json.dumps(doc))
    broken["cells"][0]["n"] = "many"
    broken["cells"][1]["vg_median_s"] = "fast"
    cells = cells_frame([broken])
    assert any("without a valid size" in note for note in cells.notes)
    assert any("carry no usable time" in note for note in cells.notes)
    assert "without a valid size n were left out" in render_report(cells)


def test_several_machines_are_reported_apart(doc):
    other = make_results(machine="gpu-box", run="r2", speed=0.5, **SMALL)
    html = render_report(cells_frame([doc, other]))
    summary = html[html.index('id="summary"') : html.index('id="grid"')]
    assert "<h3>Machine ci-box</h3>" in summary and "<h3>Machine gpu-box</h3>" in summary
    assert html.count("<svg") == 6  # per machine: a scaling figure per problem and the AoS / SoA figure


def test_report_imports_no_engine(tmp_path, doc):
    path = tmp_path / "run.json"
    write_atomic(path, doc)
    code = (
        "import sys; from harness.report import cells_frame, render_report; from harness.results import load;"
        f"render_report(cells_frame([load({str(path)!r})]));"
        "import harness.commands.report, harness.stats.comparison;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('engines', 'jax', 'torch', 'numba')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_command_writes_the_report_and_the_latest_pointer(tmp_path, monkeypatch, capsys, doc):
    monkeypatch.chdir(tmp_path)
    write_atomic(tmp_path / "results" / "old.json", make_results(run="old", **SMALL))
    write_atomic(tmp_path / "results" / "reference" / "ref.json", make_results(run="ref", speed=2.0, **SMALL))
    write_atomic(tmp_path / "results" / "new.json", doc)
    assert main(["report"]) == 0
    path = capsys.readouterr().out.strip()
    assert path == f"reports/{run_dir_name(doc['run']['id'])}/index.html"
    html = (tmp_path / path).read_text()
    assert "Baseline: results/reference/ref.json (run ref, machine ci-box)" in html
    assert "faster</td>" in html  # the reference ran at half the speed
    pointer = (tmp_path / "reports" / "index.html").read_text()
    assert f'href="{run_dir_name(doc["run"]["id"])}/index.html"' in pointer and "<script" not in pointer


def test_baseline_from_another_machine_is_refused_with_a_warning(tmp_path, capsys, doc):
    write_atomic(tmp_path / "new.json", doc)
    write_atomic(tmp_path / "other.json", make_results(machine="laptop", run="lap", **SMALL))
    argv = ["report", str(tmp_path / "new.json"), "--baseline", str(tmp_path / "other.json")]
    assert main([*argv, "--out", str(tmp_path / "reports"), "--name", "reference"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / "reports" / "reference" / "index.html")
    assert "timings from different machines are not compared" in captured.err
    html = Path(captured.out.strip()).read_text()
    comparison = html[html.index('id="comparison"') : html.index('id="environment"')]
    assert '<p class="warning">the baseline ran on laptop, this run on ci-box' in comparison
    assert "0 cells timed in both runs" in comparison


def test_bad_input_exits_2_naming_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 2
    assert "no results files in results/" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["report", "bad.json"]) == 2
    assert "bad.json: not valid JSON" in capsys.readouterr().err


def test_markdown_prints_one_problems_medians_and_writes_no_page(tmp_path, monkeypatch, capsys, doc):
    monkeypatch.chdir(tmp_path)
    write_atomic(tmp_path / "run.json", doc)
    assert main(["report", "--markdown", "run.json", "--problem", "regression"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| engine | tier | n = 10 | n = 1000 | n = 1e5 | n = 1e6 |"
    rows = {line.split(" | ")[0].strip("| `"): line for line in lines[2:]}
    assert list(rows) == [
        "manual",
        "graph",
        "graph-scalar",
        "tape",
        "jax",
        "torch",
    ]  # by tier; jax-cuda never timed
    manual = _cell(doc, "regression", "manual", 10)["vg_median_s"]
    assert rows["manual"].startswith(f"| `manual` | baseline | {fmt.seconds(manual)} |")
    assert rows["graph-scalar"].endswith("| over budget | skipped |")
    assert not (tmp_path / "reports").exists()


def test_markdown_keeps_machines_apart_and_refuses_an_absent_problem(tmp_path, capsys, doc):
    write_atomic(tmp_path / "a.json", doc)
    write_atomic(tmp_path / "b.json", make_results(machine="gpu-box", run="r2", speed=0.5, **SMALL))
    assert main(["report", "--markdown", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "Machine `ci-box`:" in out and "Machine `gpu-box`:" in out and out.count("| engine | tier |") == 2
    assert main(["report", "--markdown", str(tmp_path / "a.json"), "--problem", "gp"]) == 2
    assert "no timed cell of problem 'gp'" in capsys.readouterr().err
