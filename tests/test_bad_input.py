"""Bad files and bad arguments: exit 2 and one line naming what was wrong and what is accepted.

Every case goes through ``harness.cli.main`` as a user would meet it (the closed pipe through a
real process). Files are made here, in ``tmp_path``; the few benchmark runs are the smallest
there are (one engine, one problem, n = 10, one process).
"""

import errno
import json
import os
import subprocess
import sys

import pytest
from results_factory import make_results

from harness import results
from harness.cli import BROKEN_PIPE, main

SMALL = {"engines": ("manual", "tape"), "problems": ("normal",), "sizes": (10, 1000)}
TINY_BENCH = [
    "bench",
    "--engines",
    "manual",
    "--problems",
    "normal",
    "--sizes",
    "10",
    "--quick",
    "--no-probes",
    "--fit-n",
    "0",
    "--no-floor",
    "--processes",
    "1",
]


def _write(path, doc):
    results.write_atomic(path, doc)
    return str(path)


def _report(path, tmp_path):
    return main(["report", str(path), "--no-baseline", "--out", str(tmp_path / "reports")])


@pytest.fixture
def good(tmp_path):
    return _write(tmp_path / "good.json", make_results(**SMALL))


# ---- 1. files ------------------------------------------------------------------------------


def _text_with(section, value):
    doc = make_results(**SMALL)
    doc[section] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    "content,message",
    [
        (_text_with("machine", None), "the 'machine' section must be an object, found null"),
        (_text_with("run", None), "the 'run' section must be an object, found null"),
        (_text_with("machine", "x"), "the 'machine' section must be an object, found a string"),
        (_text_with("run", "r1"), "the 'run' section must be an object, found a string"),
        (_text_with("settings", [1]), "the 'settings' section must be an object, found a list"),
        (_text_with("fits", 3), "the 'fits' section must be a list or null, found a number"),
        (_text_with("cells", {}), "'cells' must be a list of records, found an object"),
        (b"\xff\xfe{}", "not UTF-8 text (byte 0xff at offset 0)"),
        ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
        ("[1, 2]", "expected a JSON object at the top, found list"),
        (_text_with("cells", [1, "x"]), "cell 0 is not a record (an object), found a number"),
        (
            _text_with("cells", [{"problem": "normal", "engine": "manual", "n": 1e99, "status": "ok"}]),
            "n must be",
        ),
        (
            _text_with("cells", [{"problem": 3, "engine": "manual", "n": 10, "status": "ok"}]),
            "non-empty string",
        ),
        ('{"schema": "adtiers-results/1", "n": 1' + "0" * 5000 + "}", "not a usable JSON document"),
    ],
)
@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_file_that_cannot_be_used_exits_2_naming_it(tmp_path, good, capsys, content, message, command):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    code = _report(bad, tmp_path) if command == "report" else main(["compare", good, str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and str(bad) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "raw,shown",
    [("1e400", "vg_median_s = inf"), ("-1e-05", "vg_median_s = -1e-05"), ("NaN", "vg_median_s = nan")],
)
def test_one_bad_timing_marks_its_cell_invalid_and_the_rest_renders(tmp_path, good, capsys, raw, shown):
    doc = make_results(**SMALL)
    doc["cells"][0]["vg_median_s"] = 123.0  # a marker to replace in the text: JSON writers refuse inf
    path = tmp_path / "one-bad.json"
    path.write_text(json.dumps(doc).replace("123.0", raw))

    loaded = results.load(path)
    cell = loaded["cells"][0]
    assert cell["status"] == "error" and cell["vg_median_s"] is None
    assert cell["reason"].startswith(f"invalid in file: {shown}") and "the cell was 'ok'" in cell["reason"]
    assert all(c["status"] == "ok" for c in loaded["cells"][1:])

    if raw == "1e400":  # the case that crashed matplotlib's log scale: the report renders
        assert _report(path, tmp_path) == 0
        html = (tmp_path / "reports" / "2025-01-02T03-04-05" / "index.html").read_text()
        assert "invalid in file" in html
    assert main(["compare", good, str(path)]) == 1  # a broken cell in NEW fails the gate, as an error does
    assert "ERROR normal / manual / n=10: invalid in file" in capsys.readouterr().out


def test_negative_samples_and_strings_in_a_list_are_invalid_too(tmp_path):
    doc = make_results(**SMALL)
    doc["cells"][1]["vg_samples_s"][3] = -1.0
    doc["cells"][2]["vg_process_medians_s"] = ["fast"]
    doc["cells"][3]["mem_peak_bytes"] = True
    loaded = results.load(_write(tmp_path / "lists.json", doc))
    assert [c["status"] for c in loaded["cells"][1:4]] == ["error"] * 3
    assert "vg_samples_s" in loaded["cells"][1]["reason"] and "mem_peak_bytes" in loaded["cells"][3]["reason"]


# ---- 2. sizes and numbers -------------------------------------------------------------------


@pytest.mark.parametrize("sizes", ["nan", "inf", "1e400", "-3", "0", "2.5", "abc", "1e99", "10,,100", "10,"])
def test_bad_sizes_exit_2_naming_the_accepted_form(capsys, sizes):
    assert main(["check", "--engines", "manual", "--problems", "normal", "--sizes", sizes]) == 2
    err = capsys.readouterr().err
    assert "sizes are whole numbers from 1 to 1e8" in err or "empty size" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--sizes", "nan"],
        ["bench", "--sizes", "1e99"],
        ["show", "--engine", "manual", "--problem", "normal", "--n", "inf"],
    ],
)
def test_every_command_that_takes_sizes_refuses_bad_ones(tmp_path, capsys, argv):
    assert main([*argv, *(["--out", str(tmp_path / "r.json")] if argv[0] == "bench" else [])]) == 2
    assert "sizes are whole numbers from 1 to 1e8" in capsys.readouterr().err


def test_stability_passes_the_sizes_to_bench_which_refuses_them(tmp_path, capsys):
    assert main(["stability", "--engines", "manual", "--sizes", "-3", "--out-dir", str(tmp_path)]) == 2
    assert "sizes are whole numbers from 1 to 1e8" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["bench", "--fit-n", "-1"], "--fit-n -1: expected a whole number from 0 to 1e8 (0 for no fits)"),
        (["bench", "--fit-n", "1000000000"], "--fit-n 1000000000: expected a whole number from 0 to 1e8"),
        (["fit", "normal", "--engine", "manual", "--n", "0"], "--n 0: expected a whole number from 1 to 1e8"),
    ],
)
def test_numeric_options_out_of_range_exit_2(tmp_path, capsys, argv, message):
    assert main([*argv, *(["--out", str(tmp_path / "r.json")] if argv[0] == "bench" else [])]) == 2
    assert message in capsys.readouterr().err


# ---- 3. outputs -----------------------------------------------------------------------------


def test_bench_out_must_be_a_writable_file_path(tmp_path, capsys):
    assert main([*TINY_BENCH, "--out", str(tmp_path)]) == 2
    assert "is a directory; --out names the results file to write" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main([*TINY_BENCH, "--out", str(afile / "sub" / "r.json")]) == 2
    assert f"{afile} is not a directory" in capsys.readouterr().err


def test_bench_on_a_full_disk_stops_keeps_what_was_written_and_says_so(tmp_path, monkeypatch, capsys):
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 2:  # the run's header and its first cell fit, the second cell does not
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(results.os, "fsync", fsync)
    out = tmp_path / "r.json"
    two_sizes = [("10,100" if arg == "10" else arg) for arg in TINY_BENCH]
    assert main([*two_sizes, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "the run stopped" in err
    assert f"{out} keeps the 1 cell(s) written before" in err
    kept = results.load(out)  # the last version written whole
    assert kept["run"]["status"] == "running" and [c["n"] for c in kept["cells"]] == [10]
    assert not list(tmp_path.glob(".*.tmp"))


def test_report_out_is_a_directory(tmp_path, good, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["report", good, "--no-baseline", "--out", str(afile)]) == 2
    assert "is a file; --out names the reports directory" in capsys.readouterr().err
    assert main(["report", good, "--no-baseline", "--out", str(afile / "deeper")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_report_write_failure_exits_2(tmp_path, good, monkeypatch, capsys):
    from harness.report import output

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output.os, "replace", full)
    assert _report(good, tmp_path) == 2
    assert "cannot write the report" in capsys.readouterr().err


def test_stability_out_dir_and_write_failure(tmp_path, good, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["stability", "--engines", "manual", "--out-dir", str(afile)]) == 2
    assert "--out-dir" in capsys.readouterr().err

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    other = _write(tmp_path / "other.json", make_results(seed=1, **SMALL))
    monkeypatch.setattr(results.os, "fsync", full)
    assert main(["stability", good, other]) == 2
    assert "cannot write the stability section (No space left on device)" in capsys.readouterr().err


# ---- 4. a closed pipe -----------------------------------------------------------------------


def test_a_closed_pipe_exits_quietly():
    code = "import sys; from harness.cli import main; sys.exit(main(['list']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line is written (`| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err


# ---- 5. fit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["fit", "normal,exponential"], "fit takes exactly one problem name"),
        (["fit", ""], "fit takes exactly one problem name"),
        (["fit", "normal", "--engine", "manual,tape"], "fit takes exactly one engine name"),
        (["fit", "normal", "--engine", ""], "fit takes exactly one engine name"),
    ],
)
def test_fit_takes_one_problem_and_one_engine(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


# ---- 6. name lists --------------------------------------------------------------------------


def test_a_name_given_twice_is_used_once_with_a_warning(capsys):
    assert (
        main(["check", "--engines", "manual,manual", "--problems", "normal,normal", "--sizes", "10,1e1"]) == 0
    )
    captured = capsys.readouterr()
    assert "'manual' is given more than once in 'manual,manual'; using it once" in captured.err
    assert (
        "'normal' is given more than once" in captured.err
        and "size '1e1' is given more than once" in captured.err
    )
    assert "1 passed, 0 failed" in captured.out


@pytest.mark.parametrize(
    "option,value",
    [("--engines", "manual,,tape"), ("--engines", ""), ("--problems", "normal,"), ("--engines", " ")],
)
def test_an_empty_name_exits_2(capsys, option, value):
    assert main(["check", option, value]) == 2
    assert "empty name in" in capsys.readouterr().err


# ---- 7. compare -----------------------------------------------------------------------------


def test_compare_fails_when_nothing_is_shared(tmp_path, good, capsys):
    other = _write(
        tmp_path / "other.json", make_results(engines=("graph",), problems=("normal",), sizes=(10,))
    )
    assert main(["compare", good, other]) == 1
    assert "NEW shares no measured cell with BASE" in capsys.readouterr().out


def test_compare_always_reports_missing_cells_and_fails_them_on_request(tmp_path, good, capsys):
    doc = make_results(seed=1, **SMALL)
    doc["cells"] = doc["cells"][1:]
    new = _write(tmp_path / "new.json", doc)
    assert main(["compare", good, new]) == 0
    out = capsys.readouterr().out
    assert (
        "MISSING normal / manual / 10: measured in BASE, not in NEW" in out
        and "1 cells of BASE missing" in out
    )
    assert main(["compare", good, new, "--fail-on-missing"]) == 1
    assert "--fail-on-missing: 1 cell(s) of BASE missing from NEW" in capsys.readouterr().out


@pytest.mark.parametrize("status", ["running", "interrupted"])
def test_compare_reports_an_unfinished_new_run_and_fails_it_on_request(tmp_path, good, capsys, status):
    doc = make_results(seed=1, **SMALL)
    doc["run"]["status"] = status
    new = _write(tmp_path / "new.json", doc)
    assert main(["compare", good, new]) == 0
    assert f"NEW run 2025-01-02T03-04-05 is {status}, not complete" in capsys.readouterr().out
    assert main(["compare", good, new, "--fail-on-missing"]) == 1
    assert f"NEW's run is {status}" in capsys.readouterr().out
