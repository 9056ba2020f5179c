"""The engines: everything that turns a problem's ``loglik`` into a value and a gradient.

Where things are:

- ``engines.core``: what every engine shares. ``primitives`` (the one table: forward, reverse
  rules and code templates per primitive), ``primitive`` (the ``Primitive`` type and the
  ``adtiers.primitives`` entry point), ``ops`` (the neutral namespace problems are written
  against), ``contract`` (``Engine``, ``Prepared``, ``Unsupported``), ``registry`` (built-ins and
  the ``adtiers.engines`` entry point), ``threads``.
- ``engines.tiers``: the in-house tiers. ``graph_scalar`` and ``graph`` (Tier 0, a graph per call,
  array-of-structs and struct-of-arrays); ``tape/``, the tape and its interpreters together:
  ``program`` (the format and the tracer), ``replay`` (Tier 1, NumPy forward and reverse),
  ``hessian`` (reverse over reverse), ``codegen`` and ``stmts`` (the plan of loops), ``compiled``
  (Tier 2, numba), ``gpu_render`` and ``gpu`` (Tier 2, numba.cuda).
- ``engines.frameworks``: adapters of outside AD libraries (autograd, JAX, PyTorch).
- ``engines.native``: C++ libraries, called through a compiled shared library.
- ``engines.baselines``: no AD: hand-written gradients (``manual``, ``manual_numba``) and the
  harness floor (``null``).

An outside engine needs only the contract, importable from here::

    from engines import Engine, Prepared, Unsupported
"""

from engines.core.contract import Engine, Prepared, Unsupported, module_missing

__all__ = ["Engine", "Prepared", "Unsupported", "module_missing"]
