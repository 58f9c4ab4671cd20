"""Budget allocation over concave response curves: KKT conditions solved by bisection.

Maximise ``sum_i A_i c_i(x_i) + E_i m_i(x_i)`` (``A_i = w_revenue * value_i + w_acquisitions``,
``E_i = w_exposure``; ``c`` conversions, ``m`` impressions) subject to ``sum x <= budget``,
``lo <= x <= hi`` and optionally ``sum x <= max_cpa * sum c(x)``.
With concave curves the optimum equalises the marginal return ``h_i(x) = A_i c_i' + E_i m_i'
+ mu K c_i'`` at ``t = lam + mu`` over channels not at a bound (``lam`` prices the budget, ``mu``
the CPA ceiling). Each channel's ``x_i(t)`` comes from a safeguarded Newton step on ``log h``;
``t`` from a bracketed Newton/bisection on the budget; ``mu`` from regula falsi on the CPA residual.
"""
from __future__ import annotations

import math

import numpy as np

from attribid.kernels.config import jit_nogil
from attribid.kernels.problem import Infeasible, InvalidProblem, Problem, check_problem
from attribid.kernels.response import HILL, curve_derivatives, curve_value

# Problem, Infeasible and InvalidProblem live in attribid.kernels.problem; re-exported here.
__all__ = ["Infeasible", "InvalidProblem", "Problem", "check_problem", "solve", "solve_into", "STAT_NAMES",
           "OK", "INFEASIBLE_BUDGET", "INFEASIBLE_CPA"]

OK = 0
INFEASIBLE_BUDGET = 1
INFEASIBLE_CPA = 2
#: layout of the kernel's ``stats`` output
STAT_NAMES = ("status", "t", "lam", "mu", "stationarity", "bound_sign", "budget_residual",
              "cpa_residual", "box_residual", "solves")
_NSTAT = len(STAT_NAMES)


@jit_nogil
def _h(i, x, A, E, ck, cp, mk, mp):
    """Marginal weighted return of channel i at spend x, and its derivative."""
    h = 0.0
    d = 0.0
    if A[i] != 0.0:
        f1, f2 = curve_derivatives(ck[i], cp[i, 0], cp[i, 1], cp[i, 2], x)
        h += A[i] * f1
        d += A[i] * f2
    if E[i] != 0.0:
        f1, f2 = curve_derivatives(mk[i], mp[i, 0], mp[i, 1], mp[i, 2], x)
        h += E[i] * f1
        d += E[i] * f2
    return h, d


@jit_nogil
def _spend_at(i, t, lo, hi, h_lo, h_hi, A, E, ck, cp, mk, mp, guess):
    """Spend of channel i where its marginal return equals t, clipped to [lo, hi]."""
    if h_hi >= t:
        return hi
    if h_lo <= t:
        return lo
    a = lo
    b = hi
    x = guess if lo < guess < hi else 0.5 * (lo + b)
    logt = math.log(t)
    for _ in range(200):
        h, d = _h(i, x, A, E, ck, cp, mk, mp)
        if h > t:
            a = x
        else:
            b = x
        g = math.log(h) - logt if h > 0.0 else -np.inf
        if abs(g) <= 1e-14:
            return x
        # Newton on log h: in x for an exponential curve (exact in one step), in log x for a
        # Hill curve (whose log marginal is nearly linear in log x away from the half point).
        if h > 0.0 and d < 0.0:
            step = g * h / d
            xn = x * math.exp(-step / x) if ck[i] == HILL and x > 0.0 else x - step
        else:
            xn = 0.5 * (a + b)
        if not (a < xn < b):
            xn = 0.5 * (a + b)
        if abs(xn - x) <= 1e-13 * (1.0 + abs(x)) or b - a <= 1e-13 * (1.0 + abs(b)):
            return xn
        x = xn
    return x


@jit_nogil
def _fill(t, lo, hi, h_lo, h_hi, A, E, ck, cp, mk, mp, x):
    """x_i(t) for every channel; returns sum x and d(sum x)/d(log t)."""
    s = 0.0
    ds = 0.0
    for i in range(x.shape[0]):
        x[i] = _spend_at(i, t, lo[i], hi[i], h_lo[i], h_hi[i], A, E, ck, cp, mk, mp, x[i])
        s += x[i]
        if lo[i] < x[i] < hi[i]:
            h, d = _h(i, x[i], A, E, ck, cp, mk, mp)
            if d < 0.0:
                ds += h / d
    return s, ds


@jit_nogil
def _solve_budget(budget, p, lo, hi, A, E, ck, cp, mk, mp, x, hist):
    """Maximise sum A c + E m - p * sum x under the box and the budget; returns t = p + lam.

    Row k of ``hist`` (if it has one) gets iteration k's (t, sum x - budget).
    """
    n = x.shape[0]
    hist[:, :] = np.nan
    # Marginals at the bounds do not depend on t: computed once per solve.
    h_lo = np.empty(n)
    h_hi = np.empty(n)
    for i in range(n):
        h_lo[i], _ = _h(i, lo[i], A, E, ck, cp, mk, mp)
        h_hi[i], _ = _h(i, hi[i], A, E, ck, cp, mk, mp)
        x[i] = hi[i]
    s_top = hi.sum()
    if p > 0.0:
        s, _ = _fill(p, lo, hi, h_lo, h_hi, A, E, ck, cp, mk, mp, x)
        if s <= budget:
            return p
    elif s_top <= budget:
        return 0.0
    # Bracket t: S(t) decreases from sum(hi) to sum(lo).
    t = max(p, 1e-300)
    for i in range(n):
        h, _ = _h(i, min(max(budget / n, lo[i]), hi[i]), A, E, ck, cp, mk, mp)
        if np.isfinite(h):
            t = max(t, h)
    t_lo = max(p, 0.0)
    t_hi = np.inf
    for it in range(2000):
        s, ds = _fill(t, lo, hi, h_lo, h_hi, A, E, ck, cp, mk, mp, x)
        if it < hist.shape[0]:
            hist[it, 0] = t
            hist[it, 1] = s - budget
        if s > budget:
            t_lo = t
        else:
            t_hi = t
        err = s - budget
        if abs(err) <= 1e-12 * (budget + 1e-300) or (t_hi - t_lo) <= 1e-15 * t_hi:
            break
        if ds < 0.0:
            tn = t * math.exp(-err / ds)
        elif t_hi == np.inf:
            tn = t * 4.0
        else:
            tn = 0.5 * (t_lo + t_hi)
        if not (t_lo < tn < t_hi):
            tn = 0.5 * (t_lo + t_hi) if t_hi < np.inf else t * 4.0
        if tn <= 1e-300:
            break  # every marginal return is zero: any feasible spend is optimal
        t = tn
    if s > budget * (1.0 + 1e-9) and t_hi < np.inf:
        # Stopped without converging (flat returns): end on the feasible side of the budget.
        t = t_hi
        _fill(t, lo, hi, h_lo, h_hi, A, E, ck, cp, mk, mp, x)
    return t


@jit_nogil
def _cpa_residual(x, K, ck, cp):
    s = 0.0
    c = 0.0
    for i in range(x.shape[0]):
        s += x[i]
        c += curve_value(ck[i], cp[i, 0], cp[i, 1], cp[i, 2], x[i])
    return s - K * c


@jit_nogil
def _solve(budget, A, E, ck, cp, mk, mp, lo, hi, max_cpa, x, stats, hist):
    n = x.shape[0]
    stats[:] = 0.0
    if lo.sum() > budget * (1.0 + 1e-12):
        stats[0] = INFEASIBLE_BUDGET
        return
    for i in range(n):
        x[i] = lo[i]
    mu = 0.0
    t = _solve_budget(budget, 0.0, lo, hi, A, E, ck, cp, mk, mp, x, hist)
    solves = 1
    scale = max(budget, 1e-300)
    r0 = _cpa_residual(x, max_cpa, ck, cp) if max_cpa > 0.0 else 0.0
    if r0 > 1e-9 * scale:
        # The least CPA reachable: maximise K * conversions - spend.
        Kv = np.full(n, max_cpa)
        Z = np.zeros(n)
        _solve_budget(budget, 1.0, lo, hi, Kv, Z, ck, cp, mk, mp, x, hist[:0])
        solves += 1
        # Unreachable: violated even at the least-CPA point, or met only by spending nothing
        # beyond the minimums (every channel's best CPA is above the ceiling).
        idle = x.sum() - lo.sum() <= 1e-9 * scale and budget - lo.sum() > 1e-9 * scale
        if _cpa_residual(x, max_cpa, ck, cp) > 1e-9 * scale or idle:
            stats[0] = INFEASIBLE_CPA
            stats[7] = _cpa_residual(x, max_cpa, ck, cp)
            return
        A2 = A + max_cpa * 0.0
        m_lo, r_lo = 0.0, r0
        m_hi = 1.0
        while True:
            for i in range(n):
                A2[i] = A[i] + m_hi * max_cpa
            _solve_budget(budget, m_hi, lo, hi, A2, E, ck, cp, mk, mp, x, hist[:0])
            solves += 1
            r_hi = _cpa_residual(x, max_cpa, ck, cp)
            if r_hi <= 0.0 or m_hi > 1e300:
                break
            m_lo, r_lo = m_hi, r_hi
            m_hi *= 8.0
        # Illinois regula falsi on r(mu), which is non-increasing in mu.
        side = 0
        for _ in range(200):
            mu = m_hi - r_hi * (m_hi - m_lo) / (r_hi - r_lo) if r_hi != r_lo else 0.5 * (m_lo + m_hi)
            if not (m_lo < mu < m_hi):
                mu = 0.5 * (m_lo + m_hi)
            for i in range(n):
                A2[i] = A[i] + mu * max_cpa
            t = _solve_budget(budget, mu, lo, hi, A2, E, ck, cp, mk, mp, x, hist[:0])
            solves += 1
            r = _cpa_residual(x, max_cpa, ck, cp)
            if r > 0.0:
                m_lo, r_lo = mu, r
                if side == -1:
                    r_hi *= 0.5
                side = -1
            else:
                m_hi, r_hi = mu, r
                if side == 1:
                    r_lo *= 0.5
                side = 1
            if abs(r) <= 1e-10 * scale or m_hi - m_lo <= 1e-14 * m_hi:
                break
        # Finish on the feasible side of the ceiling.
        mu = m_hi
        for i in range(n):
            A2[i] = A[i] + mu * max_cpa
        t = _solve_budget(budget, mu, lo, hi, A2, E, ck, cp, mk, mp, x, hist)
        solves += 1
        A = A2
    _certify(t, mu, budget, A, E, ck, cp, mk, mp, lo, hi, max_cpa, x, stats)
    stats[9] = solves


@jit_nogil
def _certify(t, mu, budget, A, E, ck, cp, mk, mp, lo, hi, max_cpa, x, stats):
    """KKT residuals of x: equal marginals off the bounds, right signs at them, feasibility."""
    stationarity = 0.0
    sign = 0.0
    box = 0.0
    tol = 1e-9 * max(budget, 1e-300)
    denom = max(t, 1e-300)
    for i in range(x.shape[0]):
        h, _ = _h(i, x[i], A, E, ck, cp, mk, mp)
        box = max(box, lo[i] - x[i], x[i] - hi[i])
        if hi[i] - lo[i] <= tol:
            continue
        if x[i] <= lo[i] + tol:
            sign = max(sign, (h - t) / denom)  # at the floor the channel may not want more
        elif x[i] >= hi[i] - tol:
            sign = max(sign, (t - h) / denom)  # at the ceiling it must still want more
        else:
            stationarity = max(stationarity, abs(h - t) / denom)
    stats[0] = OK
    stats[1] = t
    stats[2] = max(t - mu, 0.0)
    stats[3] = mu
    stats[4] = stationarity
    stats[5] = sign
    stats[6] = x.sum() - budget
    stats[7] = _cpa_residual(x, max_cpa, ck, cp) if max_cpa > 0.0 else 0.0
    stats[8] = box


_NO_HISTORY = np.empty((0, 2))


def solve_into(p: Problem, x: np.ndarray, stats: np.ndarray, history: np.ndarray = _NO_HISTORY) -> None:
    """Solve ``p`` into preallocated ``x`` (float64 [C]) and ``stats`` (float64 [10], STAT_NAMES).

    Status ``stats[0]`` is OK, INFEASIBLE_BUDGET or INFEASIBLE_CPA; no exception on this path.
    ``history`` (float64 [H, 2]) receives the final budget bisection's (t, sum x - budget) per
    iteration, NaN past the last one: the solver's convergence history.
    """
    _solve(float(p.budget), p._a, p._e, p.conv_kind, p.conv_params,  # type: ignore[attr-defined]
           p.imp_kind, p.imp_params, p.lo, p._hi, float(p.max_cpa), x, stats, history)  # type: ignore[attr-defined]


def solve(p: Problem) -> tuple[np.ndarray, dict[str, float]]:
    """Optimal spend per channel and its KKT certificate; raises Infeasible, and
    InvalidProblem when the numbers are too extreme for a finite answer.

    >>> k = np.array([2, 2]); c = np.array([[10.0, 5.0, 0.0], [10.0, 5.0, 0.0]])
    >>> x, cert = solve(Problem(10.0, np.ones(2), np.zeros(2), np.full(2, 10.0), k, c,
    ...                         np.zeros(2, np.int64), np.zeros((2, 3))))
    >>> x.round(6).tolist()
    [5.0, 5.0]
    """
    x = np.zeros(p.n)
    stats = np.zeros(_NSTAT)
    solve_into(p, x, stats)
    status = int(stats[0])
    if status == INFEASIBLE_BUDGET:
        raise Infeasible("budget", f"sum of channel minimums {p.lo.sum():g} exceeds the budget {p.budget:g}")
    if status == INFEASIBLE_CPA:
        raise Infeasible("max_cpa", f"a cost per acquisition of {p.max_cpa:g} is unreachable within "
                         "the budget and channel bounds")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(stats))):
        raise InvalidProblem("budget", "no finite allocation: the budget, bounds and curves are "
                             "too extreme for float64")
    return x, dict(zip(STAT_NAMES[1:], stats[1:].tolist()))
