"""Tier 1: trace once, replay many times (``engines.tiers.tape.replay``), in NumPy.

``prepare`` gets the problem's program from the shared cache (``engines.tiers.tape.program.programs``:
one trace per problem and data shapes) and builds a ``Replay`` of it over buffers allocated once;
each call is then the replay's forward and reverse sweeps, no graph built. The Hessian replays the
gradient program (``engines.tiers.tape.hessian``), traced on its first call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.core.contract import Engine, Prepared
from engines.tiers.tape.program import programs
from engines.tiers.tape.replay import Replay
from problems.base import Data, Problem


class TapeEngine(Engine):
    name = "tape"
    tier = "1"
    description = "trace once into a flat tape, replay forward and reverse over NumPy buffers"

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        program = programs.get(problem, data)
        replay = Replay(program, data)
        info: dict[str, Any] = {"program": program, "tape_equations": len(program.eqns)}

        def hess(theta: np.ndarray) -> np.ndarray:
            """Reverse over reverse through the gradient program, traced on the first call."""
            if "hessian" not in info:
                from engines.tiers.tape.hessian import TapeHessian

                info["hessian"] = TapeHessian(program, data)
                info["gradient_program"] = info["hessian"].program
            return info["hessian"](theta)

        return Prepared(problem, problem.n_of(data), replay.value_and_grad, replay.forward, info, hess)
