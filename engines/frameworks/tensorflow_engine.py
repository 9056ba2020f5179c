"""TensorFlow: the problem's ``loglik`` run on float64 tensors, differentiated by ``tf.GradientTape``.

Three engines share one adapter, one per tier:

- ``tensorflow``: eager ``GradientTape``. Each call records the forward on a fresh tape and walks it
  back with ``tape.gradient``: TensorFlow 2's graph-per-call (Tier 0).
- ``tensorflow-graph``: ``tf.function`` of value-and-gradient, the TensorFlow 1.x static graph: traced
  once per prepared problem (theta's length symbolic), later calls run the graph (Tier 1).
- ``tensorflow-xla``: the same with ``jit_compile=True``: XLA compiles the traced graph to one fused
  program (Tier 2). The first call traces and compiles (the benchmark reports it apart).

Data arrays become tensors once in ``prepare`` (index arrays stay integer) and are passed to the
traced function as arguments, not baked in as constants. Each call converts the value and gradient
to NumPy (``.numpy()``), which waits for the runtime's result: the timed call ends with the work done.

``import tensorflow`` takes seconds and logs through its C++ logger: the import happens in
``unavailable``/``prepare`` (never in a timed call) with ``TF_CPP_MIN_LOG_LEVEL=3`` set before it.
Threads: ``tf.config.threading`` intra- and inter-op parallelism, settable only before the runtime
starts; XLA's CPU threads through ``engines.core.threads.set_xla_threads``.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from engines.core.contract import module_missing
from engines.core.ops import Ops
from engines.core.threads import set_xla_threads
from engines.frameworks.adapter import FrameworkEngine, Gradient, Loglik, symmetrised

INSTALL = "pip install 'tensorflow-cpu==2.21.0'"


@functools.cache
def import_tensorflow() -> Any:
    """TensorFlow (imported once per process), with its C++ log lines (oneDNN notices, CPU feature lines) silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


@functools.cache
def tensorflow_ops() -> Ops:
    """The primitive table as ``tf.math`` functions, with TensorFlow's names where they differ from
    NumPy's (``reduce_sum``, ``reduce_max``, ``reduce_logsumexp``, ``linalg.matvec``) and ``tf.gather``
    for indexing (a tensor is not indexable by an integer array)."""
    tf = import_tensorflow()

    def solve_triangular(chol: Any, b: Any) -> Any:
        return tf.linalg.triangular_solve(chol, b[..., None], lower=True)[..., 0]

    extra = {
        "abs": tf.math.abs,
        "sum": tf.math.reduce_sum,
        "max": tf.math.reduce_max,
        "logsumexp": tf.math.reduce_logsumexp,
        "matvec": tf.linalg.matvec,
        "cholesky": symmetrised(tf.linalg.cholesky, tf.linalg.matrix_transpose),
        "solve_triangular": solve_triangular,
        "diagonal": tf.linalg.diag_part,
    }
    ops = Ops.like_numpy("tensorflow", tf.math, extra)
    ops.gather = tf.gather  # like_numpy binds gather to ``x[idx]``, which a tensor refuses
    return ops


class TensorflowEngine(FrameworkEngine):
    name = "tensorflow"
    libraries = ("tensorflow-cpu", "keras")
    tier = "0"
    description = "TensorFlow eager GradientTape, float64: the graph recorded and walked back per call"
    memory_method = "tensorflow"  # its own allocator accounting (harness.measure.memory)
    counter_unsupported = (
        "TensorFlow runs its kernels on threads of its own, which callgrind's per-thread collection does "
        "not see: a count would be the Python dispatch alone"
    )
    mode = "eager"

    def unavailable(self) -> str | None:
        if module_missing("tensorflow") is not None:
            return f"tensorflow is not installed ({INSTALL})"
        return None

    def set_threads(self, threads: int) -> None:
        set_xla_threads(threads)
        tf = import_tensorflow()
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # settable only before the runtime starts; the first setting holds
            pass

    def ops(self) -> Ops:
        return tensorflow_ops()

    def to_device(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        tf = import_tensorflow()
        return {k: tf.constant(v) for k, v in arrays.items()}

    def theta_in(self, theta: np.ndarray) -> Any:
        tf = import_tensorflow()
        return tf.constant(theta, dtype=tf.float64)

    def gradient(self, loglik: Loglik, arrays: dict[str, Any]) -> Gradient:
        """A ``GradientTape`` recorded per call and walked back; outside eager mode value-and-gradient
        and the value are each one ``tf.function`` (XLA-compiled for ``tensorflow-xla``), theta's
        length symbolic and the data arguments."""
        tf = import_tensorflow()

        def value_and_grad(theta: Any, arrays: dict[str, Any]) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                tape.watch(theta)
                value = loglik(theta, arrays)
            return value, tape.gradient(value, theta)

        value_only = loglik
        if self.mode != "eager":
            compile_xla = self.mode == "xla"
            signature = [
                tf.TensorSpec([None], tf.float64),
                {k: tf.TensorSpec.from_tensor(v) for k, v in arrays.items()},
            ]
            value_and_grad = tf.function(value_and_grad, input_signature=signature, jit_compile=compile_xla)
            value_only = tf.function(loglik, input_signature=signature, jit_compile=compile_xla)
        return Gradient(
            lambda theta: value_and_grad(theta, arrays),
            lambda theta: value_only(theta, arrays),
            {"mode": self.mode},
        )

    def hessian(self, loglik: Loglik, arrays: dict[str, Any], gradient: Gradient) -> Any:
        """Reverse-over-reverse: the Jacobian of the gradient, one nested tape (eager)."""
        tf = import_tensorflow()

        def hess(t: Any) -> Any:
            with tf.GradientTape() as outer:
                outer.watch(t)
                with tf.GradientTape() as inner:
                    inner.watch(t)
                    value = loglik(t, arrays)
                grad = inner.gradient(value, t)
            return outer.jacobian(grad, t)

        return hess


class TensorflowGraphEngine(TensorflowEngine):
    name = "tensorflow-graph"
    tier = "1"
    description = "TensorFlow tf.function of value-and-gradient: a static graph traced once, run per call"
    mode = "graph"


class TensorflowXlaEngine(TensorflowEngine):
    name = "tensorflow-xla"
    tier = "2"
    description = (
        "TensorFlow tf.function(jit_compile=True): the traced graph compiled by XLA (first call compiles)"
    )
    mode = "xla"
