"""Second opinion on an allocation: SciPy's SLSQP on the same problem, scaled.

Unscaled, SLSQP stalls on these problems (spend in the thousands, marginals near 1e-3), so it
works on ``z = x / budget`` with the objective divided by its value at the starting point, and
with analytic gradients.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from attribid.kernels.allocation import Problem
from attribid.kernels.response import marginals, values


def _start(p: Problem, hi: np.ndarray) -> np.ndarray:
    """A feasible-in-the-box start: minimums plus the rest spread in proportion to room."""
    room = hi - p.lo
    rest = max(p.budget - p.lo.sum(), 0.0)
    share = room / room.sum() if room.sum() > 0 else np.zeros_like(room)
    return np.minimum(p.lo + share * rest, hi)


def objective_parts(p: Problem, x: np.ndarray) -> tuple[float, float, float]:
    """(revenue, acquisitions, exposure) of spend ``x`` under the problem's curves.

    >>> k = np.array([2]); c = np.array([[10.0, 5.0, 0.0]])
    >>> pr = Problem(5.0, np.ones(1), np.zeros(1), np.full(1, 5.0), k, c, k * 0, c * 0)
    >>> round(objective_parts(pr, np.array([5.0]))[1], 3)
    6.321
    """
    conv = values(p.conv_kind, p.conv_params, x)
    imp = values(p.imp_kind, p.imp_params, x)
    return float(p.value_per_conversion @ conv), float(conv.sum()), float(imp.sum())


def solve_slsqp(p: Problem, *, max_iter: int = 500) -> tuple[np.ndarray, bool, int]:
    """SLSQP's spend per channel, whether it reports success, and its iteration count.

    >>> k = np.array([2, 2]); c = np.array([[10.0, 5.0, 0.0], [10.0, 5.0, 0.0]])
    >>> x, ok, _ = solve_slsqp(Problem(10.0, np.ones(2), np.zeros(2), np.full(2, 10.0), k, c,
    ...                                 k * 0, c * 0))
    >>> ok, x.round(4).tolist()
    (True, [5.0, 5.0])
    """
    b = max(p.budget, 1e-12)
    hi = np.maximum(np.minimum(p.hi, p.budget), p.lo)
    a, e = p.weights()
    # A tiny floor keeps gradients finite for Hill slopes below 1 at zero spend.
    floor = np.maximum(p.lo, 1e-9 * b)

    def f_raw(x: np.ndarray) -> float:
        return float(a @ values(p.conv_kind, p.conv_params, x) + e @ values(p.imp_kind, p.imp_params, x))

    x0 = _start(p, hi)
    f0 = max(abs(f_raw(x0)), 1e-12)

    def fun(z: np.ndarray) -> float:
        return -f_raw(z * b) / f0

    def jac(z: np.ndarray) -> np.ndarray:
        x = np.maximum(z * b, floor)
        g = a * marginals(p.conv_kind, p.conv_params, x) + e * marginals(p.imp_kind, p.imp_params, x)
        return -g * b / f0

    cons = [{"type": "ineq", "fun": lambda z: 1.0 - z.sum(), "jac": lambda z: -np.ones_like(z)}]
    if p.max_cpa > 0:
        k = p.max_cpa
        cons.append({
            "type": "ineq",
            "fun": lambda z: (k * values(p.conv_kind, p.conv_params, z * b).sum() - z.sum() * b) / b,
            "jac": lambda z: k * marginals(p.conv_kind, p.conv_params, np.maximum(z * b, floor)) - 1.0,
        })
    res = minimize(fun, x0 / b, jac=jac, method="SLSQP", bounds=list(zip(p.lo / b, hi / b)),
                   constraints=cons, options={"maxiter": max_iter, "ftol": 1e-12})
    x = np.clip(res.x * b, p.lo, hi)
    return x, bool(res.success), int(res.nit)
