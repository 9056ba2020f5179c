"""The names generated code gives to what a tape holds: one scheme for every code generator.

The one-pass and general numba plans (``codegen``, ``general``), the CUDA kernels rendered from them
and the C++ renderer (``engines.native.render``) all name things alike, so that a listing of one
reads like a listing of another (``adtiers show``):

- ``p_<block>``: a theta block; ``d_<key>``: a data array (``<block>`` and ``<key>`` as identifiers);
- ``v<slot>``: the value of the equation whose output is slot ``slot`` (``b<m>_v<slot>`` inside the
  body of loop ``m``); ``c<k>``: the k-th scalar literal;
- ``ct_<name>``: the cotangent (adjoint) of the value named ``<name>``;
- ``<name>_i``: an input read at element ``i`` of a loop; ``<name>_f``: a flat view of a matrix;
- ``k<k>``: the k-th constant array (gather indices); ``b<m>_``: the prefix of the names inside
  the body of loop ``m`` (``b<m>_carry``, ``b<m>_x``: its carry and its row);
- one-pass plans: ``w<slot>_<name>``, the work vector of a theta block ``<name>`` in the reduction
  ``slot``; ``d<slot>_<name>``, the accumulator of ``d reduction / d <name>`` over the loop; ``n<slot>``, the
  sum of a reduction's adjoint weights (the ties of a ``max``).

The prefixes keep every generated name apart from the names a generator writes itself (``theta``,
``lits``, ``grad``, ``math``, ``np``, loop indices): a block or key never needs escaping, only making
into an identifier, and two that become the same identifier are told apart by ``unique``.
"""

from __future__ import annotations

import re


def identifier(text: str) -> str:
    """``text`` with every character that cannot stand in an identifier replaced by ``_``."""
    return re.sub(r"\W", "_", text)


def unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name`` with ``_`` appended until it is not in ``taken``; it is then taken."""
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def param(block: str) -> str:
    return f"p_{identifier(block)}"


def data(key: str) -> str:
    return f"d_{identifier(key)}"


def value(slot: int, prefix: str = "") -> str:
    return f"{prefix}v{slot}"


def literal(k: int) -> str:
    return f"c{k}"


def cotangent(name: str) -> str:
    return f"ct_{name}"


def element(name: str) -> str:
    return f"{name}_i"


def flat(name: str) -> str:
    return f"{name}_f"


def constant(k: int) -> str:
    return f"k{k}"


def body(m: int) -> str:
    return f"b{m}_"


def work(slot: int, name: str) -> str:
    return f"w{slot}_{name}"


def accumulator(slot: int, name: str) -> str:
    return f"d{slot}_{name}"


def normaliser(slot: int) -> str:
    return f"n{slot}"
