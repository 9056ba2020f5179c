"""Report sections that read more than the cells: flexibility probes and fits; shards merging."""

from results_factory import HOSTILE_ENGINE, HOSTILE_REASON, make_hostile, make_results

from harness.report import cells_frame, render_report

SMALL = {"problems": ("normal", "regression"), "sizes": (10, 1000)}


def test_probes_and_fits_are_shown():
    html = render_report(cells_frame([make_results(**SMALL)]))
    flexibility = html.split('id="flexibility"')[1].split('id="fits"')[0]
    assert "branch" in flexibility and "ControlFlowError" in flexibility and ">ok<" in flexibility
    fits = html.split('id="fits"')[1].split('id="comparison"')[0]
    assert "12 it, 15 grad" in fits and "10 ms" in fits  # the first engine's fit_s of 0.01 s


def test_probe_and_fit_strings_are_escaped():
    html = render_report(cells_frame([make_hostile(make_results(**SMALL))]))
    section = html.split('id="flexibility"')[1].split('id="comparison"')[0]
    assert HOSTILE_ENGINE not in section and HOSTILE_REASON not in section and "<b>p</b>" not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section


def test_shards_merge_into_one_set_of_cells():
    doc = make_results(**SMALL)
    half = len(doc["cells"]) // 2
    merged = cells_frame([dict(doc, cells=doc["cells"][:half]), dict(doc, cells=doc["cells"][half:])]).frame
    whole = cells_frame([doc]).frame
    key = ["machine", "problem", "engine", "n"]
    assert sorted(map(tuple, merged[key].values.tolist())) == sorted(map(tuple, whole[key].values.tolist()))
