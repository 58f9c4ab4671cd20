"""Response curves estimated from reported outcomes, with their uncertainty.

Model for one channel: the outcome count of a period of length ``dt`` with spend ``x`` is
Poisson with mean ``top * dt * f(x / dt; shape)``, ``f`` the unit curve (top 1) of a fixed kind.
For a given ``shape`` the Gamma prior on ``top`` is conjugate, so the posterior is exact on a
grid of shapes: ``p(shape | data)`` from the closed-form marginal likelihood, and
``top | shape ~ Gamma(a, rate b)``. Old periods are down-weighted (a half-life), which lets
the fit follow a market that changes. Thompson sampling draws ``(shape, top)`` from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attribid.kernels.config import jit_nogil
from attribid.kernels.response import curve_value


@jit_nogil
def _grid_posterior(kind, slope, grid, log_prior, a0, b0, x, y, dt, w, log_post, a, b):
    g_n = grid.shape[0]
    y_sum = 0.0
    for j in range(x.shape[0]):
        y_sum += w[j] * y[j]
    best = -np.inf
    for g in range(g_n):
        f_sum = 0.0
        ll = 0.0
        for j in range(x.shape[0]):
            mean = dt[j] * curve_value(kind, 1.0, grid[g], slope, x[j] / dt[j])
            f_sum += w[j] * mean
            if y[j] > 0.0:
                ll += w[j] * y[j] * math.log(mean) if mean > 0.0 else -np.inf
        a[g] = a0 + y_sum
        b[g] = b0 + f_sum
        log_post[g] = log_prior[g] + ll + math.lgamma(a[g]) - a[g] * math.log(b[g])
        best = max(best, log_post[g])
    total = 0.0
    for g in range(g_n):
        log_post[g] = math.exp(log_post[g] - best) if best > -np.inf else 1.0
        total += log_post[g]
    for g in range(g_n):
        log_post[g] /= total


@dataclass(frozen=True)
class Posterior:
    """Posterior over one channel's curve ``(top, shape)`` for a fixed kind (and Hill slope)."""

    kind: int
    slope: float
    #: candidate shapes [G] and their posterior probabilities [G]
    grid: np.ndarray
    prob: np.ndarray
    #: Gamma(a, rate b) over ``top`` given each shape [G]
    a: np.ndarray
    b: np.ndarray

    def point(self) -> tuple[float, float]:
        """(top, shape): the most probable shape and the posterior mean of top given it."""
        g = int(np.argmax(self.prob))
        return float(self.a[g] / self.b[g]), float(self.grid[g])

    def top_sd(self) -> float:
        """Posterior standard deviation of top at the most probable shape."""
        g = int(np.argmax(self.prob))
        return float(math.sqrt(self.a[g]) / self.b[g])

    def shape_interval(self, level: float = 0.9) -> tuple[float, float]:
        """Central credible interval of the shape (on the grid)."""
        c = np.cumsum(self.prob)
        lo = int(np.searchsorted(c, (1 - level) / 2))
        hi = int(np.searchsorted(c, 1 - (1 - level) / 2))
        return float(self.grid[min(lo, len(c) - 1)]), float(self.grid[min(hi, len(c) - 1)])

    def sample(self, rng: np.random.Generator) -> tuple[float, float]:
        """One Thompson draw of (top, shape)."""
        g = int(rng.choice(self.prob.shape[0], p=self.prob))
        return float(rng.gamma(self.a[g], 1.0 / self.b[g])), float(self.grid[g])


def shape_grid(center: float, *, span: float = 30.0, points: int = 41) -> np.ndarray:
    """Log-spaced candidate shapes from center/span to center*span.

    >>> shape_grid(10.0, span=10.0, points=3).tolist()
    [1.0, 10.0, 100.0]
    """
    return center * np.logspace(-math.log10(span), math.log10(span), points)


def fit(kind: int, slope: float, grid: np.ndarray, *, prior_top: float, prior_shape: float,
        prior_strength: float, spend: np.ndarray, outcome: np.ndarray, dt: np.ndarray,
        weight: np.ndarray, shape_sd: float = 1.0) -> Posterior:
    """Posterior of one channel's curve from per-period spend and outcome counts.

    ``prior_strength`` is the prior's weight in pseudo-outcomes; ``shape_sd`` the prior's
    standard deviation of log(shape) around ``prior_shape``.

    >>> x = np.full(20, 50.0); y = np.full(20, 10 * (1 - math.exp(-1)))
    >>> p = fit(2, 0.0, shape_grid(50.0), prior_top=10.0, prior_shape=50.0, prior_strength=1.0,
    ...         spend=x, outcome=y, dt=np.ones(20), weight=np.ones(20))
    >>> round(p.point()[0], 1)
    10.0
    """
    arrays = {"spend": spend, "outcome": outcome, "dt": dt, "weight": weight}
    n = spend.shape[0]
    for name, arr in arrays.items():
        if arr.dtype != np.float64 or arr.shape != (n,):
            raise ValueError(f"{name}: expected float64 [{n}], got {arr.dtype} {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name}: values must be finite and >= 0")
    if np.any(dt <= 0):
        raise ValueError("dt: period lengths must be > 0")
    if not (prior_top > 0 and prior_shape > 0 and prior_strength > 0 and shape_sd > 0):
        raise ValueError("prior_top, prior_shape, prior_strength and shape_sd must be > 0")
    grid = np.ascontiguousarray(grid, dtype=np.float64)
    log_prior = -0.5 * (np.log(grid / prior_shape) / shape_sd) ** 2
    a0 = float(prior_strength)
    b0 = a0 / prior_top
    g_n = grid.shape[0]
    prob, a, b = np.empty(g_n), np.empty(g_n), np.empty(g_n)
    _grid_posterior(int(kind), float(slope), grid, log_prior, a0, b0, spend, outcome, dt, weight,
                    prob, a, b)
    return Posterior(int(kind), float(slope), grid, prob, a, b)
