"""``stan``: Stan Math's reverse mode, array-of-structs (Tier 0 in C++: a graph per call).

The problem's tape is rendered as C++ (``engines.native.render``) and compiled against Stan Math
(``cpp/stan.hpp``). Each call builds Stan's expression graph anew: theta becomes an
``Eigen::Matrix<var, -1, 1>`` (one ``vari`` per element, each with its value and adjoint: the
array-of-structs layout of micrograd's nodes and our ``graph-scalar``), every equation a call of
Stan's vectorised functions (``subtract``, ``elt_divide``, ``square``, ``sum``, ``multiply``,
``rvalue`` for a gather; ``cholesky_decompose``, ``mdivide_left_tri_low`` and ``diagonal`` on
matrices of ``var``), and ``lp.grad()`` runs the reverse sweep over the ``vari`` stack. Then
``recover_memory()`` empties the arena for the next call (Stan keeps its blocks; they go back to
the system when the prepared problem is dropped). ``info["arena_bytes"]`` is the arena one call
used: memory Stan holds between calls, which the rss measure of a later call does not see again;
``info["graph_nodes"]`` the ``vari``s that call's graph held (about one per element per equation).

The Hessian is Stan's ``hessian`` functional: forward over reverse, ``fvar<var>``, one reverse
sweep per parameter. The three Stan engines share one shared library (``stan``, ``stan-varmat``,
``stan-lpdf``, every built-in problem), compiled once and cached on disk (``engines.native.build``).
"""

from __future__ import annotations

from typing import Any

from engines.native.build import Library
from engines.native.engine import NativeEngine, double_of

VARMAT_PRIMITIVES = frozenset(
    {
        *("add", "sub", "mul", "div", "neg", "exp", "log", "square", "abs", "log1p", "expm1"),
        *("sigmoid", "log_sigmoid", "sum", "logsumexp", "matvec", "gather"),
        *("cholesky", "solve_triangular", "diagonal"),
    }
)
"""The primitives whose Stan functions take and give ``var_value<Eigen::VectorXd>`` (Stan Math 4.9;
``tests/test_native.py`` differentiates each): a program using only these gets a struct-of-arrays
instantiation. The elementwise ones also take ``var_value<Eigen::MatrixXd>`` (a kernel matrix), and
``cholesky_decompose``, ``mdivide_left_tri<Lower>`` and ``diagonal`` do. Stan 4.9 has no
``var_value`` form of ``fmax`` (maximum) and of ``max``.
"""


class StanEngine(NativeEngine):
    name = "stan"
    tier = "0"
    description = "Stan Math reverse mode, array-of-structs Matrix<var>: a graph per call, in C++"
    family = "stan"
    libraries = ("httpstan",)
    soa_primitives = VARMAT_PRIMITIVES
    includes = ("stan_lpdf.hpp",)
    vg_suffix = "vg_aos"

    def entry_points(self, name: str) -> dict[str, str]:
        return {
            "prepare": "stan_prepare",
            "vg": f"stan_{name}_{self.vg_suffix}",
            "val": f"stan_{name}_val",
            "hess": f"stan_{name}_hess",
            "free": "stan_free",
        }

    def extra_info(self, lib: Library, handle: int) -> dict[str, Any]:
        return {
            "arena_bytes": int(double_of(lib, "stan_arena_bytes", handle)),
            "graph_nodes": int(double_of(lib, "stan_graph_nodes", handle)),
        }
