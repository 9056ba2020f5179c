"""``cppad``: CppAD, a tape recorded once (Tier 1 in C++).

The problem's tape is rendered as C++ (``engines.native.render``) and compiled against CppAD
(``cpp/cppad.hpp`` over the generic ``cpp/tape.hpp``: every primitive a loop of ``AD<double>``
operations). ``prepare`` records it once: ``CppAD::Independent(x)``, the program run on
``AD<double>``, ``ADFun::Dependent``; the data are constants of that recording, so the tape belongs
to one data set and costs prepare time in proportion to n. A call is ``Forward(0, theta)`` (the
value) and ``Reverse(1, [1])`` (the gradient): a replay of the recorded operation sequence, as our
``tape`` engine replays its program. The Hessian is ``ADFun::Hessian``. A maximum is a recorded
``CondExpGt``, so kinks replay correctly at every theta.
"""

from __future__ import annotations

from typing import Any

from engines.native.build import Library
from engines.native.engine import NativeEngine, double_of


class CppadEngine(NativeEngine):
    name = "cppad"
    tier = "1"
    description = "CppAD: ADFun recorded once at prepare, Forward(0) + Reverse(1) per call, in C++"
    family = "cppad"
    libraries = ("cmeel-cppad",)
    needs_theta0 = True

    def entry_points(self, name: str) -> dict[str, str]:
        return {
            "prepare": f"cppad_{name}_prepare",
            "vg": "cppad_vg",
            "val": "cppad_val",
            "hess": "cppad_hess",
            "free": "cppad_free",
        }

    def extra_info(self, lib: Library, handle: int) -> dict[str, Any]:
        return {"tape_equations": int(double_of(lib, "cppad_tape_ops", handle))}
