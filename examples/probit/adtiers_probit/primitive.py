"""log_ndtr: the log of the standard normal CDF, log Phi(x), as one primitive of adtiers' table.

    forward   log Phi(x)                             (scipy.special.log_ndtr: accurate for x << 0)
    reverse   d/dx log Phi(x) = phi(x) / Phi(x) = exp(log phi(x) - log Phi(x)),
              log phi(x) = -x^2 / 2 - log(2 pi) / 2

The rule is written with the forward's own output ``ans`` = log Phi(x) and the table's ``exp``, so
it differentiates again (second order through the same table). Written as a ratio phi / Phi it
would be 0 / 0 below x = -38, where Phi underflows; in log space it is the Mills ratio, finite for
every x. The numba templates use ``math.erfc`` above x = -30 and the asymptotic series below.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr

from engines.core.primitives import Primitive, call

HALF_LOG_2PI = 0.9189385332046727
"""log(2 pi) / 2."""


_SERIES = "(1.0 - 1.0 / ({x} * {x}) + 3.0 / {x} ** 4 - 15.0 / {x} ** 6 + 105.0 / {x} ** 8)"
"""Phi(x) (-x) / phi(x) for x -> -inf (Abramowitz and Stegun 26.2.12); the next term, 945 / x^10, is
below 2e-12 at x = -30, where the template switches to it: erfc itself underflows below x = -37."""

_EXPR = (
    "(math.log(0.5 * math.erfc(-{x} * 0.7071067811865476)) if {x} > -30.0 else "
    "(-0.5 * {x} * {x} - 0.9189385332046727 - math.log(-{x}) + math.log(" + _SERIES + ")))"
)
_ADJOINT = (
    "({g} * (math.exp(-0.5 * {x} * {x} - 0.9189385332046727) / (0.5 * math.erfc(-{x} * 0.7071067811865476)) "
    "if {x} > -30.0 else -{x} / " + _SERIES + "))"
)
"""The numba templates: erfc above x = -30, the asymptotic series below (where erfc would reach 0
and log Phi -inf: the problem's hard point goes there). The rule is the same phi / Phi."""


def _log_ndtr_vjp(g, ans, x):
    """g phi(x) / Phi(x), in log space: g exp(-x^2 / 2 - log(2 pi) / 2 - log Phi(x))."""
    return g * call("exp", -0.5 * x * x - HALF_LOG_2PI - ans)


LOG_NDTR = Primitive(
    "log_ndtr",
    log_ndtr,
    (_log_ndtr_vjp,),
    doc="log Phi(x), the log of the standard normal CDF; d/dx = phi(x) / Phi(x)",
    examples=lambda rng: [(rng.uniform(-5.0, 5.0, 6),), (np.float64(-30.0),)],
    templates={"expr": _EXPR, "adjoint": (_ADJOINT,)},
)
