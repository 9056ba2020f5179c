"""Instruction counts: the CPU instructions of steady-state calls, counted by valgrind's callgrind.

A timing on a shared machine moves by several percent from run to run; the number of instructions
a call executes does not. Counted under callgrind, the same call in the same environment gives the
same count to well within 0.5 %, so a CI gate can compare counts with a tight threshold where it
could only compare timings with a loose one. The price is speed: a count costs a few tenths of a
second (switching instrumentation on) plus its calls at about 100 times their native time, and the
whole counted process (imports, compiling) runs 10-20 times slower than natively; counts are for
small sizes and a few calls, not for the benchmark's timings.

How it works: the worker runs under ``launch_prefix(out_dir) + [python, ...]``, with callgrind's
instrumentation and collection both off, so that imports, preparing and compiling run at the speed
of valgrind's core (a few times slower than native) and cost nothing in the counts.
``count_instructions(fn)`` switches instrumentation on, makes the warm-up calls, then zeroes
callgrind's counters, toggles collection on for the counted calls, toggles it off, and asks for a
dump with a label of its own. Callgrind writes each requested dump synchronously to
``<out_dir>/callgrind.<pid>.<part>`` (part 1, 2, ... in request order; the dump at exit is
``callgrind.<pid>`` without a part), with ``desc: Trigger: Client Request: <label>`` and
``summary: <Ir>`` in its header; the function finds its dump by the label and reads the ``Ir``
total. The dumps are kept, so a count that moved can be opened with ``callgrind_annotate``.

Collection is per thread in callgrind: only the calling thread's instructions count. Work that an
engine hands to another thread is missed (JAX runs its XLA computations on its own threads, so a
``jax`` count is its Python dispatch alone, the same at n = 10 and 1e5, and it varies by 1-2 % with
the malloc heap those threads leave behind); count with one thread (``--threads 1``, the default).

The client requests are C macros (``valgrind/callgrind.h``), so a tiny helper library is compiled
once with gcc into ``$XDG_CACHE_HOME/adtiers`` (or ``~/.cache/adtiers``), keyed by a hash of its
source and of the valgrind headers, and loaded with ctypes.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

VALGRIND = "valgrind"
GCC = "gcc"
COUNTERS = ("instructions",)
DIR_VARIABLE = "ADTIERS_COUNTER_DIR"
"""Where the counted process finds callgrind's dumps; ``launch_prefix`` sets it."""
DUMP_PREFIX = "callgrind."
WARMUP = 20
"""Uncounted calls before counting: enough for CPython's adaptive interpreter to settle."""
INSTALL_VALGRIND = "apt-get install valgrind"
INSTALL_GCC = "apt-get install gcc"
HEADERS = ("valgrind/callgrind.h", "valgrind/valgrind.h")

HELPER_SOURCE = r"""
#include <valgrind/valgrind.h>
#include <valgrind/callgrind.h>

int adtiers_running_on_valgrind(void) { return RUNNING_ON_VALGRIND; }
void adtiers_start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }
void adtiers_stop_instrumentation(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void adtiers_zero(void) { CALLGRIND_ZERO_STATS; }
void adtiers_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
void adtiers_on(void) { CALLGRIND_ZERO_STATS; CALLGRIND_TOGGLE_COLLECT; }
void adtiers_off_and_dump(const char *label) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS_AT(label); }
"""


class CounterUnavailable(Exception):
    """The counter cannot run here or in this process; the message says why and what to do."""


# -- the helper library -------------------------------------------------------------------------


def _include_dirs() -> list[Path]:
    """Where valgrind's headers may be: next to the valgrind on PATH, then the usual prefixes."""
    dirs = []
    found = shutil.which(VALGRIND)
    if found:
        dirs.append(Path(found).resolve().parent.parent / "include")
    dirs += [Path("/usr/include"), Path("/usr/local/include")]
    return list(dict.fromkeys(dirs))


def _header_dir() -> Path | None:
    for directory in _include_dirs():
        if all((directory / header).is_file() for header in HEADERS):
            return directory
    return None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "adtiers"


def _helper_path(include: Path) -> Path:
    digest = hashlib.sha256(HELPER_SOURCE.encode())
    for header in HEADERS:
        digest.update((include / header).read_bytes())
    return _cache_dir() / f"counters-{digest.hexdigest()[:16]}.so"


def _build(target: Path, include: Path) -> None:
    """Compile the helper in a temporary directory beside it, then rename it into place.

    Two processes building at once each rename a complete library; neither sees half a file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as work:
        source, partial = Path(work) / "helper.c", Path(work) / target.name
        source.write_text(HELPER_SOURCE)
        command = [GCC, "-O2", "-shared", "-fPIC", f"-I{include}", "-o", str(partial), str(source)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise CounterUnavailable(f"compiling the callgrind helper failed: {done.stderr.strip()}")
        os.replace(partial, target)


def _unavailable_reason() -> str | None:
    if shutil.which(VALGRIND) is None:
        return f"valgrind is not installed: {INSTALL_VALGRIND}"
    if _header_dir() is None:
        return f"valgrind's headers (valgrind/callgrind.h) are missing: {INSTALL_VALGRIND}"
    if shutil.which(GCC) is None:
        return f"gcc is not installed (it compiles the callgrind helper): {INSTALL_GCC}"
    return None


def helper_library() -> Path:
    """The compiled helper, built on first use; CounterUnavailable when it cannot be."""
    reason = _unavailable_reason()
    if reason is not None:
        raise CounterUnavailable(reason)
    include = _header_dir()
    target = _helper_path(include)
    if not target.is_file():
        _build(target, include)
    return target


_lib: ctypes.CDLL | None = None


def _helper() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(str(helper_library()))
        lib.adtiers_running_on_valgrind.restype = ctypes.c_int
        for name in ("adtiers_dump", "adtiers_off_and_dump"):
            getattr(lib, name).argtypes = [ctypes.c_char_p]
        for name in ("adtiers_start_instrumentation", "adtiers_stop_instrumentation", "adtiers_zero"):
            getattr(lib, name).restype = None
        _lib = lib
    return _lib


# -- what the parent uses -----------------------------------------------------------------------


def counter_missing(counter: str = "instructions") -> str | None:
    """None when the counter can run here, else the reason with the command that fixes it."""
    if counter not in COUNTERS:
        return f"unknown counter {counter!r}; known counters: {', '.join(COUNTERS)}"
    try:
        helper_library()
    except (CounterUnavailable, OSError, subprocess.SubprocessError) as err:
        return str(err)
    return None


def launch_prefix(out_dir: str | Path) -> list[str]:
    """The argv prefix that runs a process under callgrind, instrumentation and collection off.

    ``env`` sets ``ADTIERS_COUNTER_DIR`` so that the counted process knows where its dumps go;
    ``--instr-atstart=no`` runs everything before the first count at valgrind's core speed;
    ``--smc-check=all-non-file`` makes code written at run time (numba, LLVM, XLA) safe to run.
    Builds the helper library here, so that the counted process only loads it.
    """
    helper_library()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return [
        "env",
        f"{DIR_VARIABLE}={out}",
        VALGRIND,
        "-q",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--collect-atstart=no",
        "--smc-check=all-non-file",
        "--child-silent-after-fork=yes",
        f"--callgrind-out-file={out}/{DUMP_PREFIX}%p",
    ]


def environment() -> dict[str, str]:
    """What the counted process needs for repeatable counts: string hashing seeded the same way.

    Thread counts are the caller's (``harness.measure.threads``): count with one thread.
    """
    return {"PYTHONHASHSEED": "0"}


# -- what the counted process uses --------------------------------------------------------------


def under_valgrind() -> bool:
    """Whether this process runs under valgrind (any tool), by RUNNING_ON_VALGRIND."""
    try:
        return bool(_helper().adtiers_running_on_valgrind())
    except (CounterUnavailable, OSError):
        return "vgpreload" in os.environ.get("LD_PRELOAD", "")


def _dump_dir() -> Path:
    return Path(os.environ.get(DIR_VARIABLE) or os.getcwd())


def _dumps(directory: Path) -> set[Path]:
    """This process's dump files: ``callgrind.<pid>.<part>`` (or callgrind's default names)."""
    pid = os.getpid()
    return {*directory.glob(f"{DUMP_PREFIX}{pid}.*"), *directory.glob(f"{DUMP_PREFIX}out.{pid}.*")}


def read_dump(path: Path) -> tuple[str | None, float]:
    """The trigger label and the ``Ir`` total of a callgrind dump, read from its header."""
    label, events = None, None
    with open(path) as lines:
        for line in lines:
            key, _, value = line.partition(":")
            if key == "desc" and value.strip().startswith("Trigger: Client Request:"):
                label = value.strip().removeprefix("Trigger: Client Request:").strip()
            elif key == "events":
                events = value.split()
            elif key in ("summary", "totals"):
                costs = value.split()
                index = events.index("Ir") if events and "Ir" in events else 0
                return label, float(costs[index]) if index < len(costs) else 0.0
    raise CounterUnavailable(f"{path} has no summary line: not a complete callgrind dump")


_sequence = itertools.count(1)
_probed: set[int] = set()


def _dump_and_read(dump: Callable[[bytes], None], directory: Path) -> tuple[float, Path]:
    """Ask for a dump with a fresh label and read its total; CounterUnavailable when none appears."""
    label = f"adtiers-{os.getpid()}-{threading.get_ident()}-{next(_sequence)}"
    before = _dumps(directory)
    dump(label.encode())
    for path in sorted(_dumps(directory) - before):
        found, total = read_dump(path)
        if found == label:
            return total, path
    raise CounterUnavailable(
        f"callgrind wrote no dump labelled {label} in {directory}: not running under callgrind, or not "
        f"with harness.measure.counters.launch_prefix (which sets {DIR_VARIABLE})"
    )


def _check_collection_off(lib: ctypes.CDLL, directory: Path) -> None:
    """Once per thread: collection must be off at rest, or toggling it would turn it off."""
    if threading.get_ident() in _probed:
        return
    lib.adtiers_zero()
    total, path = _dump_and_read(lib.adtiers_dump, directory)
    path.unlink(missing_ok=True)
    if total > 0:
        raise CounterUnavailable(
            "callgrind collects from the start; launch with --collect-atstart=no (launch_prefix)"
        )
    _probed.add(threading.get_ident())


def _counted_calls(lib: ctypes.CDLL, fn: Callable[[], Any], calls: int, directory: Path) -> float:
    """The instructions of ``calls`` calls of fn, garbage collection held off while they run."""

    def run_and_dump(label: bytes) -> None:
        lib.adtiers_on()
        try:
            for _ in range(calls):
                fn()
        finally:
            lib.adtiers_off_and_dump(label)

    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        total, _ = _dump_and_read(run_and_dump, directory)
    finally:
        if collecting:
            gc.enable()
    return total


def count_instructions(fn: Callable[[], Any], calls: int = 5, warmup: int = WARMUP) -> float:
    """Instructions per call of ``fn()``: the mean over ``calls`` counted calls after ``warmup``.

    The warm-up is long because CPython 3.11 specializes a function's bytecode only after some
    calls: two warm-up calls left the first count in a process 15 % above the later ones.

    Raises CounterUnavailable when this process does not run under callgrind as
    ``launch_prefix`` starts it; an exception from fn passes through with collection off again.
    """
    if calls < 1 or warmup < 0:
        raise ValueError(f"need calls >= 1 and warmup >= 0, got calls={calls}, warmup={warmup}")
    if not under_valgrind():
        raise CounterUnavailable(
            "not running under valgrind: start the process with harness.measure.counters.launch_prefix(out_dir)"
        )
    lib, directory = _helper(), _dump_dir()
    lib.adtiers_start_instrumentation()
    try:
        _check_collection_off(lib, directory)
        for _ in range(warmup):
            fn()
        total = _counted_calls(lib, fn, calls, directory)
    finally:
        lib.adtiers_stop_instrumentation()
    return total / calls
