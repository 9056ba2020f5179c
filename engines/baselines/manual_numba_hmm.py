"""The hand-written ``manual-numba`` kernel of ``hmm``: forward-backward in numba, no AD.

K states, T steps; log A = W - logsumexp over each row of W, log pi = v - logsumexp(v),
e_t[j] = -(1/2) z_tj^2 - log sigma_j - (1/2) log(2 pi), z_tj = (y_t - mu_j) / sigma_j:
    alpha_1 = log pi + e_1,  alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + log A_ij) + e_t[j]
    beta_T = 0,  beta_t[i] = logsumexp_j(log A_ij + e_{t+1}[j] + beta_{t+1}[j]),  l = logsumexp(alpha_T)
    gamma_t = exp(alpha_t + beta_t - l),  xi_t[i, j] = exp(alpha_t[i] + log A_ij + e_{t+1}[j] + beta_{t+1}[j] - l)
    dl/dmu_j = sum_t gamma_tj z_tj / sigma_j,  dl/dlog_sigma_j = sum_t gamma_tj (z_tj^2 - 1)
    N = sum_t xi_t,  dl/dW_ij = N_ij - A_ij sum_k N_ik,  dl/dv = gamma_1 - pi

The problem's own reference (``problems.hmm``) in one compiled pass each way, alpha and e kept
(2 K T doubles), beta carried as one K-vector; the transition counts accumulate in the backward pass.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from problems.base import LOG_2PI


@numba.njit(cache=True)
def _lse(x):
    m = x.max()
    s = 0.0
    for v in x:
        s += math.exp(v - m)
    return m + math.log(s)


@numba.njit(cache=True)
def hmm_kernel(theta, y):
    k = 3
    t_len = y.size
    mu, log_sigma = theta[0:k], theta[k : 2 * k]
    w = theta[2 * k : 2 * k + k * k].reshape((k, k))
    v = theta[2 * k + k * k :]
    log_a = np.empty((k, k))
    for i in range(k):
        log_a[i] = w[i] - _lse(w[i])
    log_pi = v - _lse(v)
    sigma = np.exp(log_sigma)
    e = np.empty((t_len, k))
    for t in range(t_len):
        for j in range(k):
            z = (y[t] - mu[j]) / sigma[j]
            e[t, j] = -0.5 * z * z - log_sigma[j] - 0.5 * LOG_2PI
    alpha = np.empty((t_len, k))
    alpha[0] = log_pi + e[0]
    col = np.empty(k)
    for t in range(1, t_len):
        for j in range(k):
            for i in range(k):
                col[i] = alpha[t - 1, i] + log_a[i, j]
            alpha[t, j] = _lse(col) + e[t, j]
    value = _lse(alpha[t_len - 1])
    g_mu, g_ls = np.zeros(k), np.zeros(k)
    counts = np.zeros((k, k))
    beta = np.zeros(k)
    nxt = np.empty(k)
    for t in range(t_len - 1, -1, -1):
        for j in range(k):
            gamma = math.exp(alpha[t, j] + beta[j] - value)
            z = (y[t] - mu[j]) / sigma[j]
            g_mu[j] += gamma * z / sigma[j]
            g_ls[j] += gamma * (z * z - 1.0)
        if t == 0:
            break
        for j in range(k):
            nxt[j] = e[t, j] + beta[j]
        for i in range(k):
            for j in range(k):
                counts[i, j] += math.exp(alpha[t - 1, i] + log_a[i, j] + nxt[j] - value)
        for i in range(k):
            for j in range(k):
                col[j] = log_a[i, j] + nxt[j]
            beta[i] = _lse(col)  # beta_{t-1}; nxt holds beta_t
    grad = np.empty(theta.size)
    grad[0:k] = g_mu
    grad[k : 2 * k] = g_ls
    for i in range(k):
        row = counts[i].sum()
        for j in range(k):
            grad[2 * k + i * k + j] = counts[i, j] - math.exp(log_a[i, j]) * row
    for j in range(k):
        grad[2 * k + k * k + j] = math.exp(alpha[0, j] + beta[j] - value) - math.exp(log_pi[j])
    return value, grad
