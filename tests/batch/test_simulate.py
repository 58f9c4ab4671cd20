"""The simulator: exact truth (closed form vs brute force), determinism, accuracy measures."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from attribid.kernels.shapley import oldest_to_drop, pairwise_game, set_shapley
from attribid.models.simulation.simulate import (
    WORLDS, World, attribution_accuracy, journey_accuracy, simulate, subset_probability,
    true_channel_shares,
)


def _brute_force_shapley(v, n: int) -> np.ndarray:
    """Shapley values of game v over n players by enumerating every subset."""
    phi = np.zeros(n)
    for i in range(n):
        others = [k for k in range(n) if k != i]
        for size in range(n):
            w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                keep = np.zeros(n, dtype=bool)
                keep[list(subset)] = True
                without = v(keep)
                keep[i] = True
                phi[i] += w * (v(keep) - without)
    return phi


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_closed_form_shapley_matches_brute_force(name: str) -> None:
    journeys, truth = simulate(WORLDS[name], 400, seed=11)
    lengths = journeys.lengths()
    # small journeys with at least two channels, so synergy terms take part
    picks = [j for j in range(journeys.n_journeys)
             if 3 <= lengths[j] <= 7
             and len(set(journeys.channel[journeys.offsets[j]:journeys.offsets[j + 1]])) > 1][:6]
    assert len(picks) == 6
    for j in picks:
        n = int(lengths[j])
        lo = int(journeys.offsets[j])
        phi = _brute_force_shapley(lambda keep: subset_probability(
            truth.world, journeys, truth, j, keep), n)
        np.testing.assert_allclose(truth.touch_shapley[lo:lo + n], phi, rtol=1e-10, atol=1e-13)
        per_channel = np.bincount(journeys.channel[lo:lo + n], weights=phi, minlength=7)
        np.testing.assert_allclose(truth.shapley[j], per_channel, rtol=1e-10, atol=1e-13)
        # removal effect: v(all) - v(all but the channel's touches)
        full = subset_probability(truth.world, journeys, truth, j, np.ones(n, bool))
        assert full == pytest.approx(truth.p_true[j], rel=1e-12)
        for c in range(7):
            keep = journeys.channel[lo:lo + n] != c
            expected = full - subset_probability(truth.world, journeys, truth, j, keep)
            assert truth.removal[j, c] == pytest.approx(expected, abs=1e-13)
        empty = subset_probability(truth.world, journeys, truth, j, np.zeros(n, bool))
        assert empty == pytest.approx(truth.p_base[j], rel=1e-12)


def test_pairwise_game_hand_case() -> None:
    # v = 0.1 + 0.2 [x] + 0.3 [y] + 0.04 [z] + 0.06 [x and y] (x: ch0, y: ch1, z: ch0);
    # x-z share a channel so they have no synergy; y-z: Syn[1,0] = 0 (order matters)
    syn = np.array([[0.0, 0.06], [0.0, 0.0]])
    phi, shapley, removal, p = pairwise_game(
        np.array([0, 3]), np.array([0, 1, 0]), np.array([0.2, 0.3, 0.04]),
        np.ones(3), syn, np.array([0.1]), 2)
    np.testing.assert_allclose(phi, [0.23, 0.33, 0.04])
    np.testing.assert_allclose(shapley, [[0.27, 0.33]])
    np.testing.assert_allclose(removal, [[0.30, 0.36]])
    np.testing.assert_allclose(p, [0.70])


def test_set_shapley_matches_brute_force() -> None:
    rng = np.random.default_rng(5)
    value = rng.random(16)
    value[0] = 0.0
    masks = np.array([0b1011, 0b1111, 0b0100])
    got = set_shapley(masks, value, 4)
    for row, mask in zip(got, masks):
        players = [c for c in range(4) if mask >> c & 1]

        def v(keep: np.ndarray, players: list[int] = players) -> float:
            return float(value[sum(1 << c for c, k in zip(players, keep) if k)])

        expected = np.zeros(4)
        expected[players] = _brute_force_shapley(v, len(players))
        np.testing.assert_allclose(row, expected, atol=1e-12)


def test_same_seed_same_data_and_different_seed_differs() -> None:
    a, ta = simulate(WORLDS["balanced"], 3000, seed=5)
    b, tb = simulate(WORLDS["balanced"], 3000, seed=5)
    c, _ = simulate(WORLDS["balanced"], 3000, seed=6)
    for name in ("offsets", "channel", "timestamp", "interaction", "cost", "device",
                 "category", "converted", "value"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(ta.shapley, tb.shapley)
    assert not np.array_equal(a.converted, c.converted)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_journeys_are_well_formed(name: str) -> None:
    world = WORLDS[name]
    journeys, truth = simulate(world, 5000, seed=3)
    lengths = journeys.lengths()
    assert lengths.min() >= 1 and lengths.max() <= 30
    assert 2 <= np.median(lengths) <= 8
    assert np.all(truth.p_true <= world.p_max) and np.all(truth.p_base > 0)
    # probabilities: efficiency (Shapley values add up to the lift over the baseline)
    np.testing.assert_allclose(truth.shapley.sum(1), truth.p_true - truth.p_base, rtol=1e-10)
    row_of = np.repeat(np.arange(journeys.n_journeys), lengths)
    assert np.all(np.diff(journeys.timestamp)[np.diff(row_of) == 0] >= 0)
    last = journeys.timestamp[journeys.offsets[1:] - 1]
    assert np.all(truth.reference_time > last)
    conv = journeys.converted
    np.testing.assert_array_equal(journeys.conversion_time[conv], truth.reference_time[conv])
    assert np.all(np.isnan(journeys.conversion_time[~conv])) and np.all(journeys.value[conv] > 0)
    # outcomes follow p_true: the observed rate is within 4 standard errors of the mean p
    se = math.sqrt(truth.p_true.mean() * (1 - truth.p_true.mean()) / journeys.n_journeys)
    assert abs(conv.mean() - truth.p_true.mean()) < 4 * se
    after = truth.after_conversion
    owner = np.repeat(np.arange(after.n_journeys), after.lengths())
    assert after.n_touchpoints > 0
    assert np.all(journeys.converted[owner])
    assert np.all(after.timestamp > journeys.conversion_time[owner])
    assert set(np.unique(journeys.interaction)) == {1, 2}


def test_worlds_differ_in_their_knobs() -> None:
    recency, synergy, impressions = WORLDS["recency"], WORLDS["synergy"], WORLDS["impressions"]
    assert recency.half_life_hours < impressions.half_life_hours < synergy.half_life_hours
    assert synergy.synergy > max(recency.synergy, impressions.synergy)
    assert impressions.impression_weight > max(recency.impression_weight, synergy.impression_weight)


def test_world_rejects_bad_knobs() -> None:
    with pytest.raises(ValueError, match="half_life_hours"):
        World("bad", half_life_hours=0.0, decay_floor=0.1, impression_weight=0.5, synergy=1.0)
    with pytest.raises(ValueError, match="impression_weight"):
        World("bad", half_life_hours=1.0, decay_floor=0.1, impression_weight=-1.0, synergy=1.0)


def test_true_channel_shares_split_each_conversion() -> None:
    journeys, truth = simulate(WORLDS["synergy"], 2000, seed=9)
    shares = true_channel_shares(journeys, truth)
    conv = np.flatnonzero(journeys.converted)
    expected = np.zeros(7)
    for j in conv:
        expected += truth.shapley[j] / truth.shapley[j].sum()
    np.testing.assert_allclose(shares, expected / len(conv), rtol=1e-10)


def test_attribution_accuracy_is_one_minus_total_variation() -> None:
    assert attribution_accuracy(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == 0.0
    assert attribution_accuracy(np.array([2.0, 2.0]), np.array([0.5, 0.5])) == 1.0
    # |0.6-0.3| + |0.3-0.3| + |0.1-0.4| = 0.6 -> TV 0.3
    assert attribution_accuracy(np.array([0.6, 0.3, 0.1]),
                                np.array([0.3, 0.3, 0.4])) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="shape"):
        attribution_accuracy(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="pred_shares"):
        attribution_accuracy(np.array([-1.0, 2.0]), np.ones(2))


def test_journey_accuracy_scores_rows() -> None:
    journeys, truth = simulate(WORLDS["balanced"], 1000, seed=2)
    conv = journeys.converted
    assert journey_accuracy(truth.shapley * 3.0, truth, conv) == pytest.approx(1.0)
    pred = np.zeros_like(truth.shapley)
    top = truth.shapley.argmax(1)
    pred[np.arange(len(top)), top] = 1.0
    true_rows = truth.shapley[conv] / truth.shapley[conv].sum(1, keepdims=True)
    expected = np.mean(true_rows.max(1))   # 1 - TV of a one-hot on the top channel
    assert journey_accuracy(pred, truth, conv) == pytest.approx(expected)
    assert journey_accuracy(np.zeros_like(pred), truth, conv) == pytest.approx(0.5)


def test_oldest_to_drop_matches_python_reference() -> None:
    rng = np.random.default_rng(12)
    lengths = rng.integers(1, 9, size=200)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n = int(offsets[-1])
    channel = rng.integers(0, 3, size=n).astype(np.int32)
    effect = rng.uniform(0.0, 0.3, size=n)
    strength = rng.uniform(0.0, 1.0, size=n)
    syn = rng.uniform(0.0, 0.2, size=(3, 3))
    base = rng.uniform(0.0, 0.2, size=200)
    got = oldest_to_drop(offsets, channel, effect, strength, syn, base, 0.6)

    def v(lo: int, hi: int, j: int) -> float:
        total = base[j] + effect[lo:hi].sum()
        for i in range(lo, hi):
            for k in range(i + 1, hi):
                if channel[i] != channel[k]:
                    total += syn[channel[i], channel[k]] * math.sqrt(strength[i] * strength[k])
        return total

    for j in range(200):
        lo, hi = offsets[j], offsets[j + 1]
        drop = 0
        while hi - (lo + drop) > 1 and v(lo + drop, hi, j) > 0.6:
            drop += 1
        assert got[j] == drop
    assert got.max() > 0 and (got == 0).any()   # both cases occur


def test_channel_sequences_follow_the_markov_chain() -> None:
    from attribid.models.simulation.simulate import START, TRANSITIONS
    journeys, truth = simulate(WORLDS["balanced"], 40000, seed=13)
    # far below p_max, so no journey lost its oldest touches to saturation
    assert truth.p_true.max() < 0.9 * WORLDS["balanced"].p_max
    first = journeys.channel[journeys.offsets[:-1]]
    start_freq = np.bincount(first, minlength=7) / journeys.n_journeys
    np.testing.assert_allclose(start_freq, START, atol=0.015)
    row_of = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    same = np.diff(row_of) == 0
    prev, nxt = journeys.channel[:-1][same], journeys.channel[1:][same]
    counts = np.zeros((7, 7))
    np.add.at(counts, (prev, nxt), 1.0)
    np.testing.assert_allclose(counts / counts.sum(1, keepdims=True), TRANSITIONS, atol=0.02)
