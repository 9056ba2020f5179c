"""Maximum likelihood with an engine's gradient, and standard errors from the Hessian at the optimum.

    theta_hat = argmax_theta l(theta)          (scipy's L-BFGS-B on -l, with the engine's gradient)
    SE_j      = sqrt([(-H(theta_hat))^-1]_jj)  (the inverse observed information)

A problem whose ``sense`` is ``"minimise"`` (an objective f, e.g. least squares) is minimised
instead, and SE_j = sqrt([H^-1]_jj), a covariance only where f is a negative log-likelihood.

H comes from the engine's own second-order AD where it has one (``Prepared.hessian``), else from
central differences of its gradient, H[:, j] ~ (g(theta + h e_j) - g(theta - h e_j)) / 2h,
symmetrised; the result says which. This is the vignette's ``fit`` and ``summary(result)``.

An engine with standard errors of its own (TMB's ``sdreport``) exposes ``info["stderr_at"](theta)``;
they are taken at the same optimum and kept as ``extra["engine_stderr"]``, to be shown beside ours.
An engine with an optimiser of its own (TMB's ``nlminb`` inside R) exposes ``info["optimise"](x0)``;
it is run from the same start after ours and kept as ``extra["engine_fit"]`` (its time by its own
clock, its gradient evaluations, its log-likelihood), so that time to a fit is compared with what a
user of that tool waits for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from engines.core.contract import Engine
from problems.base import Problem


@dataclass
class FitResult:
    problem: str
    engine: str
    n: int
    names: list[str]
    estimate: np.ndarray
    stderr: np.ndarray
    truth: np.ndarray
    loglik: float
    converged: bool
    message: str
    iterations: int
    gradient_evaluations: int
    hessian_method: str
    seconds: float
    seconds_prepare: float = 0.0
    extra: dict = field(default_factory=dict)
    sense: str = "maximise"

    @property
    def objective_name(self) -> str:
        return "log-likelihood" if self.sense == "maximise" else "objective"

    def table(self, limit: int = 20) -> str:
        """The vignette's summary: estimate and standard error per parameter, truth beside them."""
        lines = []
        if not self.converged:
            lines.append(
                f"NOT CONVERGED ({self.message}): the numbers below are the optimiser's last point, not estimates"
            )
        lines.append(f"{'parameter':<14} {'estimate':>12} {'std.error':>12} {'truth':>12} {'z':>8}")
        for name, est, se, true in list(zip(self.names, self.estimate, self.stderr, self.truth))[:limit]:
            z = (est - true) / se if se > 0 else float("nan")
            lines.append(f"{name:<14} {est:>12.5g} {se:>12.4g} {true:>12.5g} {z:>8.2f}")
        if len(self.names) > limit:
            lines.append(f"... {len(self.names) - limit} more parameters")
        lines.append(
            f"{self.objective_name} {self.loglik:.6g}; {'converged' if self.converged else 'NOT converged'} "
            f"({self.message}); {self.iterations} iterations, {self.gradient_evaluations} gradient evaluations; "
            f"Hessian by {self.hessian_method}; {self.seconds:.3g} s (prepare {self.seconds_prepare:.3g} s)"
        )
        return "\n".join(lines)


def parameter_names(problem: Problem, n: int) -> list[str]:
    names = []
    for b in problem.blocks(n):
        names += [b.name] if not b.shape else [f"{b.name}[{i}]" for i in range(b.size)]
    return names


def difference_hessian(grad, theta: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the gradient, column by column, then symmetrised."""
    k = theta.size
    hess = np.empty((k, k))
    for j in range(k):
        step = h * max(1.0, abs(theta[j]))
        e = np.zeros(k)
        e[j] = step
        hess[:, j] = (grad(theta + e) - grad(theta - e)) / (2 * step)
    return 0.5 * (hess + hess.T)


def fit(
    engine: Engine,
    problem: Problem,
    n: int,
    seed: int = 0,
    start: np.ndarray | None = None,
    stderr: bool = True,
) -> FitResult:
    """Maximise the log-likelihood of ``problem`` on data of size ``n`` with ``engine``'s gradient;
    then, unless ``stderr`` is False, standard errors from the Hessian at the optimum."""
    from scipy.optimize import minimize

    data = problem.make_data(n, seed)
    started = time.perf_counter()
    prepared = engine.prepare(problem, data)
    seconds_prepare = time.perf_counter() - started
    truth = problem.true_theta(n)
    x0 = np.zeros_like(truth) if start is None else np.asarray(start, dtype=np.float64)
    evaluations = 0

    sign = -1.0 if problem.sense == "maximise" else 1.0

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal evaluations
        evaluations += 1
        value, grad = prepared.value_and_grad(theta)
        return sign * value, sign * grad

    opt = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": 10_000, "gtol": 1e-8})
    optimised = time.perf_counter() - started
    if not stderr:
        hess, method = np.full((truth.size, truth.size), np.nan), "not computed"
    elif prepared.has_hessian:
        hess, method = prepared.hessian(opt.x), "AD (the engine's second order)"
    else:
        hess, method = (
            difference_hessian(lambda t: prepared.value_and_grad(t)[1], opt.x),
            "central differences of the AD gradient",
        )
    try:
        cov = np.linalg.inv(sign * hess)
        errors = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    except np.linalg.LinAlgError:
        errors = np.full(truth.size, np.nan)
    extra = {"seconds_optimise": optimised}
    own_stderr = prepared.info.get("stderr_at")  # the engine's own standard errors (TMB's sdreport)
    if stderr and callable(own_stderr) and opt.success:
        extra["engine_stderr"] = np.asarray(own_stderr(opt.x), dtype=np.float64)
    own_fit = prepared.info.get("optimise")
    if callable(own_fit):
        extra["engine_fit"] = engine_fit(own_fit, x0, sign * float(opt.fun))
    return FitResult(
        problem=problem.name,
        engine=engine.name,
        n=n,
        names=parameter_names(problem, n),
        estimate=opt.x,
        stderr=errors,
        truth=truth,
        loglik=sign * float(opt.fun),
        converged=bool(opt.success),
        message=why(opt, evaluations),
        iterations=int(opt.nit),
        gradient_evaluations=evaluations,
        hessian_method=method,
        seconds=time.perf_counter() - started,
        seconds_prepare=seconds_prepare,
        extra=extra,
        sense=problem.sense,
    )


def engine_fit(optimise, x0: np.ndarray, ours: float) -> dict:
    """The engine's own optimiser from our start: its record (JSON-ready), with how far its
    log-likelihood ends from ours (``loglik_minus_ours``), or the error it raised."""
    try:
        got = optimise(np.array(x0, dtype=np.float64))
    except Exception as err:  # noqa: BLE001 -- the engine's optimiser failing does not lose our fit
        return {"status": "error", "reason": f"{type(err).__name__}: {err}"}
    return {
        "status": "ok" if got["converged"] else "failed",
        "method": got.get("method", "the engine's own optimiser"),
        "seconds": float(got["seconds"]),
        "converged": bool(got["converged"]),
        "message": str(got.get("message", "")),
        "gradient_evaluations": int(got["gradient_evaluations"]),
        "loglik": float(got["loglik"]),
        "loglik_minus_ours": float(got["loglik"]) - ours,
    }


def why(opt: object, evaluations: int) -> str:
    """scipy's message, completed where it gives no reason (``ABNORMAL: `` with nothing after it).

    L-BFGS-B ends "abnormally" when its line search finds no decrease along a descent direction:
    most often a gradient that disagrees with the function, or a function that is not finite there.
    """
    message = str(getattr(opt, "message", "")).strip()
    if message.rstrip(": ").strip() and not message.endswith(":"):
        return message
    grad = np.asarray(getattr(opt, "jac", np.nan), dtype=float)
    return (
        f"{message.rstrip(': ') or 'stopped'}: the line search found no decrease after {evaluations} "
        f"evaluations (|gradient| = {np.linalg.norm(grad):.3g}, objective {float(getattr(opt, 'fun', np.nan)):.6g}); "
        "a gradient that disagrees with the function, or a non-finite value, is the usual cause"
    )


def fit_record(engine: Engine, problem: Problem, n: int, seed: int = 0) -> dict:
    """The benchmark's end-to-end cell: what a user of an MLE package waits for, from prepare
    (tracing, compiling) through the optimiser's last gradient; no standard errors."""
    record = {"problem": problem.name, "engine": engine.name, "tier": engine.tier, "n": n}
    try:
        result = fit(engine, problem, n, seed=seed, stderr=False)
    except Exception as err:  # noqa: BLE001 -- one failing engine costs one record
        return {**record, "status": "error", "reason": f"{type(err).__name__}: {err}"}
    return {
        **record,
        "status": "ok" if result.converged else "failed",
        "reason": None if result.converged else f"did not converge: {result.message}",
        "fit_s": result.extra["seconds_optimise"],
        "prepare_s": result.seconds_prepare,
        "iterations": result.iterations,
        "gradient_evaluations": result.gradient_evaluations,
        "loglik": result.loglik,
        **({"engine_fit": result.extra["engine_fit"]} if "engine_fit" in result.extra else {}),
    }
