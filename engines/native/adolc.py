"""``adolc``: ADOL-C, a tape of op codes traced once (Tier 1 in C++).

The problem's tape is rendered as C++ (``engines.native.render``) and compiled against ADOL-C
(``cpp/adolc.hpp`` over the generic ``cpp/tape.hpp``). ``prepare`` traces it once between
``trace_on(tag)`` and ``trace_off()`` on ``adouble``s, under a tag of its own per prepared data set
(the data become constants of the tape); a call is ``zos_forward`` (the value, keeping the Taylor
values) and ``fos_reverse`` (the gradient), the interpretation of ADOL-C's op-code tape that the
talk describes. The Hessian is ADOL-C's ``hessian`` driver. ADOL-C 2.7 has no ``log1p`` or
``expm1`` for ``adouble``: they are ``log(1 + x)`` and ``exp(x) - 1`` there.

Tape files: a tape larger than ADOL-C's buffers (524288 entries) goes to ``ADOLC-*_<tag>.tap``
files in ``TAPE_DIR``, by default the working directory, where two processes would overwrite each
other's. ADOL-C reads ``TAPE_DIR`` from ``./.adolcrc`` when its library is loaded, so the first load
happens inside a fresh directory of this process's own (``tape_dir()``), holding an ``.adolcrc``
that points there; it is removed when the process exits. ADOL-C's notice that it found the file
(on stderr) is silenced.

A property of ADOL-C 2.7 that the benchmark shows: its store of ``adouble`` locations grows and
never shrinks, and a tape records the store's size then (``NUM_MAX_LIVES``), which every
``zos_forward`` and ``fos_reverse`` allocates and sweeps. So a tape traced after a larger one in
the same process is slow in proportion to the larger one (measured: regression at n = 10 takes
10 us per call in a fresh process and 57 ms after normal at n = 1e6 was traced).
``info["max_live_locations"]`` reports it for each prepared data set.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engines.native.build import Library
from engines.native.engine import NativeEngine, double_of
from engines.native.render import Rendered


@functools.cache
def tape_dir() -> Path:
    """This process's directory for ADOL-C's tape files (and its ``.adolcrc``)."""
    path = Path(tempfile.mkdtemp(prefix=f"adtiers-adolc-{os.getpid()}-"))
    (path / ".adolcrc").write_text(f'"TAPE_DIR" = "{path}"\n')
    atexit.register(shutil.rmtree, path, True)
    return path


@contextlib.contextmanager
def _loading_in(directory: Path) -> Iterator[None]:
    """Run the block in ``directory`` with stderr (file descriptor 2) sent to /dev/null."""
    cwd, saved = os.getcwd(), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        os.chdir(directory)
        yield
    finally:
        os.chdir(cwd)
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class AdolcEngine(NativeEngine):
    name = "adolc"
    tier = "1"
    description = "ADOL-C: trace_on/trace_off once at prepare, zos_forward + fos_reverse per call, in C++"
    family = "adolc"
    needs_theta0 = True

    def library(self, rendered: Rendered | None) -> Library:
        with _loading_in(tape_dir()):
            return super().library(rendered)

    def entry_points(self, name: str) -> dict[str, str]:
        return {
            "prepare": f"adolc_{name}_prepare",
            "vg": "adolc_vg",
            "val": "adolc_val",
            "hess": "adolc_hess",
            "free": "adolc_free",
        }

    def extra_info(self, lib: Library, handle: int) -> dict[str, Any]:
        return {
            "tape_equations": int(double_of(lib, "adolc_tape_ops", handle)),
            "max_live_locations": int(double_of(lib, "adolc_max_lives", handle)),
        }
