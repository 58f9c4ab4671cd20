"""Response curves against their NumPy formulas and finite differences; curve fitting."""
from __future__ import annotations

import math

import numpy as np
import pytest

from attribid.kernels import fitting
from attribid.kernels.response import (EXPONENTIAL, HILL, NONE, curve_curvature, curve_marginal,
                                        is_concave, marginals, values)


def hill(x: np.ndarray, top: float, half: float, slope: float) -> np.ndarray:
    return top * x**slope / (half**slope + x**slope)


def expo(x: np.ndarray, top: float, scale: float) -> np.ndarray:
    return -top * np.expm1(-x / scale)


XS = np.array([0.0, 1e-9, 0.3, 1.0, 7.5, 40.0, 1e4, 1e12])


@pytest.mark.parametrize("slope", [0.3, 1.0, 2.5])
def test_hill_matches_formula(slope: float) -> None:
    n = XS.shape[0]
    kind = np.full(n, HILL, dtype=np.int64)
    params = np.tile([12.0, 5.0, slope], (n, 1))
    np.testing.assert_allclose(values(kind, params, XS), hill(XS, 12.0, 5.0, slope), rtol=1e-12)


def test_exponential_and_none_match_formula() -> None:
    n = XS.shape[0]
    params = np.tile([12.0, 5.0, 0.0], (n, 1))
    got = values(np.full(n, EXPONENTIAL, dtype=np.int64), params, XS)
    np.testing.assert_allclose(got, expo(XS, 12.0, 5.0), rtol=1e-12)
    assert np.all(values(np.full(n, NONE, dtype=np.int64), params, XS) == 0)


@pytest.mark.parametrize("kind,slope", [(HILL, 0.5), (HILL, 1.0), (HILL, 3.0), (EXPONENTIAL, 0.0)])
def test_marginal_and_curvature_match_finite_differences(kind: int, slope: float) -> None:
    f = (lambda x: hill(x, 9.0, 4.0, slope)) if kind == HILL else (lambda x: expo(x, 9.0, 4.0))
    for x in (0.5, 2.0, 4.0, 11.0, 60.0):
        eps = 1e-5 * x
        fd1 = (f(np.array(x + eps)) - f(np.array(x - eps))) / (2 * eps)
        assert curve_marginal(kind, 9.0, 4.0, slope, x) == pytest.approx(float(fd1), rel=1e-6)
        m = lambda z: curve_marginal(kind, 9.0, 4.0, slope, z)  # noqa: E731
        fd2 = (m(x + eps) - m(x - eps)) / (2 * eps)
        assert curve_curvature(kind, 9.0, 4.0, slope, x) == pytest.approx(fd2, rel=1e-5)


def test_marginal_at_zero_edges() -> None:
    assert curve_marginal(HILL, 9.0, 4.0, 0.5, 0.0) == math.inf
    assert curve_marginal(HILL, 9.0, 4.0, 1.0, 0.0) == pytest.approx(9.0 / 4.0)
    assert curve_marginal(HILL, 9.0, 4.0, 2.0, 0.0) == 0.0
    assert curve_marginal(EXPONENTIAL, 9.0, 4.0, 0.0, 0.0) == pytest.approx(9.0 / 4.0)
    got = marginals(np.array([EXPONENTIAL]), np.array([[9.0, 4.0, 0.0]]), np.array([1e9]))
    assert got[0] == 0.0


def test_concavity_and_checks() -> None:
    assert is_concave(np.array([HILL, EXPONENTIAL]), np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))
    assert not is_concave(np.array([HILL]), np.array([[1.0, 1.0, 1.5]]))
    with pytest.raises(ValueError, match="slope"):
        values(np.array([HILL]), np.array([[1.0, 1.0, 0.0]]), np.ones(1))
    with pytest.raises(ValueError, match="kind"):
        values(np.array([7]), np.array([[1.0, 1.0, 1.0]]), np.ones(1))
    with pytest.raises(ValueError, match="params"):
        values(np.array([EXPONENTIAL]), np.array([[1.0, np.nan, 0.0]]), np.ones(1))


def test_fit_recovers_a_known_curve_with_honest_uncertainty() -> None:
    rng = np.random.default_rng(11)
    top, scale = 40.0, 120.0
    spend = rng.uniform(20, 400, 60)
    dt = np.full(60, 2.0)  # two-hour periods: the curve is in rates per hour
    counts = rng.poisson(dt * expo(spend / dt, top, scale)).astype(np.float64)
    post = fitting.fit(EXPONENTIAL, 0.0, fitting.shape_grid(60.0), prior_top=20.0, prior_shape=60.0,
                       prior_strength=1.0, spend=spend, outcome=counts, dt=dt, weight=np.ones(60))
    t_hat, s_hat = post.point()
    lo, hi = post.shape_interval(0.95)
    assert lo <= scale <= hi
    assert abs(t_hat - top) < 4 * post.top_sd() + 0.15 * top
    draws = np.array([post.sample(np.random.default_rng(s)) for s in range(200)])
    assert draws[:, 0].std() > 0  # the posterior is not a point


def test_fit_with_no_data_returns_the_prior() -> None:
    empty = np.empty(0)
    post = fitting.fit(EXPONENTIAL, 0.0, fitting.shape_grid(50.0), prior_top=10.0, prior_shape=50.0,
                       prior_strength=2.0, spend=empty, outcome=empty, dt=empty, weight=empty)
    assert post.point() == pytest.approx((10.0, 50.0))
    assert post.prob.sum() == pytest.approx(1.0)


def test_fit_rejects_bad_inputs() -> None:
    bad = np.array([1.0, -1.0])
    with pytest.raises(ValueError, match="outcome"):
        fitting.fit(EXPONENTIAL, 0.0, fitting.shape_grid(5.0), prior_top=1.0, prior_shape=5.0,
                    prior_strength=1.0, spend=np.ones(2), outcome=bad, dt=np.ones(2), weight=np.ones(2))
