"""Exact allocation on a spend grid, for curves that are not concave (Hill slope > 1).

S-shaped curves break the KKT argument (equal marginals can be a minimum), so the budget above
the channels' minimums is cut into ``grid`` equal steps and a dynamic programme over channels
finds the best split of whole steps: exact on the grid, and within ``gap_bound`` (each channel's
steepest slope times one step, summed) of the continuous optimum. A CPA ceiling is priced by a
multiplier found by bisection: the result meets the ceiling, but with non-concave curves it may
fall short of the best ceiling-respecting split (Lagrangian duality gap).
"""
from __future__ import annotations

import numpy as np

from attribid.kernels.config import jit_nogil
from attribid.kernels.allocation import Infeasible, Problem, solve
from attribid.kernels.response import curve_value, is_concave


@jit_nogil
def _tables(delta, steps, lo, A, E, ck, cp, mk, mp, mu, K):
    n = lo.shape[0]
    kmax = steps.max()
    v = np.full((n, kmax + 1), -np.inf)
    conv = np.zeros((n, kmax + 1))
    for i in range(n):
        for k in range(steps[i] + 1):
            x = lo[i] + k * delta
            c = curve_value(ck[i], cp[i, 0], cp[i, 1], cp[i, 2], x)
            m = curve_value(mk[i], mp[i, 0], mp[i, 1], mp[i, 2], x)
            conv[i, k] = c
            v[i, k] = A[i] * c + E[i] * m + mu * (K * c - x)
    return v, conv


@jit_nogil
def _dp(v, steps, grid, choice):
    """Best total over channels using at most ``grid`` steps; fills choice[i, j]."""
    n = v.shape[0]
    best = np.zeros(grid + 1)
    nxt = np.empty(grid + 1)
    for i in range(n):
        for j in range(grid + 1):
            top = -np.inf
            arg = 0
            for k in range(min(j, steps[i]) + 1):
                val = best[j - k] + v[i, k]
                if val > top:
                    top = val
                    arg = k
            nxt[j] = top
            choice[i, j] = arg
        best[:] = nxt
    return best


def _run(p: Problem, grid: int, mu: float) -> tuple[np.ndarray, float]:
    a, e = p.weights()
    free = p.budget - p.lo.sum()
    hi = np.maximum(np.minimum(p.hi, p.budget), p.lo)
    if free <= 0 or grid <= 0:
        return p.lo.copy(), 0.0
    delta = free / grid
    steps = np.minimum(np.floor((hi - p.lo) / delta + 1e-9), grid).astype(np.int64)
    v, _ = _tables(delta, steps, p.lo, a, e, p.conv_kind, p.conv_params, p.imp_kind, p.imp_params,
                   mu, p.max_cpa)
    choice = np.zeros((p.n, grid + 1), dtype=np.int64)
    best = _dp(v, steps, grid, choice)
    j = int(np.argmax(best))
    k = np.zeros(p.n, dtype=np.int64)
    for i in range(p.n - 1, -1, -1):
        k[i] = choice[i, j]
        j -= k[i]
    # Past a channel's last step v is -inf, and -inf - -inf is NaN: such slopes are dropped.
    with np.errstate(invalid="ignore"):
        slopes = np.diff(v, axis=1)
    gap = float(np.nansum(np.max(np.where(np.isfinite(slopes), np.maximum(slopes, 0), 0), axis=1)))
    return p.lo + k * delta, gap


def _cpa_gap(p: Problem, x: np.ndarray) -> float:
    params = p.conv_params
    conv = 0.0
    for i in range(p.n):
        conv += float(curve_value(int(p.conv_kind[i]), float(params[i, 0]), float(params[i, 1]),
                                  float(params[i, 2]), float(x[i])))
    return float(x.sum() - p.max_cpa * conv)


def solve_dp(p: Problem, *, grid: int = 1000) -> tuple[np.ndarray, dict[str, float]]:
    """Best spend per channel on a grid of ``grid`` steps; works for any curve shape.

    >>> k = np.array([1, 1]); c = np.array([[10.0, 5.0, 3.0], [10.0, 5.0, 3.0]])
    >>> x, cert = solve_dp(Problem(8.0, np.ones(2), np.zeros(2), np.full(2, 8.0), k, c,
    ...                            k * 0, c * 0), grid=8)
    >>> sorted(x.tolist())   # S-shaped: all on one channel beats an even split
    [0.0, 8.0]
    """
    if p.lo.sum() > p.budget * (1 + 1e-12):
        raise Infeasible("budget", f"sum of channel minimums {p.lo.sum():g} exceeds the budget {p.budget:g}")
    x, gap = _run(p, grid, 0.0)
    mu = 0.0
    scale = max(p.budget, 1e-300)
    if p.max_cpa > 0 and _cpa_gap(p, x) > 1e-9 * scale:
        m_hi = 1.0
        while True:
            x_hi, _ = _run(p, grid, m_hi)
            if _cpa_gap(p, x_hi) <= 1e-9 * scale:
                break
            if m_hi > 1e12:
                raise Infeasible("max_cpa", f"a cost per acquisition of {p.max_cpa:g} is unreachable "
                                 "on the spend grid")
            m_hi *= 4.0
        m_lo = 0.0
        for _ in range(40):
            mid = 0.5 * (m_lo + m_hi)
            if _cpa_gap(p, _run(p, grid, mid)[0]) <= 1e-9 * scale:
                m_hi = mid
            else:
                m_lo = mid
        mu = m_hi
        x, gap = _run(p, grid, mu)
    free = max(p.budget - p.lo.sum(), 0.0)
    return x, {"grid_step": free / grid if grid > 0 else 0.0, "gap_bound": gap, "mu": mu,
               "budget_residual": float(x.sum() - p.budget),
               "cpa_residual": _cpa_gap(p, x) if p.max_cpa > 0 else 0.0,
               "box_residual": float(max((p.lo - x).max(), (x - np.maximum(p.hi, p.lo)).max(), 0.0))}


def solve_auto(p: Problem, *, grid: int = 1000) -> tuple[np.ndarray, dict[str, float], str]:
    """KKT bisection for concave curves, the DP grid otherwise; returns (x, certificate, method).

    >>> k = np.array([2]); c = np.array([[10.0, 5.0, 0.0]])
    >>> solve_auto(Problem(4.0, np.ones(1), np.zeros(1), np.full(1, 4.0), k, c, k * 0, c * 0))[2]
    'kkt'
    """
    if is_concave(p.conv_kind, p.conv_params) and is_concave(p.imp_kind, p.imp_params):
        x, cert = solve(p)
        return x, cert, "kkt"
    x, cert = solve_dp(p, grid=grid)
    return x, cert, "dp"
