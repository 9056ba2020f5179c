"""The group's top-up: cells short of fast rounds get more, in turn, until they have enough."""

from harness.measure import top_up as top_up_module
from harness.measure.top_up import TARGET_FAST, Held, top_up
from harness.measure.worker import WorkerFailure
from problems import PROBLEMS


class _Recorder:
    def __init__(self, ref=None):
        self.phase_ref = ref  # the run's fastest reading so far

    def see_probes(self, fields):
        readings = [*fields.get("vg_probes_s", ()), *fields.get("value_probes_s", ())]
        if readings:
            self.phase_ref = min([r for r in [self.phase_ref] if r is not None] + readings)


class _Worker:
    """Answers ``rounds`` with one round per callable whose probe reading is ``phases[i]``."""

    process = object()

    def __init__(self, phases, fail=False):
        self.phases, self.fail, self.asked = list(phases), fail, []

    def ask(self, request, timeout, doing):
        self.asked.append(request)
        if self.fail:
            raise WorkerFailure("died", "worker died")
        if request[0] == "release":
            return None
        reading = self.phases.pop(0) if self.phases else 1.0
        return {name: {"samples": [1e-5], "probes": [reading]} for name in request[2]}


def _fields(probes):
    return {
        "status": "ok",
        "vg_samples_s": [2e-5] * len(probes),
        "vg_probes_s": list(probes),
        "value_samples_s": [1e-5] * len(probes),
        "value_probes_s": list(probes),
    }


def test_slow_cells_get_rounds_until_fast_ones_and_fast_cells_none():
    fast, slow = _Worker([]), _Worker([2.0, 2.0, 1.0, 1.0, 1.0])
    held = [Held(fast, None, _fields([1.0] * 5)), Held(slow, None, _fields([2.0] * 5))]
    top_up(held, PROBLEMS["normal"], 10, _Recorder(), 10.0)
    assert fast.asked == []
    # two more slow rounds, then fast ones until TARGET_FAST of them have fast neighbours (the first
    # after the slow ones is an edge)
    assert len(slow.asked) == 2 + TARGET_FAST + 1
    assert held[1].fields["vg_probes_s"] == [2.0] * 7 + [1.0] * (TARGET_FAST + 1)
    assert held[1].short(1.0) == () and len(held[1].fields["vg_samples_s"]) == 5 + 2 + TARGET_FAST + 1
    assert slow.asked[0] == ("rounds", ("normal", 10), ("vg", "value"), top_up_module.BLOCK_S)


def test_a_failing_worker_or_a_cell_not_ok_costs_only_the_more_rounds(monkeypatch):
    dead = _Worker([], fail=True)
    failed = _Worker([])
    held = [Held(dead, None, _fields([2.0] * 4)), Held(failed, None, {"status": "failed"})]
    top_up(held, PROBLEMS["normal"], 10, _Recorder(ref=1.0), 10.0)
    assert len(dead.asked) == 1 and held[0].done and held[0].fields["vg_probes_s"] == [2.0] * 4
    assert failed.asked == []


def test_the_cell_cap_ends_the_wait_for_a_fast_spell(monkeypatch):
    monkeypatch.setattr(top_up_module, "CELL_S", 1e-9)  # any visit spends more
    always_slow = _Worker([2.0] * 100)
    held = [Held(always_slow, None, _fields([1.0] + [2.0] * 4))]
    top_up(held, PROBLEMS["normal"], 10, _Recorder(ref=1.0), 10.0)
    assert len(always_slow.asked) == 1  # one visit, then the cap
    assert TARGET_FAST > 1 and held[0].short(1.0) == ("vg", "value")
