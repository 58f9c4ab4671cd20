"""The small serving kernels (credit shares, journey checks) against plain references."""
from __future__ import annotations

import numpy as np
import pytest

from attribid.kernels import checks
from attribid.kernels.credit import shares_over_present


def reference_shares(row, channels):
    present = np.zeros(len(row), bool)
    present[list(channels)] = True
    kept = np.where(present & np.isfinite(row) & (row > 0), row, 0.0)
    return kept / kept.sum() if kept.sum() > 0 else present / present.sum()


def test_shares_match_reference_including_nan_and_zero_rows():
    rng = np.random.default_rng(1)
    credit = rng.uniform(0, 1, (6, 7)).astype(np.float32)
    credit[1, :] = 0.0
    credit[2, 3] = np.nan
    credit[3, :] = -1.0
    journeys = [[0, 1], [2, 2, 5], [3, 4], [6], [0, 1, 2, 3, 4, 5, 6], [5, 0]]
    offsets = np.concatenate([[0], np.cumsum([len(j) for j in journeys])])
    got = shares_over_present(credit, offsets, np.concatenate(journeys))
    for b, j in enumerate(journeys):
        np.testing.assert_allclose(got[b], reference_shares(credit[b].astype(float), j), rtol=1e-6)
        assert got[b].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("ts, cost, inter, dev, expect", [
    ([1, 2, 3], [0, 1, 2], [1, 2, 1], [0, 1, 3], (checks.OK, -1)),
    ([1, 0, 3], [0, 1, 2], [1, 2, 1], [0, 1, 3], (checks.TIMESTAMP_NOT_POSITIVE, 1)),
    ([1, 3, 2], [0, 1, 2], [1, 2, 1], [0, 1, 3], (checks.TIMESTAMP_ORDER, 2)),
    ([1, 2, 99], [0, 1, 2], [1, 2, 1], [0, 1, 3], (checks.TIMESTAMP_FUTURE, 2)),
    ([1, 2, 3], [0, np.nan, 2], [1, 2, 1], [0, 1, 3], (checks.COST, 1)),
    ([1, 2, 3], [0, 1, -np.inf], [1, 2, 1], [0, 1, 3], (checks.COST, 2)),
    ([1, 2, 3], [0, 1, 2], [1, 0, 1], [0, 1, 3], (checks.INTERACTION, 1)),
    ([1, 2, 3], [0, 1, 2], [1, 2, 1], [0, 4, 3], (checks.DEVICE, 1)),
    ([], [], [], [], (checks.OK, -1)),
])
def test_first_invalid(ts, cost, inter, dev, expect):
    got = checks.first_invalid(np.array(ts, np.int64), np.array(cost, float), np.array(inter),
                               np.array(dev), latest_ms=50, max_device=3)
    assert got == expect
