"""The spend-grid allocation against brute-force enumeration of every split of the grid."""
from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from attribid.kernels.allocation import Infeasible, Problem
from attribid.kernels.dp_allocation import solve_dp
from attribid.kernels.response import EXPONENTIAL, HILL, NONE


def curve(kind: int, p: np.ndarray, x: float) -> float:
    """Plain NumPy curve: Hill or exponential, 0 at or below zero spend."""
    if x <= 0 or kind == NONE:
        return 0.0
    if kind == HILL:
        r = (x / p[1]) ** p[2]
        return float(p[0] * r / (1 + r))
    return float(p[0] * -np.expm1(-x / p[1]))


def value(p: Problem, x: np.ndarray) -> float:
    a, e = p.weights()
    return sum(a[i] * curve(p.conv_kind[i], p.conv_params[i], x[i])
               + e[i] * curve(p.imp_kind[i], p.imp_params[i], x[i]) for i in range(p.n))


def random_problem(rng: np.random.Generator, n: int) -> Problem:
    ck = rng.choice([HILL, EXPONENTIAL], n).astype(np.int64)
    cp = np.column_stack([rng.uniform(5, 50, n), rng.uniform(20, 200, n), rng.uniform(1.2, 4, n)])
    mk = rng.choice([NONE, EXPONENTIAL], n).astype(np.int64)
    mp = np.column_stack([rng.uniform(100, 1000, n), rng.uniform(50, 500, n), np.zeros(n)])
    lo = np.round(rng.uniform(0, 20, n), 1)
    budget = float(lo.sum() + rng.uniform(50, 300))
    hi = np.where(rng.random(n) < 0.5, lo + rng.uniform(10, 150, n), budget)
    return Problem(budget, rng.uniform(1, 10, n), lo, hi, ck, cp, mk, mp, w_exposure=0.01)


def brute_force(p: Problem, grid: int) -> float:
    """The best value over every whole-step split that respects the bounds."""
    delta = (p.budget - p.lo.sum()) / grid
    hi = np.maximum(np.minimum(p.hi, p.budget), p.lo)
    steps = np.minimum(np.floor((hi - p.lo) / delta + 1e-9), grid).astype(int)
    best = -np.inf
    for k in product(*(range(s + 1) for s in steps)):
        if sum(k) <= grid:
            best = max(best, value(p, p.lo + np.array(k) * delta))
    return best


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_matches_brute_force_on_its_grid(n: int, seed: int) -> None:
    p = random_problem(np.random.default_rng(10 * n + seed), n)
    grid = 24
    x, cert = solve_dp(p, grid=grid)
    assert value(p, x) == pytest.approx(brute_force(p, grid), rel=1e-12, abs=1e-12)
    assert x.sum() <= p.budget * (1 + 1e-12)
    assert np.all(x >= p.lo - 1e-12) and np.all(x <= np.maximum(p.hi, p.lo) + 1e-9)
    assert cert["grid_step"] == pytest.approx((p.budget - p.lo.sum()) / grid)


def test_edges_no_free_budget_no_grid_and_infeasible() -> None:
    rng = np.random.default_rng(1)
    p = random_problem(rng, 3)
    tight = Problem(float(p.lo.sum()), p.value_per_conversion, p.lo, p.hi, p.conv_kind,
                    p.conv_params, p.imp_kind, p.imp_params)
    x, _ = solve_dp(tight, grid=10)
    np.testing.assert_array_equal(x, p.lo)
    x, cert = solve_dp(p, grid=0)
    np.testing.assert_array_equal(x, p.lo)
    over = Problem(float(p.lo.sum()) / 2, p.value_per_conversion, p.lo, p.hi, p.conv_kind,
                   p.conv_params, p.imp_kind, p.imp_params)
    if p.lo.sum() > 0:
        with pytest.raises(Infeasible, match="budget"):
            solve_dp(over, grid=10)
