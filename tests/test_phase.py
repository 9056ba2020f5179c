"""The phase probe: its timeline has a row per turn for the probe and every workload, and its
table names each workload (no speed is asserted: the machine's phases are what it measures)."""

from harness.measure import phase


def test_the_timeline_pairs_the_probe_with_every_workload_and_the_table_names_them():
    calls = {"sum": lambda: sum(range(100)), "numpy exp 2e5": phase._memory_pass}
    rows = phase.timeline(calls, seconds=0.3)
    assert set(rows) == {"probe", "sum", "numpy exp 2e5"}
    turns = len(rows["probe"])
    assert turns >= 2 and all(len(v) == turns and (v > 0).all() for v in rows.values())
    text = phase.describe(rows)
    assert f"{turns} turns" in text and "sum" in text and "numpy exp 2e5" in text
    assert text.splitlines()[-1].startswith("probe: ")
