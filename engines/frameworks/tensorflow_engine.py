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

from engines.core.contract import Engine, Prepared, module_missing
from engines.core.ops import Ops, split_data
from engines.core.threads import set_xla_threads
from problems.base import Data, Problem

INSTALL = "pip install 'tensorflow-cpu==2.21.0'"


def import_tensorflow() -> Any:
    """TensorFlow, imported with its C++ log lines (oneDNN notices, CPU feature lines) silenced."""
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

    def cholesky(a: Any) -> Any:
        return tf.linalg.cholesky(0.5 * (a + tf.linalg.matrix_transpose(a)))

    def solve_triangular(chol: Any, b: Any) -> Any:
        return tf.linalg.triangular_solve(chol, b[..., None], lower=True)[..., 0]

    extra = {
        "abs": tf.math.abs,
        "sum": tf.math.reduce_sum,
        "max": tf.math.reduce_max,
        "logsumexp": tf.math.reduce_logsumexp,
        "matvec": tf.linalg.matvec,
        "cholesky": cholesky,
        "solve_triangular": solve_triangular,
        "diagonal": tf.linalg.diag_part,
    }
    ops = Ops.like_numpy("tensorflow", tf.math, extra)
    ops.gather = tf.gather  # like_numpy binds gather to ``x[idx]``, which a tensor refuses
    return ops


class TensorflowEngine(Engine):
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

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        tf = import_tensorflow()
        ops = tensorflow_ops()
        n = problem.n_of(data)
        arrays, constants = split_data(data)
        arrays = {k: tf.constant(v) for k, v in arrays.items()}

        def loglik(theta: Any, arrays: dict[str, Any]) -> Any:
            return problem.loglik(ops, problem.split(theta, n), {**constants, **arrays})

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

        def vg(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = value_and_grad(tf.constant(theta, dtype=tf.float64), arrays)
            return float(value.numpy()), np.asarray(grad.numpy(), dtype=np.float64)

        def val(theta: np.ndarray) -> float:
            return float(value_only(tf.constant(theta, dtype=tf.float64), arrays).numpy())

        def hess(theta: np.ndarray) -> np.ndarray:
            """Reverse-over-reverse: the Jacobian of the gradient, one nested tape (eager)."""
            t = tf.constant(theta, dtype=tf.float64)
            with tf.GradientTape() as outer:
                outer.watch(t)
                with tf.GradientTape() as inner:
                    inner.watch(t)
                    value = loglik(t, arrays)
                grad = inner.gradient(value, t)
            return np.asarray(outer.jacobian(grad, t).numpy(), dtype=np.float64)

        return Prepared(problem, n, vg, val, {"mode": self.mode}, hess)


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
