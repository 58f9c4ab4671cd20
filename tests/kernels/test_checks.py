"""The journey check kernel against a pure-Python reference on seeded random journeys."""
from __future__ import annotations

import math

import numpy as np
import pytest

from attribid.kernels import checks


def reference(ts, cost, interaction, device, latest_ms, max_device):
    """First failing rule: every timestamp rule over the journey first, then the values."""
    for i, t in enumerate(ts):
        if t <= 0:
            return checks.TIMESTAMP_NOT_POSITIVE, i
        if i > 0 and t < ts[i - 1]:
            return checks.TIMESTAMP_ORDER, i
        if t > latest_ms:
            return checks.TIMESTAMP_FUTURE, i
    for i, (c, k, d) in enumerate(zip(cost, interaction, device)):
        if not (math.isfinite(c) and c >= 0):
            return checks.COST, i
        if k not in (1, 2):
            return checks.INTERACTION, i
        if not 0 <= d <= max_device:
            return checks.DEVICE, i
    return checks.OK, -1


def random_journey(rng, n):
    ts = np.sort(rng.integers(1, 10_000, n)).astype(np.int64)
    cost = rng.exponential(1.0, n)
    interaction = rng.integers(1, 3, n).astype(np.int32)
    device = rng.integers(0, 4, n).astype(np.int32)
    # Break a few rules at random places, sometimes several in one journey.
    for _ in range(rng.integers(0, 3)):
        if n == 0:
            break
        i = int(rng.integers(0, n))
        what = rng.integers(0, 8)
        if what == 0:
            ts[i] = rng.choice([0, -5])
        elif what == 1 and i > 0:
            ts[i] = ts[i - 1] - 1
        elif what == 2:
            ts[i] = 20_000
        elif what == 3:
            cost[i] = rng.choice([np.nan, np.inf, -np.inf, -0.5])
        elif what == 4:
            interaction[i] = rng.choice([0, 3, -1])
        elif what == 5:
            device[i] = rng.choice([-1, 4, 99])
    return ts, cost, interaction, device


@pytest.mark.parametrize("seed", range(4))
def test_matches_reference_on_random_journeys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    codes = set()
    for _ in range(400):
        n = int(rng.choice([0, 1, 2, 5, 30]))
        ts, cost, interaction, device = random_journey(rng, n)
        expect = reference(ts.tolist(), cost.tolist(), interaction.tolist(), device.tolist(),
                           15_000.0, 3)
        assert checks.first_invalid(ts, cost, interaction, device, 15_000.0, 3) == expect
        # The unchecked entry point answers the same for arrays of the validator's dtypes.
        code, index = checks.first_invalid_kernel(ts, cost, interaction, device, 15_000.0, 3)
        assert (int(code), int(index)) == expect
        codes.add(expect[0])
    assert len(codes) >= 6  # the random journeys reached most rules


def test_edge_values() -> None:
    one = (np.array([1], np.int64), np.array([0.0]), np.ones(1, np.int32), np.zeros(1, np.int32))
    assert checks.first_invalid(*one, 1.0, 0) == (checks.OK, -1)
    assert checks.first_invalid(*one, 0.5, 0) == (checks.TIMESTAMP_FUTURE, 0)
    # Equal timestamps are in order; a timestamp problem wins over an earlier bad value.
    got = checks.first_invalid(np.array([3, 3, 2]), np.array([np.nan, 0.0, 0.0]),
                               np.ones(3, np.int32), np.zeros(3, np.int32), 10.0, 3)
    assert got == (checks.TIMESTAMP_ORDER, 2)
    with pytest.raises(ValueError, match="cost must have shape"):
        checks.first_invalid(np.array([1, 2]), np.zeros(1), np.ones(2), np.zeros(2), 10.0, 3)
