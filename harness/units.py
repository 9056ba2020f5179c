"""Numbers as people read them, in the report and on the terminal: µs/ms/s, KiB/MiB, 1.23×, 1e5.

Every function takes anything a results file may hold (a number, ``None``, NaN, even a string) and
returns plain text; a missing or non-numeric value becomes an en dash, never an exception.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, NaN, infinite, not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def seconds(value: Any) -> str:
    """A duration with three significant digits in the unit that keeps it between 1 and 1000."""
    x = number(value)
    if x is None:
        return MISSING
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x / 1e-9:.3g} ns"


def size_bytes(value: Any) -> str:
    """A byte count in binary units (KiB = 1024 B), three significant digits."""
    x = number(value)
    if x is None:
        return MISSING
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.0f} B"


def ratio(value: Any) -> str:
    """A ratio as ``1.23×`` (three significant digits; whole numbers with separators from 1000 up)."""
    x = number(value)
    if x is None:
        return MISSING
    return f"{x:,.0f}×" if abs(x) >= 1000 else f"{x:.3g}×"


def size_n(value: Any) -> str:
    """A problem size: ``1000`` as is, powers of ten from 1e4 up as ``1e5``."""
    x = number(value)
    if x is None:
        return MISSING
    if x >= 1e4 and x == 10 ** round(math.log10(x)):
        return f"1e{round(math.log10(x))}"
    return f"{x:.0f}"


def scientific(value: Any) -> str:
    """Two significant digits in scientific notation, for rho and p-values."""
    x = number(value)
    return MISSING if x is None else f"{x:.1e}"
