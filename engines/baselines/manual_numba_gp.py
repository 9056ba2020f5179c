"""The hand-written ``manual-numba`` kernel of ``gp``: the reference's algebra in numba, no AD.

    K = amp^2 E + noise^2 I = L L^T (LAPACK through ``np.linalg.cholesky``), a = K^{-1} y by forward
    and back substitution, K^{-1} = L^{-T} L^{-1} (L^{-1} by forward substitution, n^3 / 3, then one
    BLAS product), W = a a^T - K^{-1}:
    l = -(1/2) y . a - sum_j log L_jj - (n/2) log(2 pi)
    dl/dlog_amp = sum_ij W_ij amp^2 E_ij,  dl/dlog_len = (1/2) sum_ij W_ij amp^2 E_ij D_ij / len^2,
    dl/dlog_noise = noise^2 tr(W)

Not fastmath: at the hard point (log_noise = -6) K is nearly singular and reassociated sums would
spend digits the tolerance does not have to spare.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from problems.base import LOG_2PI


@numba.njit(cache=True)
def gp_kernel(theta, d, y):
    n = y.size
    amp2 = math.exp(2.0 * theta[0])
    inv_len2 = math.exp(-2.0 * theta[1])
    noise2 = math.exp(2.0 * theta[2])
    e = np.empty((n, n))
    k = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            e[i, j] = amp2 * math.exp(-0.5 * inv_len2 * d[i, j])
            k[i, j] = e[i, j]
        k[i, i] += noise2
    chol = np.linalg.cholesky(k)
    z = np.empty(n)  # L z = y
    for i in range(n):
        s = y[i]
        for j in range(i):
            s -= chol[i, j] * z[j]
        z[i] = s / chol[i, i]
    a = np.empty(n)  # L^T a = z
    for i in range(n - 1, -1, -1):
        s = z[i]
        for j in range(i + 1, n):
            s -= chol[j, i] * a[j]
        a[i] = s / chol[i, i]
    linv = np.zeros((n, n))  # L linv = I, column by column (lower triangular)
    for c in range(n):
        linv[c, c] = 1.0 / chol[c, c]
        for i in range(c + 1, n):
            s = 0.0
            for j in range(c, i):
                s -= chol[i, j] * linv[j, c]
            linv[i, c] = s / chol[i, i]
    k_inv = linv.T @ linv
    value = -0.5 * n * LOG_2PI
    for i in range(n):
        value -= 0.5 * z[i] * z[i] + math.log(chol[i, i])
    g_amp = 0.0
    g_len = 0.0
    trace = 0.0
    for i in range(n):
        for j in range(n):
            w = a[i] * a[j] - k_inv[i, j]
            g_amp += w * e[i, j]
            g_len += w * e[i, j] * d[i, j]
        trace += a[i] * a[i] - k_inv[i, i]
    grad = np.empty(3)
    grad[0] = g_amp
    grad[1] = 0.5 * g_len * inv_len2
    grad[2] = noise2 * trace
    return value, grad
