"""``stan-lpdf``: the hand-written Stan baseline, Stan as its users write it (per problem).

Like ``manual-numba``, written per problem and unsupported for any other: the log-likelihood is a
call of Stan's analytic vectorised densities (``cpp/stan_lpdf.hpp``), ``normal_lpdf`` for normal,
``normal_id_glm_lpdf`` for regression and hierarchical (with ``std_normal_lpdf`` for the random
effects), ``exponential_lpdf`` for exponential, ``bernoulli_logit_glm_lpmf`` for logistic, each with ``propto = false`` so that it is the same
function as the problem's ``loglik``. Stan's reverse mode differentiates it, but these densities
carry their gradients in closed form: one ``vari`` for a whole density instead of one per element,
which is what the production library buys over differentiating the expression.
"""

from __future__ import annotations

import numpy as np

from engines.core.contract import Unsupported
from engines.native.libraries import CPP_DIR
from engines.native.render import F64_MATRIX, F64_VECTOR, I64_VECTOR, Rendered
from engines.native.stan import StanEngine
from problems.base import Data, Problem

DATA_ORDER = {
    "normal": ("y",),
    "regression": ("X", "y"),
    "exponential": ("x",),
    "hierarchical": ("X", "g", "y"),
    "logistic": ("X", "y"),
}
"""Each hand-written density's data, in the order ``cpp/stan_lpdf.hpp`` reads them."""

INTEGER_DATA = {("logistic", "y")}
"""Data a density takes as integers (Bernoulli outcomes), though the problem holds them as floats."""


class StanLpdfEngine(StanEngine):
    name = "stan-lpdf"
    tier = "baseline"
    description = (
        "hand-written Stan: the analytic vectorised densities (normal_lpdf, normal_id_glm_lpdf, ...)"
    )

    def supports(self, problem: Problem) -> str | None:
        if problem.name not in DATA_ORDER or not type(problem).__module__.startswith("problems."):
            return f"stan-lpdf is written per problem, for {', '.join(DATA_ORDER)} only"
        return None

    def rendered(self, problem: Problem, data: Data) -> Rendered:
        if self.supports(problem) is not None:
            raise Unsupported(self.supports(problem))
        kinds = {1: F64_VECTOR, 2: F64_MATRIX}
        keys = DATA_ORDER[problem.name]
        data_kinds = tuple(
            I64_VECTOR
            if np.asarray(data[k]).dtype.kind in "iu" or (problem.name, k) in INTEGER_DATA
            else kinds[np.ndim(data[k])]
            for k in keys
        )
        layout = problem.spans(problem.n_of(data))
        return Rendered(
            name=f"lpdf_{problem.name}",
            body="",
            literals=(),
            data_keys=keys,
            data_kinds=data_kinds,
            offsets=tuple(span.start for span in layout),
            sizes=tuple(span.size if span.shape else 0 for span in layout),
            soa=False,
        )

    def generated_source(self, problem: Problem, data: Data) -> str:
        """The hand-written density of ``problem`` (from ``cpp/stan_lpdf.hpp``)."""
        self.rendered(problem, data)  # Unsupported for other problems
        text = (CPP_DIR / "stan_lpdf.hpp").read_text()
        struct = f"struct {problem.name.capitalize()} {{"
        start = text.rfind("//", 0, text.index(struct))
        return text[start : text.index("};", start) + 2]

    def library(self, rendered: Rendered | None):
        return super().library(None)
