from __future__ import annotations

import numpy as np
import pytest

from attribid.kernels.fallback import position_based_credit


def reference(channels, n_channels):
    out = np.zeros(n_channels)
    n = len(channels)
    weights = [1.0] if n == 1 else [0.5, 0.5] if n == 2 else [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]
    for c, w in zip(channels, weights):
        out[c] += w
    return out


@pytest.mark.parametrize("channels", [[3], [1, 1], [0, 2, 0], [0, 1, 2, 3, 4, 5, 6, 0, 0, 1], []])
def test_matches_reference(channels):
    got = position_based_credit(np.array(channels, np.int32), np.full(7, 9.0))
    np.testing.assert_allclose(got, reference(channels, 7))
    assert got.sum() == pytest.approx(1.0 if channels else 0.0)


def test_rejects_codes_outside_out():
    with pytest.raises(ValueError, match="index"):
        position_based_credit(np.array([7], np.int32), np.zeros(7))
    with pytest.raises(ValueError, match="int32"):
        position_based_credit(np.array([1]), np.zeros(7))
