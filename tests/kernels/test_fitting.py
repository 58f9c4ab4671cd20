"""The curve-fit posterior kernel against a NumPy reference written from its model."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaln

from attribid.kernels import fitting
from attribid.kernels.response import EXPONENTIAL, HILL


def unit_curve(kind: int, shape: np.ndarray, slope: float, x: np.ndarray) -> np.ndarray:
    """The curve with top 1 at spend rate x, for every shape (rows) and period (columns)."""
    s, x = shape[:, None], x[None, :]
    if kind == HILL:
        r = np.where(x > 0, (np.maximum(x, 1e-300) / s) ** slope, 0.0)
        return r / (1 + r)
    return np.where(x > 0, -np.expm1(-x / s), 0.0)


def reference(kind, slope, grid, prior_top, prior_shape, strength, shape_sd, x, y, dt, w):
    """Gamma-Poisson marginal likelihood per shape: a = a0 + sum w y, b = b0 + sum w dt f."""
    mean = dt[None, :] * unit_curve(kind, grid, slope, x / dt)
    a0, b0 = strength, strength / prior_top
    a = a0 + (w * y).sum()
    b = b0 + (w[None, :] * mean).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.where(y[None, :] > 0, w * y * np.log(mean), 0.0).sum(axis=1)
    log_post = -0.5 * (np.log(grid / prior_shape) / shape_sd) ** 2 + ll + gammaln(a) - a * np.log(b)
    prob = np.exp(log_post - log_post.max())
    return prob / prob.sum(), np.full(grid.shape, a), b


@pytest.mark.parametrize("kind, slope", [(EXPONENTIAL, 0.0), (HILL, 0.7), (HILL, 2.5)])
@pytest.mark.parametrize("periods", [1, 3, 40])
def test_posterior_matches_reference(kind: int, slope: float, periods: int) -> None:
    rng = np.random.default_rng(periods)
    dt = rng.uniform(0.5, 2.0, periods)
    x = rng.uniform(0, 400, periods) * dt
    x[0] = 0.0  # a period without spend
    y = rng.poisson(20 * dt * (1 - np.exp(-x / dt / 150))).astype(float)
    w = 0.5 ** (np.arange(periods)[::-1] / 10)
    grid = fitting.shape_grid(150.0, points=21)
    post = fitting.fit(kind, slope, grid, prior_top=15.0, prior_shape=120.0, prior_strength=2.0,
                       spend=x, outcome=y, dt=dt, weight=w, shape_sd=0.8)
    prob, a, b = reference(kind, slope, grid, 15.0, 120.0, 2.0, 0.8, x, y, dt, w)
    np.testing.assert_allclose(post.prob, prob, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(post.a, a, rtol=1e-12)
    np.testing.assert_allclose(post.b, b, rtol=1e-12)
    assert post.prob.sum() == pytest.approx(1.0)


def test_outcomes_at_zero_spend_rule_out_every_shape_equally() -> None:
    # y > 0 where the curve is 0: every shape has log-likelihood -inf, so the kernel falls
    # back to a uniform posterior rather than dividing by zero.
    post = fitting.fit(EXPONENTIAL, 0.0, fitting.shape_grid(10.0, points=5), prior_top=1.0,
                       prior_shape=10.0, prior_strength=1.0, spend=np.zeros(2),
                       outcome=np.array([3.0, 0.0]), dt=np.ones(2), weight=np.ones(2))
    np.testing.assert_allclose(post.prob, np.full(5, 0.2))


def test_no_periods_is_the_prior() -> None:
    grid = fitting.shape_grid(50.0, points=9)
    e = np.zeros(0)
    post = fitting.fit(HILL, 1.0, grid, prior_top=4.0, prior_shape=50.0, prior_strength=3.0,
                       spend=e, outcome=e, dt=e, weight=e, shape_sd=0.5)
    prior = np.exp(-0.5 * (np.log(grid / 50.0) / 0.5) ** 2)
    np.testing.assert_allclose(post.prob, prior / prior.sum(), rtol=1e-12)
    assert post.point() == pytest.approx((4.0, 50.0))
    assert post.top_sd() == pytest.approx(math.sqrt(3.0) / 0.75)


def test_zero_weights_ignore_a_period() -> None:
    grid = fitting.shape_grid(50.0, points=9)
    kw = dict(prior_top=4.0, prior_shape=50.0, prior_strength=3.0)
    one = fitting.fit(EXPONENTIAL, 0.0, grid, spend=np.array([30.0]), outcome=np.array([2.0]),
                      dt=np.ones(1), weight=np.ones(1), **kw)
    two = fitting.fit(EXPONENTIAL, 0.0, grid, spend=np.array([30.0, 500.0]),
                      outcome=np.array([2.0, 90.0]), dt=np.ones(2), weight=np.array([1.0, 0.0]),
                      **kw)
    np.testing.assert_allclose(two.prob, one.prob, rtol=1e-12)
    np.testing.assert_allclose(two.b, one.b, rtol=1e-12)
