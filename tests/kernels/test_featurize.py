"""The featurizer against a plain-Python reference written from its documented layout."""
from __future__ import annotations

import math

import numpy as np
import pytest

from attribid.kernels.featurize import N_FEATURES, featurize


def reference_row(j_ch, j_ts, j_int, j_cost, j_dev, cat, ref, s, max_len):
    n = len(j_ch)
    row = [0.0] * 64
    row[j_ch[s]] = 1
    row[16 + (1 if j_int[s] == 2 else 0)] = 1
    row[18 + j_dev[s]] = 1
    row[22 + cat] = 1
    if n > 1:
        row[30] = s / (n - 1)
        row[31] = 1 - s / (n - 1)
    row[32] = float(s == 0)
    row[33] = float(s == n - 1)
    row[34] = math.log1p(n) / math.log1p(max_len)
    if s > 0:
        row[35] = math.log1p(max(j_ts[s] - j_ts[s - 1], 0) / 3600) / 5
        row[47] = float(j_ch[s] == j_ch[s - 1])
    age = max(ref - j_ts[s], 0) / 3600
    row[36] = math.log1p(age) / 5
    for k, half in enumerate((1, 24, 168)):
        row[37 + k] = 0.5 ** (age / half)
    hod = (j_ts[s] % 86400) / 86400
    dow = ((j_ts[s] + 4 * 86400) % (7 * 86400)) / (7 * 86400)
    row[40:44] = [math.sin(2 * math.pi * hod), math.cos(2 * math.pi * hod),
                  math.sin(2 * math.pi * dow), math.cos(2 * math.pi * dow)]
    row[44] = math.log1p(j_cost[s])
    row[45] = math.log1p(sum(j_cost[: s + 1]))
    row[46] = sum(1 for x in j_int[: s + 1] if x == 2) / (s + 1)
    for c in set(j_ch[: s + 1]):
        row[48 + c] = math.log1p(j_ch[: s + 1].count(c)) / math.log1p(max_len)
    return row


def random_batch(rng, n_journeys, max_touches):
    lengths = rng.integers(1, max_touches + 1, n_journeys)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n = offsets[-1]
    ts = np.concatenate([np.sort(rng.uniform(1.7e9, 1.7e9 + 9e5, k)) for k in lengths])
    return dict(offsets=offsets, channel=rng.integers(0, 16, n), timestamp=ts,
                interaction=rng.integers(1, 3, n), cost=rng.exponential(0.5, n),
                device=rng.integers(0, 4, n), category=rng.integers(0, 8, n_journeys),
                ref_time=ts[offsets[1:] - 1] + rng.uniform(0, 9e4, n_journeys))


@pytest.mark.parametrize("max_len", [64, 5])
def test_matches_reference(max_len):
    rng = np.random.default_rng(3)
    b = random_batch(rng, 20, 12)
    feats, mask, lengths = featurize(**b, max_len=max_len)
    for j in range(20):
        lo, hi = b["offsets"][j], b["offsets"][j + 1]
        lo = max(lo, hi - max_len)  # most recent max_len touches are kept
        sl = slice(lo, hi)
        cols = [b[k][sl].tolist() for k in ("channel", "timestamp", "interaction", "cost", "device")]
        n = hi - lo
        assert lengths[j] == n
        for s in range(feats.shape[1]):
            if s < n:
                expect = reference_row(*cols, int(b["category"][j]), float(b["ref_time"][j]), s, max_len)
                np.testing.assert_allclose(feats[j, s], expect, rtol=1e-5, atol=1e-6)
                assert mask[j, s] == 1
            else:
                assert not feats[j, s].any() and mask[j, s] == 0


def test_padding_and_buffers_do_not_change_rows():
    rng = np.random.default_rng(4)
    b = random_batch(rng, 5, 8)
    alone, _, _ = featurize(**b, max_len=64)
    buf = np.full((9, 30, N_FEATURES), 7.0, np.float32)
    mask = np.full((9, 30), 7.0, np.float32)
    padded, m, _ = featurize(**b, max_len=64, out=buf, mask=mask)
    np.testing.assert_array_equal(padded[:, : alone.shape[1]], alone)
    assert not padded[:, alone.shape[1]:].any() and not m[:, alone.shape[1]:].any()


@pytest.mark.parametrize("change, message", [
    (dict(channel=np.array([16, 0])), "channel indices"),
    (dict(channel=np.array([0])), "channel must have shape"),
    (dict(category=np.array([1, 2])), "category must have shape"),
    (dict(offsets=np.array([0, 3])), "must have shape"),
])
def test_rejects_bad_inputs(change, message):
    base = dict(offsets=np.array([0, 2]), channel=np.array([0, 1]), timestamp=np.array([0.0, 1.0]),
                interaction=np.array([1, 2]), cost=np.zeros(2), device=np.zeros(2),
                category=np.array([0]), ref_time=np.array([2.0]))
    base.update(change)
    with pytest.raises(ValueError, match=message):
        featurize(**base, max_len=64)
