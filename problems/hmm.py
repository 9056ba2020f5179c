"""A Gaussian hidden Markov model: K = 3 states, T = n observations, the forward algorithm in log space.

    theta = [mu (K), log_sigma (K), trans_logits (K x K, row-major), init_logits (K)]
    log A_ij = W_ij - logsumexp_k W_ik   (each row of A a softmax of the logits W),
    log pi_j = v_j - logsumexp_k v_k,     e_t[j] = log N(y_t | mu_j, sigma_j), sigma_j = exp(log_sigma_j)
    alpha_1 = log pi + e_1,  alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + log A_ij) + e_t[j]
    l(theta) = logsumexp_j alpha_T[j]

``loglik`` writes the recursion over t as ``ops.scan`` of one step, so that each engine runs its own
loop construct (JAX ``lax.scan``; the Python loop, unrolled, everywhere else). The step is composed
from the table (a logsumexp per column of log A, a scalar times a unit vector to place it).

Reference gradient (no AD), by the forward-backward recursions:
    beta_T = 0,  beta_t[i] = logsumexp_j(log A_ij + e_{t+1}[j] + beta_{t+1}[j])
    gamma_t[j] = exp(alpha_t[j] + beta_t[j] - l)                         (posterior state marginals)
    xi_t[i, j] = exp(alpha_t[i] + log A_ij + e_{t+1}[j] + beta_{t+1}[j] - l)   (transition marginals)
    dl/de_t[j] = gamma_t[j], so with z = (y_t - mu_j) / sigma_j:
    dl/dmu_j = sum_t gamma_t[j] z / sigma_j,  dl/dlog_sigma_j = sum_t gamma_t[j] (z^2 - 1)
    N_ij = sum_{t<T} xi_t[i, j],  dl/dW_ij = N_ij - A_ij sum_k N_ik,  dl/dv_j = gamma_1[j] - pi_j

Data: a simulated chain from pi uniform, mu = (-2, 0, 3), sigma = (0.5, 1, 0.7) and sticky
transitions (0.9 on the diagonal, 0.05 elsewhere). Hard point: log_sigma of state 0 = -4 (sigma
0.018): the emission log-densities of the other observations fall to about -1e4, which underflows
exp in a probability-space forward pass but not in log space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from problems.base import LOG_2PI, Block, Data, Problem

K = 3
MU = (-2.0, 0.0, 3.0)
SIGMA = (0.5, 1.0, 0.7)
STAY = 0.9


def _transition() -> np.ndarray:
    a = np.full((K, K), (1.0 - STAY) / (K - 1))
    np.fill_diagonal(a, STAY)
    return a


class HiddenMarkov(Problem):
    name = "hmm"
    max_n = 10_000
    """Beyond it an unrolled recursion (every engine but a scanned one) records 18 operations per step,
    millions of nodes, and the value itself is a sequential loop of n steps."""

    tolerance = 1e-8
    """The gate's floor here: at the hard point (log_sigma[0] = -4) the emission log-densities reach
    about -1e4 and the forward pass adds T of them, so a small gradient entry carries rounding of
    order eps |alpha| relative to the largest: measured against the reference, jax's rho is 4.2e-9
    at T = 1e4 (trans_logits[8]) and below 3e-13 at T <= 100, where 1e-9 holds."""

    def blocks(self, n: int) -> list[Block]:
        return [
            Block("mu", (K,)),
            Block("log_sigma", (K,)),
            Block("trans_logits", (K * K,)),
            Block("init_logits", (K,)),
        ]

    def true_values(self, n: int) -> dict[str, Any]:
        return {
            "mu": np.array(MU),
            "log_sigma": np.log(SIGMA),
            "trans_logits": np.log(_transition()).ravel(),
            "init_logits": np.zeros(K),
        }

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        a = _transition()
        states = np.empty(n, dtype=np.int64)
        states[0] = rng.integers(K)
        for t in range(1, n):
            states[t] = rng.choice(K, p=a[states[t - 1]])
        y = np.array(MU)[states] + np.array(SIGMA)[states] * rng.standard_normal(n)
        units = {f"unit{j}": row for j, row in enumerate(np.eye(K))}  # e_j, to place a scalar at j
        return {"n": n, "y_first": float(y[0]), "y_rest": y[1:], **units}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        mu, log_sigma, w, v = params["mu"], params["log_sigma"], params["trans_logits"], params["init_logits"]
        inv_sigma = ops.exp(-log_sigma)
        units = [data[f"unit{j}"] for j in range(K)]
        rows = [ops.gather(w, np.arange(i * K, (i + 1) * K)) for i in range(K)]
        row_lse = sum(ops.logsumexp(rows[i]) * units[i] for i in range(K))
        log_a_cols = [ops.gather(w, np.arange(j, K * K, K)) - row_lse for j in range(K)]

        def emission(y: Any) -> Any:
            z = (y - mu) * inv_sigma
            return -0.5 * ops.square(z) - log_sigma - 0.5 * LOG_2PI

        def step(alpha: Any, y: Any) -> Any:
            new = emission(y)
            for j in range(K):
                new = new + ops.logsumexp(alpha + log_a_cols[j]) * units[j]
            return new

        alpha = v - ops.logsumexp(v) + emission(data["y_first"])
        return ops.logsumexp(ops.scan(step, alpha, data["y_rest"]))

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        p = self.split(theta, data["n"])
        mu, sigma = p["mu"], np.exp(p["log_sigma"])
        w = p["trans_logits"].reshape(K, K)
        log_a = w - logsumexp(w, axis=1, keepdims=True)
        log_pi = p["init_logits"] - logsumexp(p["init_logits"])
        y = np.concatenate([[data["y_first"]], data["y_rest"]])
        n = len(y)
        z = (y[:, None] - mu) / sigma
        e = -0.5 * z**2 - np.log(sigma) - 0.5 * LOG_2PI
        alpha, beta = np.empty((n, K)), np.zeros((n, K))
        alpha[0] = log_pi + e[0]
        for t in range(1, n):
            alpha[t] = logsumexp(alpha[t - 1][:, None] + log_a, axis=0) + e[t]
        for t in range(n - 2, -1, -1):
            beta[t] = logsumexp(log_a + (e[t + 1] + beta[t + 1])[None, :], axis=1)
        value = float(logsumexp(alpha[-1]))
        gamma = np.exp(alpha + beta - value)
        xi = np.exp(alpha[:-1, :, None] + log_a[None] + (e[1:] + beta[1:])[:, None, :] - value)
        counts = xi.sum(axis=0)
        grad_w = counts - np.exp(log_a) * counts.sum(axis=1, keepdims=True)
        grad = np.concatenate(
            [
                (gamma * z / sigma).sum(axis=0),
                (gamma * (z**2 - 1.0)).sum(axis=0),
                grad_w.ravel(),
                gamma[0] - np.exp(log_pi),
            ]
        )
        return value, grad

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[K] = -4.0
        return theta
