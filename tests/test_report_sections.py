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


def test_an_engines_own_optimiser_gets_a_row_beside_ours():
    """A fit record with ``engine_fit`` (TMB's nlminb in R) adds a row "<engine>: own optimiser" whose
    time is the same prepare plus the engine's own optimiser time, with its gradient evaluations."""
    doc = make_results(**SMALL)
    record = next(r for r in doc["fits"] if r["engine"] == "tape" and r["problem"] == "normal")
    record["engine_fit"] = {
        "status": "ok",
        "method": "nlminb inside R",
        "seconds": 0.004,
        "converged": True,
        "message": "relative convergence (4)",
        "gradient_evaluations": 9,
        "loglik": -1234.5,
        "loglik_minus_ours": 1e-9,
    }
    fits = render_report(cells_frame([doc])).split('id="fits"')[1].split('id="comparison"')[0]
    row = fits.split("tape: own optimiser")[1].split("</tr>")[0]
    assert "5 ms (9 grad)" in row  # prepare 1 ms + 4 ms by the engine's clock
    assert "nlminb inside R" in row and row.count("–") == 1  # regression has no own fit
    assert fits.count(": own optimiser") == 1


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


def _with_cpp_engines(doc):
    """``doc`` with stan / stan-varmat / cppad cells (copies of graph-scalar, graph and tape cells,
    their medians scaled), declared C++ in the engines section as the native engines declare it."""
    import copy

    doc = copy.deepcopy(doc)
    made = {"stan": ("graph-scalar", 0.1), "stan-varmat": ("graph", 0.05), "cppad": ("tape", 0.5)}
    for name, (source, factor) in made.items():
        for cell in [c for c in doc["cells"] if c["engine"] == source]:
            copied = dict(cell, engine=name)
            for key in [k for k in copied if k.startswith("vg_") and k.endswith("_s")]:
                copied[key] = copied[key] * factor if isinstance(copied[key], float) else copied[key]
            doc["cells"].append(copied)
        doc.setdefault("engines", {})[name] = {"language": "C++", "tier": "0" if "stan" in name else "1"}
    return doc


def test_the_tier_table_puts_python_and_cpp_side_by_side():
    plain = render_report(cells_frame([make_results(**SMALL)]))
    assert ">language<" not in plain.split('id="tiers"')[1]  # one language: no column
    html = render_report(cells_frame([_with_cpp_engines(make_results(**SMALL))]))
    tiers = html.split('id="tiers"')[1].split("<h3>")[0]
    assert ">language<" in tiers and ">C++<" in tiers and ">Python<" in tiers
    rows = [r for r in tiers.split("<tr>") if ">Tier 0<" in r]
    assert len(rows) == 2 and any("stan, stan-varmat" in r for r in rows)
    assert any("graph" in r and "stan" not in r for r in rows)


def test_aos_against_soa_gives_each_library_its_ratio():
    html = render_report(cells_frame([_with_cpp_engines(make_results(**SMALL))]))
    section = html.split('id="aos-soa"')[1].split('id="grad-ratio"')[0]
    assert "<svg" in section and "graph-scalar / graph" in section and "stan / stan-varmat" in section
    assert "Not timed in this run: stan-lpdf" in section
    doc = make_results(**SMALL)
    median = {
        (c["engine"], c["n"]): c.get("vg_median_s") for c in doc["cells"] if c["problem"] == "regression"
    }
    from harness import units as fmt

    expected = fmt.ratio(median[("graph-scalar", 1000)] / median[("graph", 1000)])
    stan = fmt.ratio(median[("graph-scalar", 1000)] * 0.1 / (median[("graph", 1000)] * 0.05))
    row = [r for r in section.split("<tr>") if f"<th>{fmt.size_n(1000)}</th>" in r][0]
    assert expected in row and stan in row, row


def test_the_memory_table_says_what_each_method_counts():
    """Each method in the table is described once below it, and rss is said to compare with none."""
    doc = make_results(**SMALL)
    for cell in doc["cells"]:
        if cell["engine"] == "torch":
            cell["mem_method"] = "torch-profiler"
    memory = render_report(cells_frame([doc])).split('id="memory"')[1].split("</section>")[0]
    assert "<b>tracemalloc</b>: Python&#x27;s allocation tracer" in memory
    assert "<b>torch-profiler</b>: PyTorch&#x27;s profiler" in memory
    assert "<b>rss</b> is a lower bound" in memory and "<b>xla</b>:" not in memory


def test_the_talks_verdicts_stand_beside_the_probes():
    """A claim the outcome contradicts is marked DIFFERS and counted; one it confirms, agrees; a
    library whose engines did not run shows no row."""
    doc = make_results(**SMALL)
    doc["probes"] += [
        {"probe": "exception", "engine": "jax", "outcome": "error", "detail": "ConcretizationTypeError"},
        {"probe": "while-loop", "engine": "jax", "outcome": "correct", "detail": ""},
        {"probe": "subset-assign", "engine": "jax", "outcome": "correct", "detail": ""},
    ]
    section = render_report(cells_frame([doc])).split('id="flexibility"')[1].split('id="fits"')[0]
    verdicts = section.split("The talk's verdicts against the probes")[1]
    assert "1 outcome(s) differ" in verdicts
    row = lambda probe: verdicts.split(f"<td>{probe}</td>")[1].split("</tr>")[0]  # noqa: E731
    assert "jax: error (agrees)" in row("exception") and "jax: correct (DIFFERS)" in row("while-loop")
    assert "jax: correct (agrees)" in row("subset-assign")
    assert "TensorFlow" not in verdicts and "Stan" not in verdicts
    assert "<b>subset-assign</b>: the probe writes an engine value into a NumPy array" in verdicts


def test_the_loop_problem_shows_first_call_against_t_with_its_slope():
    """hmm's first call per T: one that grows in proportion to T reads "unrolled", a flat one
    "built once"; the section is absent from a run without hmm."""
    import copy

    doc = make_results(**SMALL)
    assert "first call against T" not in render_report(cells_frame([doc]))
    for cell in [c for c in doc["cells"] if c["problem"] == "normal"]:
        extra = copy.deepcopy(cell)
        extra["problem"] = "hmm"
        extra["first_call_s"] = 2e-3 * cell["n"] if cell["engine"] == "tape" else 0.5
        doc["cells"].append(extra)
    first = render_report(cells_frame([doc])).split('id="first-call"')[1].split("</section>")[0]
    section = first.split("hmm: first call against T")[1]
    tape = section.split("<th>tape</th>")[1].split("</tr>")[0]
    assert "1.00: grows with T (unrolled)" in tape and "2 s" in tape  # 2e-3 x 1000
    assert "0.00: flat (one loop, built once)" in section.split("<th>jax</th>")[1].split("</tr>")[0]
