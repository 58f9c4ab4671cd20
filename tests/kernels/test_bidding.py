"""Bids per impression against a NumPy reference; the pacing controller."""
from __future__ import annotations

import numpy as np
import pytest

from attribid.kernels.bidding import bids_into, pacing_multiplier


def reference(p: float, credit: np.ndarray, per_conv: np.ndarray, per_imp: np.ndarray,
              pacing: float, floor: float, cap: float) -> np.ndarray:
    v = pacing * (p * credit * per_conv + per_imp)
    v = np.where(v > 0, np.maximum(v, floor), 0.0)
    return np.minimum(v, cap) if cap > 0 else v


@pytest.mark.parametrize("pacing,floor,cap", [(1.0, 0.0, 0.0), (0.5, 0.2, 0.0), (2.0, 0.1, 1.5),
                                              (0.0, 0.3, 2.0)])
def test_bids_match_reference(pacing: float, floor: float, cap: float) -> None:
    rng = np.random.default_rng(0)
    credit = rng.dirichlet(np.ones(7))
    credit[3] = 0.0
    per_conv = rng.uniform(0, 20, 7)
    per_conv[5] = 0.0  # a channel the allocation does not fund
    per_imp = np.where(rng.random(7) < 0.5, rng.uniform(0, 0.2, 7), 0.0)
    out = np.full(7, -1.0)
    bids_into(0.3, credit, per_conv, per_imp, np.array([pacing, floor, cap]), out)
    np.testing.assert_allclose(out, reference(0.3, credit, per_conv, per_imp, pacing, floor, cap))


def test_bids_edge_probabilities_and_errors() -> None:
    out = np.zeros(2)
    params = np.array([1.0, 0.5, 0.0])
    bids_into(0.0, np.array([1.0, 0.0]), np.array([5.0, 5.0]), np.zeros(2), params, out)
    assert out.tolist() == [0.0, 0.0]  # nothing to bid for: the floor does not apply
    with pytest.raises(ValueError, match="conversion_probability"):
        bids_into(1.5, np.ones(2), np.ones(2), np.zeros(2), params, out)
    with pytest.raises(ValueError, match="credit"):
        bids_into(0.5, np.ones(3), np.ones(2), np.zeros(2), params, out)


def test_pacing_follows_spend_against_the_budget_rate() -> None:
    assert pacing_multiplier(50.0, 0.0, 100.0, 100.0, 50.0) == pytest.approx(1.0)  # on track
    assert pacing_multiplier(50.0, 0.0, 100.0, 100.0, 80.0) < 1.0  # ahead: slow down
    assert pacing_multiplier(50.0, 0.0, 100.0, 100.0, 10.0) > 1.0  # behind: speed up
    assert pacing_multiplier(99.0, 0.0, 100.0, 100.0, 0.0) == 10.0  # capped at the limit
    # A quiet period (half the usual delivery per unit of multiplier) doubles the multiplier.
    assert pacing_multiplier(50.0, 0.0, 100.0, 100.0, 50.0, delivery=0.5) == pytest.approx(2.0)
    assert pacing_multiplier(-1.0, 0.0, 100.0, 100.0, 0.0) == 0.0  # before the flight
    assert pacing_multiplier(100.0, 0.0, 100.0, 100.0, 0.0) == 0.0  # after it
    assert pacing_multiplier(10.0, 0.0, 100.0, 100.0, 100.0) == 0.0  # budget spent
