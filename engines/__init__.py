"""The engines: everything that turns a problem's ``loglik`` into a value and a gradient.

Where things are:

- ``engines.core``: what every engine shares. ``primitives`` (the one table: forward, reverse
  rules and code templates per primitive), ``primitive`` (the ``Primitive`` type and the
  ``adtiers.primitives`` entry point), ``ops`` (the neutral namespace problems are written
  against), ``contract`` (``Engine``, ``Prepared``, ``Unsupported``), ``registry`` (built-ins and
  the ``adtiers.engines`` entry point), ``threads``.
- ``engines.tiers``: the in-house tiers. ``graph_scalar`` and ``graph`` (Tier 0, a graph per call,
  array-of-structs and struct-of-arrays); ``tape/``, the tape and its interpreters together: the
  format and the tracer, the NumPy replay (Tier 1), the Hessian (reverse over reverse), and code
  generation for numba (Tier 2, ``compiled``) and numba.cuda (``gpu``).
- ``engines.frameworks``: adapters of outside AD libraries, one module per library (autograd,
  CasADi, Enzyme, JAX, micrograd, PyTensor, TensorFlow, tinygrad, PyTorch).
- ``engines.native``: C++ libraries (Stan Math, CppAD, ADOL-C, and TMB through R), the tape
  rendered as C++ and compiled into a shared library; ``cpp/`` holds the C++ preludes.
- ``engines.baselines``: no AD: hand-written gradients (``manual``, ``manual_numba``) and the
  harness floor (``null``).

Every built-in engine is named in ``engines.core.registry.BUILTIN``; ``adtiers list`` shows them all.

An outside engine needs only the contract, importable from here::

    from engines import Engine, Prepared, Unsupported
"""

from engines.core.contract import Engine, Prepared, Unsupported, module_missing

__all__ = ["Engine", "Prepared", "Unsupported", "module_missing"]
