"""The Shapley kernels against brute-force enumeration of coalitions (pure Python)."""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

from attribid.kernels.shapley import (MAX_SET_CHANNELS, oldest_to_drop, pairwise_game,
                                      set_shapley, subset_sums)

C = 4


def touch_game(base, effect, channel, strength, syn):
    """v(S) of the pairwise touch game, S a set of touch indices (ordered by time)."""
    def v(s):
        total = base + sum(effect[i] for i in s)
        for i, k in combinations(sorted(s), 2):
            if channel[i] != channel[k]:
                total += syn[channel[i]][channel[k]] * math.sqrt(strength[i] * strength[k])
        return total
    return v


def brute_shapley(players, v):
    """Shapley values by the subset formula over every coalition of ``players``."""
    n = len(players)
    phi = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for size in range(n):
            w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for s in combinations(others, size):
                total += w * (v(set(s) | {p}) - v(set(s)))
        phi[p] = total
    return phi


def random_touches(rng):
    lengths = rng.choice([0, 1, 2, 3, 6], 25)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    return (offsets, rng.integers(0, C, n).astype(np.int32), rng.uniform(0, 0.1, n),
            rng.uniform(0, 2, n), rng.uniform(-0.05, 0.1, (C, C)), rng.uniform(0, 0.05, 25))


@pytest.mark.parametrize("seed", range(3))
def test_pairwise_game_matches_brute_force(seed: int) -> None:
    offsets, channel, effect, strength, syn, base = random_touches(np.random.default_rng(seed))
    touch_phi, shapley, removal, p = pairwise_game(offsets, channel, effect, strength, syn, base, C)
    for j in range(offsets.shape[0] - 1):
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        idx = list(range(lo, hi))
        v = touch_game(base[j], effect, channel, strength, syn)
        assert p[j] == pytest.approx(v(set(idx)), abs=1e-12)
        phi = brute_shapley(idx, v) if idx else {}
        for i in idx:
            assert touch_phi[i] == pytest.approx(phi[i], abs=1e-12)
        for c in range(C):
            mine = {i for i in idx if channel[i] == c}
            assert shapley[j, c] == pytest.approx(sum(phi[i] for i in mine), abs=1e-12)
            assert removal[j, c] == pytest.approx(v(set(idx)) - v(set(idx) - mine), abs=1e-12)


def test_oldest_to_drop_matches_a_plain_loop() -> None:
    offsets, channel, effect, strength, syn, base = random_touches(np.random.default_rng(5))
    effect = effect * 4  # make some journeys exceed the cap
    got = oldest_to_drop(offsets, channel, effect, strength, syn, base, 0.3)
    for j in range(offsets.shape[0] - 1):
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        v = touch_game(base[j], effect, channel, strength, syn)
        drop = 0
        while hi - lo - drop > 1 and v(set(range(lo + drop, hi))) > 0.3:
            drop += 1
        assert got[j] == drop


@pytest.mark.parametrize("n", [1, 3, 5])
def test_set_shapley_matches_brute_force(n: int) -> None:
    rng = np.random.default_rng(n)
    value = rng.uniform(0, 1, 1 << n)
    value[0] = 0.0
    masks = np.array(sorted({0, (1 << n) - 1} | set(rng.integers(0, 1 << n, 6).tolist())))
    got = set_shapley(masks, value, n)
    for r, m in enumerate(masks):
        players = [c for c in range(n) if m >> c & 1]
        phi = brute_shapley(players, lambda s: value[sum(1 << c for c in s)])
        for c in range(n):
            assert got[r, c] == pytest.approx(phi.get(c, 0.0), abs=1e-12)
        # Efficiency: the values share out v(mask) - v(empty).
        assert got[r].sum() == pytest.approx(value[m] - value[0], abs=1e-12)


def test_subset_sums_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    for size in (1, 2, 8, 32):
        x = rng.normal(size=size)
        got = subset_sums(x)
        for s in range(size):
            assert got[s] == pytest.approx(sum(x[t] for t in range(size) if t & s == t), abs=1e-12)
    assert np.isnan(subset_sums(np.array([1.0, np.nan]))[1])


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="n_channels must be in"):
        set_shapley(np.array([1]), np.zeros(2), MAX_SET_CHANNELS + 1)
    with pytest.raises(ValueError, match="masks must be in"):
        set_shapley(np.array([4]), np.zeros(4), 2)
    with pytest.raises(ValueError, match="power-of-two"):
        subset_sums(np.zeros(3))
    with pytest.raises(ValueError, match="strength must be >= 0"):
        pairwise_game(np.array([0, 1]), np.array([0]), np.zeros(1), -np.ones(1), np.zeros((1, 1)),
                      np.zeros(1), 1)
