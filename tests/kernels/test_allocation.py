"""The KKT allocation kernel against a plain NumPy reference and SciPy's SLSQP."""
from __future__ import annotations

import math

import numpy as np
import pytest

from attribid.kernels.allocation import Infeasible, Problem, solve
from attribid.kernels.dp_allocation import solve_auto, solve_dp
from attribid.kernels.response import EXPONENTIAL, HILL, NONE
from attribid.models.allocation.slsqp import objective_parts, solve_slsqp


def exp_problem(rng: np.random.Generator, n: int, budget: float, **kw: float) -> Problem:
    kind = np.full(n, EXPONENTIAL, dtype=np.int64)
    params = np.column_stack([rng.uniform(20, 200, n), rng.uniform(300, 3000, n), np.zeros(n)])
    return Problem(budget, rng.uniform(20, 150, n), kw.pop("lo", np.zeros(n)),
                   kw.pop("hi", np.full(n, budget)), kind, params, np.zeros(n, np.int64),
                   np.zeros((n, 3)), **kw)


def mixed_problem(rng: np.random.Generator, n: int, budget: float, **kw: float) -> Problem:
    """Hill (slope <= 1) and exponential conversion curves, exponential impression curves."""
    ck = rng.choice([HILL, EXPONENTIAL], n).astype(np.int64)
    cp = np.column_stack([rng.uniform(20, 200, n), rng.uniform(300, 3000, n), rng.uniform(0.4, 1.0, n)])
    mk = np.full(n, EXPONENTIAL, dtype=np.int64)
    mp = np.column_stack([rng.uniform(1e4, 1e5, n), rng.uniform(1e3, 1e4, n), np.zeros(n)])
    return Problem(budget, rng.uniform(20, 150, n), np.zeros(n), np.full(n, budget), ck, cp, mk, mp,
                   **kw)


def numpy_reference(p: Problem) -> np.ndarray:
    """Exponential curves only, no CPA: closed-form x_i(t) = K ln(a T / (K t)) and bisection on t."""
    a = p.w_revenue * p.value_per_conversion + p.w_acquisitions
    top, k = p.conv_params[:, 0], p.conv_params[:, 1]
    hi = np.minimum(p.hi, p.budget)

    def spend(t: float) -> np.ndarray:
        return np.clip(k * np.log(a * top / (k * t)), p.lo, hi)

    if hi.sum() <= p.budget:
        return hi
    lo_t, hi_t = 1e-12, float((a * top / k).max()) * 2
    for _ in range(200):
        mid = math.sqrt(lo_t * hi_t)
        if spend(mid).sum() > p.budget:
            lo_t = mid
        else:
            hi_t = mid
    return spend(math.sqrt(lo_t * hi_t))


def objective(p: Problem, x: np.ndarray) -> float:
    r, acq, e = objective_parts(p, x)
    return p.w_revenue * r + p.w_acquisitions * acq + p.w_exposure * e


@pytest.mark.parametrize("seed", range(5))
def test_matches_numpy_reference_for_exponential_curves(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = exp_problem(rng, 7, float(rng.uniform(1e3, 2e4)))
    x, cert = solve(p)
    ref = numpy_reference(p)
    np.testing.assert_allclose(x, ref, rtol=1e-7, atol=1e-6 * p.budget)
    assert cert["stationarity"] < 1e-9 and cert["bound_sign"] <= 1e-12
    assert abs(cert["budget_residual"]) < 1e-8 * p.budget


@pytest.mark.parametrize("seed", range(6))
def test_matches_slsqp_and_certificate_holds(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    p = mixed_problem(rng, 7, float(rng.uniform(1e3, 3e4)), w_revenue=1.0,
                      w_acquisitions=float(rng.uniform(0, 50)), w_exposure=float(rng.uniform(0, 1e-2)))
    x, cert = solve(p)
    xs, ok, _ = solve_slsqp(p)
    assert ok
    f, fs = objective(p, x), objective(p, xs)
    # The KKT point is the optimum: SLSQP may not beat it beyond round-off.
    assert f >= fs * (1 - 1e-9)
    assert abs(f - fs) <= 1e-6 * abs(fs)
    assert cert["stationarity"] < 1e-8 and cert["bound_sign"] <= 1e-9
    assert cert["box_residual"] <= 0 and abs(cert["budget_residual"]) < 1e-8 * p.budget


def test_cpa_ceiling_binds_and_matches_slsqp() -> None:
    rng = np.random.default_rng(7)
    p0 = exp_problem(rng, 7, 1e4)
    x0, _ = solve(p0)
    _, acq0, _ = objective_parts(p0, x0)
    ceiling = 0.7 * x0.sum() / acq0  # tighter than the unconstrained optimum's CPA
    p = exp_problem(np.random.default_rng(7), 7, 1e4, max_cpa=ceiling)
    x, cert = solve(p)
    _, acq, _ = objective_parts(p, x)
    assert x.sum() / acq <= ceiling * (1 + 1e-9)
    assert cert["mu"] > 0 and cert["cpa_residual"] <= 1e-6
    xs, ok, _ = solve_slsqp(p)
    assert ok
    assert objective(p, x) >= objective(p, xs) * (1 - 1e-7)


def test_infeasible_cpa_names_the_constraint() -> None:
    p = exp_problem(np.random.default_rng(3), 4, 1e4, lo=np.full(4, 2000.0), max_cpa=0.5)
    with pytest.raises(Infeasible) as err:
        solve(p)
    assert err.value.constraint == "max_cpa"


def test_minimums_over_budget_names_the_budget() -> None:
    p = exp_problem(np.random.default_rng(3), 3, 100.0, lo=np.full(3, 50.0))
    with pytest.raises(Infeasible) as err:
        solve(p)
    assert err.value.constraint == "budget"


def test_zero_budget_spends_nothing() -> None:
    x, cert = solve(exp_problem(np.random.default_rng(1), 5, 0.0))
    assert np.all(x == 0) and cert["box_residual"] <= 0


def test_one_channel_gets_the_budget_up_to_its_max() -> None:
    x, _ = solve(exp_problem(np.random.default_rng(2), 1, 500.0))
    assert x[0] == pytest.approx(500.0)
    x, _ = solve(exp_problem(np.random.default_rng(2), 1, 500.0, hi=np.array([120.0])))
    assert x[0] == pytest.approx(120.0)


def test_all_channels_at_their_bounds() -> None:
    lo = np.array([100.0, 200.0, 300.0])
    x, cert = solve(exp_problem(np.random.default_rng(4), 3, 1000.0, lo=lo, hi=lo.copy()))
    np.testing.assert_array_equal(x, lo)
    assert cert["stationarity"] == 0 and cert["bound_sign"] == 0
    hi = np.array([100.0, 50.0, 25.0])  # maxima sum below the budget: all at max
    x, cert = solve(exp_problem(np.random.default_rng(4), 3, 1000.0, hi=hi))
    np.testing.assert_array_equal(x, hi)
    assert cert["lam"] == 0 and cert["bound_sign"] <= 0


def test_hill_below_one_is_funded_from_zero() -> None:
    """A Hill slope below 1 has infinite marginal return at zero: every channel gets some."""
    rng = np.random.default_rng(5)
    p = mixed_problem(rng, 6, 5000.0)
    x, _ = solve(p)
    assert np.all(x[p.conv_kind == HILL] > 0)


def test_invalid_problem_names_the_field() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="channels\\[1\\]: min > max"):
        exp_problem(rng, 3, 100.0, lo=np.array([0.0, 50.0, 0.0]), hi=np.array([10.0, 10.0, 10.0]))
    with pytest.raises(ValueError, match="budget"):
        exp_problem(rng, 3, float("nan"), hi=np.ones(3))
    with pytest.raises(ValueError, match="conversions.params"):
        Problem(1.0, np.ones(1), np.zeros(1), np.ones(1), np.array([EXPONENTIAL]),
                np.array([[1.0, 0.0, 0.0]]), np.array([NONE]), np.zeros((1, 3)))


# -- S-shaped curves: the DP grid --------------------------------------------------------------

def s_problem(budget: float = 1000.0, max_cpa: float = 0.0) -> Problem:
    kind = np.array([HILL, HILL, EXPONENTIAL], dtype=np.int64)
    params = np.array([[60.0, 400.0, 2.5], [40.0, 200.0, 3.0], [15.0, 300.0, 0.0]])
    return Problem(budget, np.array([10.0, 12.0, 9.0]), np.zeros(3), np.full(3, budget), kind, params,
                   np.zeros(3, np.int64), np.zeros((3, 3)), max_cpa=max_cpa)


def test_dp_is_exact_on_its_grid() -> None:
    p = s_problem()
    grid = 100
    x, cert = solve_dp(p, grid=grid)
    step = p.budget / grid
    best = -np.inf
    for i in range(grid + 1):  # brute force over every split of whole steps
        for j in range(grid + 1 - i):
            xs = np.array([i, j, grid - i - j]) * step
            best = max(best, objective(p, xs))
    assert objective(p, x) == pytest.approx(best, rel=1e-12)
    assert cert["grid_step"] == pytest.approx(step)


def test_dp_agrees_with_kkt_on_concave_curves_within_its_bound() -> None:
    p = exp_problem(np.random.default_rng(9), 5, 8000.0)
    x, _ = solve(p)
    xd, cert = solve_dp(p, grid=800)
    gap = objective(p, x) - objective(p, xd)
    assert -1e-9 <= gap <= cert["gap_bound"]


def test_dp_meets_a_cpa_ceiling_and_auto_picks_the_method() -> None:
    p = s_problem()
    x0, _ = solve_dp(p, grid=200)
    conv0 = objective_parts(p, x0)[1]
    p2 = s_problem(max_cpa=0.9 * x0.sum() / conv0)
    x, cert, method = solve_auto(p2, grid=200)
    assert method == "dp"
    assert x.sum() <= p2.max_cpa * objective_parts(p2, x)[1] * (1 + 1e-9)
    assert solve_auto(exp_problem(np.random.default_rng(0), 3, 10.0))[2] == "kkt"


def test_worthless_channels_stay_within_the_budget() -> None:
    """All marginal returns zero: any feasible plan is optimal, but it must be feasible."""
    p = exp_problem(np.random.default_rng(0), 3, 100.0, w_revenue=0.0, w_exposure=1.0)
    x, cert = solve(p)
    assert x.sum() <= 100.0 and cert["box_residual"] <= 0


@pytest.mark.parametrize("seed", range(20))
def test_random_problems_are_feasible_and_certified(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(1, 9))
    budget = float(rng.choice([0.0, 1.0, 1e3, 1e6]))
    lo = np.where(rng.random(n) < 0.3, rng.uniform(0, budget / (2 * n), n), 0.0)
    hi = np.where(rng.random(n) < 0.3, lo + rng.uniform(0, budget / n, n), budget)
    p = mixed_problem(rng, n, budget, w_revenue=float(rng.uniform(0, 2)),
                      w_acquisitions=float(rng.uniform(0, 50)), w_exposure=float(rng.uniform(0, 1e-3)))
    p = Problem(p.budget, p.value_per_conversion, lo, hi, p.conv_kind, p.conv_params, p.imp_kind,
                p.imp_params, p.w_revenue, p.w_acquisitions, p.w_exposure)
    x, cert = solve(p)
    assert np.all(x >= lo) and np.all(x <= np.minimum(hi, budget) + 1e-9 * max(budget, 1))
    assert x.sum() <= budget * (1 + 1e-9) + 1e-12
    assert cert["stationarity"] < 1e-7 and cert["bound_sign"] < 1e-7
