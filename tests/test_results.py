"""Results files: atomic writes, validation with clear messages, loading into pandas."""

import json

import pytest

from harness.results import SCHEMA, ResultsError, load, to_frame, write_atomic


def _doc(cells):
    return {
        "schema": SCHEMA,
        "run": {"id": "r1", "status": "complete"},
        "machine": {"id": "m1"},
        "settings": {},
        "engines": {},
        "cells": cells,
    }


def test_round_trip_into_pandas(tmp_path):
    path = tmp_path / "run.json"
    cells = [
        {
            "problem": "normal",
            "engine": "graph",
            "n": 10,
            "status": "ok",
            "vg_median_s": 1e-5,
            "check_rho": float("nan"),
        },
        {"problem": "normal", "engine": "manual", "n": 10, "status": "failed", "reason": "rho 1e-3"},
    ]
    write_atomic(path, _doc(cells))
    frame = to_frame(path)
    assert list(frame["engine"]) == ["graph", "manual"]
    assert frame.loc[0, "vg_median_s"] == 1e-5
    assert (frame["machine"] == "m1").all() and (frame["run"] == "r1").all()
    assert json.loads(path.read_text())["cells"][0]["check_rho"] is None  # NaN stored as null
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "content,message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected a JSON object"),
        (json.dumps({"schema": "adtiers-results/99"}), "unknown schema version 'adtiers-results/99'"),
        (
            json.dumps({"schema": SCHEMA, "run": {}, "machine": {}, "settings": {}}),
            "missing the 'cells' section",
        ),
        (
            json.dumps(_doc([{"problem": "normal", "engine": "x", "n": 1, "status": "great"}])),
            "unknown status 'great'",
        ),
        (json.dumps(_doc([{"problem": "normal"}])), "cell 0 lacks engine, n, status"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ResultsError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ResultsError, match="cannot read"):
        load(tmp_path / "nope.json")
