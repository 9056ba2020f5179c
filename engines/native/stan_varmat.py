"""``stan-varmat``: Stan Math's reverse mode, struct-of-arrays ``var_value<Eigen::VectorXd>`` (Tier 0 in C++).

The same rendered tape and the same library as ``stan``, instantiated with another getter
(``SoaGet`` in ``cpp/stan.hpp``): each vector block of theta is one ``var_value<VectorXd>``, a
single ``vari`` holding a value vector and an adjoint vector, and a data vector that meets only
scalar parameters is lifted to one too, so that Stan's functions return ``var_value`` results: one
node per array, as in our ``graph`` engine, where ``stan`` has one per element. The pair
``stan`` / ``stan-varmat`` is the talk's array-of-structs against struct-of-arrays comparison inside
one production library, beside ``graph-scalar`` / ``graph``.

A program using a primitive Stan has no ``var_value`` form of (``VARMAT_PRIMITIVES``) is
``unsupported`` here, with the primitive named. The Hessian is ``stan``'s (``fvar<var>``).
"""

from __future__ import annotations

from engines.core.contract import Unsupported
from engines.native.render import Rendered, native_program
from engines.native.stan import VARMAT_PRIMITIVES, StanEngine
from problems.base import Data, Problem


class StanVarmatEngine(StanEngine):
    name = "stan-varmat"
    description = "Stan Math reverse mode, struct-of-arrays var_value<VectorXd>: a graph per call, in C++"
    vg_suffix = "vg_soa"

    def rendered(self, problem: Problem, data: Data) -> Rendered:
        rendered = super().rendered(problem, data)
        if not rendered.soa:
            used = set(native_program(problem, data).op_counts())
            missing = sorted(used - VARMAT_PRIMITIVES)
            raise Unsupported(f"Stan Math has no var_value (struct-of-arrays) form of {', '.join(missing)}")
        return rendered
