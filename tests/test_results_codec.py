"""The typed cell record and its one JSON codec: files of the current format load, round-trip, and
every command that reads them still runs on them."""

import json
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.record import CellRecord, Check, Counts, FirstCall, GraphSize, Memory, Timing
from harness.results import CELL_FIELDS, FIELD_KINDS, decode_cell, encode_cell, load, records, to_frame

REFERENCE = sorted((Path(__file__).parent.parent / "results" / "reference").glob("*.json"))


@pytest.fixture(scope="module")
def reference() -> Path:
    assert REFERENCE, "results/reference/ holds a committed results file"
    return REFERENCE[-1]


def test_a_committed_file_decodes_and_encodes_to_the_same_json(reference):
    raw = json.loads(reference.read_text())
    loaded = load(reference)
    for cell, checked in zip(raw["cells"], loaded["cells"], strict=True):
        record = decode_cell(checked)
        assert isinstance(record, CellRecord)
        again = encode_cell(record)
        assert again == cell and list(again) == list(cell)  # same keys, same order, same values
    ok = [r for r in records(loaded) if r.status == "ok"]
    assert ok and all(r.vg.median_s > 0 and r.value.median_s > 0 and r.first.first_call_s > 0 for r in ok)
    assert all(r.machine == loaded["machine"]["id"] for r in records(loaded))


def test_the_frame_pandas_sees_has_the_files_keys(reference):
    frame = to_frame(reference)
    raw = json.loads(reference.read_text())
    assert list(frame.columns)[: len(CELL_FIELDS)] == list(CELL_FIELDS)
    medians = [None if pd.isna(v) else v for v in frame["vg_median_s"]]
    assert medians == [c.get("vg_median_s") for c in raw["cells"]]


def _full_record() -> CellRecord:
    timing = Timing(*(0.5 + i for i in range(9)), 10, 100, [1.0, 2.0], [1, 1], [1.0, 2.0], 0.2)
    return CellRecord(
        problem="normal",
        engine="graph",
        tier="1",
        n=10,
        status="ok",
        threads=1,
        processes=2,
        process_notes=["process 3: over budget"],
        process_workers=["tcp://a", "tcp://b"],
        grad_ratio=2.0,
        info={"tape_equations": 7},
        check=Check(1e-12, 1e-8, "truth", "grad[0]"),
        first=FirstCall(0.1, 0.2, [0.2, 0.15]),
        vg=timing,
        value=Timing(median_s=0.25, samples_s=[0.25]),
        memory=Memory(1024, "tracemalloc"),
        graph=GraphSize(7, "tape_equations"),
        extra={"an_outside_tool's_key": [1, 2]},
    )


def test_every_field_has_one_home_and_the_codec_inverts():
    record = _full_record()
    cell = encode_cell(record)
    assert list(cell) == [*CELL_FIELDS, "an_outside_tool's_key"]
    assert decode_cell(cell) == record
    assert decode_cell(encode_cell(CellRecord())) == CellRecord()
    top = {f.name for f in fields(CellRecord)} - {"extra", "absent"}
    parts = {"check", "first", "vg", "value", "vg_counts", "value_counts", "memory", "graph"}
    keys = (top - parts) | {
        prefix + f.name
        for prefix, cls in [
            ("check_", Check),
            ("", FirstCall),
            ("vg_", Timing),
            ("value_", Timing),
            ("vg_", Counts),
            ("value_", Counts),
            ("mem_", Memory),
            ("graph_", GraphSize),
        ]
        for f in fields(cls)
    }
    assert keys == set(CELL_FIELDS) == set(FIELD_KINDS)


def test_a_counted_cell_keeps_its_spread_with_its_counts():
    cell = {"problem": "normal", "engine": "graph", "n": 10, "status": "ok"}
    cell |= {"vg_instructions": 1e4, "vg_process_instructions": [1e4, 1.1e4], "vg_spread": 0.1}
    record = decode_cell(cell)
    assert record.vg is None and record.vg_counts == Counts(1e4, [1e4, 1.1e4], 0.1)
    assert record.steady("vg") == 1e4
    assert encode_cell(record) == cell


def test_report_and_compare_run_on_a_committed_file(reference, tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["report", str(reference), "--no-baseline", "--out", str(out), "--name", "ref"]) == 0
    page = (out / "ref" / "index.html").read_text()
    assert "manual" in page and 'id="summary"' in page
    assert main(["compare", str(reference), str(reference)]) == 0
    said = capsys.readouterr().out
    ok = sum(c["status"] == "ok" for c in json.loads(reference.read_text())["cells"])
    assert f"{ok} cells compared: 0 faster, 0 slower, {ok} not significant" in said
