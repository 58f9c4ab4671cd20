"""The classic attribution kernels against pure-Python references on seeded random journeys."""
from __future__ import annotations

import math

import numpy as np
import pytest

from attribid.kernels.classic import (RULES, channel_masks, markov_transitions, rule_credit,
                                      weighted_presence)

C = 5


def random_journeys(rng: np.random.Generator, n: int = 60):
    """CSR journeys with empty, one-touch and long ones, and equal timestamps."""
    lengths = rng.choice([0, 1, 2, 3, 4, 9], n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    channel = rng.integers(0, C, int(offsets[-1])).astype(np.int32)
    timestamp = np.concatenate([np.sort(rng.choice([0.0, 3600.0, 86400.0, 7200.0], k))
                                for k in lengths]) if offsets[-1] else np.zeros(0)
    converted = rng.random(n) < 0.7
    return offsets, channel, timestamp, converted


def journeys_of(offsets, *cols):
    for j in range(offsets.shape[0] - 1):
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        yield j, [c[lo:hi].tolist() for c in cols]


def reference_rule(touches, times, rule, half_life_s):
    row = [0.0] * C
    n = len(touches)
    if rule == "last-click":
        row[touches[-1]] += 1
    elif rule == "first-click":
        row[touches[0]] += 1
    elif rule == "linear":
        for c in touches:
            row[c] += 1 / n
    elif rule == "time-decay":
        w = [2.0 ** (-(times[-1] - t) / half_life_s) for t in times]
        for c, x in zip(touches, w):
            row[c] += x / sum(w)
    else:
        share = [1.0] if n == 1 else [0.5, 0.5] if n == 2 else \
            [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]
        for c, x in zip(touches, share):
            row[c] += x
    return row


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("seed", range(2))
def test_rule_credit_matches_reference(rule: str, seed: int) -> None:
    offsets, channel, timestamp, converted = random_journeys(np.random.default_rng(seed))
    got = rule_credit(offsets, channel, timestamp, converted, C, rule, half_life_hours=2.0)
    for j, (touches, times) in journeys_of(offsets, channel, timestamp):
        if not converted[j] or not touches:
            assert not got[j].any()
            continue
        np.testing.assert_allclose(got[j], reference_rule(touches, times, rule, 7200.0),
                                   rtol=1e-12, atol=1e-15)
        assert got[j].sum() == pytest.approx(1.0)


def test_time_decay_does_not_underflow_over_long_journeys() -> None:
    # A year between touches with a one-hour half-life: only relative weights are used.
    got = rule_credit(np.array([0, 2]), np.array([0, 1]), np.array([0.0, 3.2e7]),
                      np.array([True]), 2, "time-decay", half_life_hours=1.0)
    assert got.tolist() == [[0.0, 1.0]]


def reference_transitions(offsets, channel, converted, order):
    base = C + 1
    start = base ** order
    src, dst = [], []
    for j, (touches,) in journeys_of(offsets, channel):
        if not touches:
            continue
        recent = [C] * order  # recent[k] = channel k steps back, C = none yet
        prev = start
        for c in touches:
            recent = [c] + recent[:-1]
            state = sum(d * base ** k for k, d in enumerate(recent))
            src.append(prev)
            dst.append(state)
            prev = state
        src.append(prev)
        dst.append(start + (1 if converted[j] else 2))
    return src, dst, start + 3


@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_transitions_match_reference(order: int) -> None:
    offsets, channel, _, converted = random_journeys(np.random.default_rng(order))
    src, dst, n_states = markov_transitions(offsets, channel, converted, C, order)
    ref_src, ref_dst, ref_n = reference_transitions(offsets, channel, converted, order)
    assert src.tolist() == ref_src and dst.tolist() == ref_dst and n_states == ref_n


def test_channel_masks_match_reference() -> None:
    offsets, channel, _, _ = random_journeys(np.random.default_rng(7))
    got = channel_masks(offsets, channel, C)
    for j, (touches,) in journeys_of(offsets, channel):
        assert got[j] == sum(1 << c for c in set(touches))


def reference_presence(touches, weight):
    present = sorted(set(touches))
    w = {c: max(weight[c], 0.0) for c in present}
    total = sum(w.values())
    row = [0.0] * len(weight)
    for c in present:
        row[c] = w[c] / total if total > 0 else 1 / len(present)
    return row


@pytest.mark.parametrize("weight", [
    [0.3, 0.5, 0.1, 0.05, 0.05],
    [0.0, -1.0, 0.2, 0.0, 0.0],     # negative counts as 0
    [0.0, 0.0, 0.0, 0.0, 0.0],      # nothing weighs: an even split
])
def test_weighted_presence_matches_reference(weight: list[float]) -> None:
    offsets, channel, _, converted = random_journeys(np.random.default_rng(11))
    got = weighted_presence(offsets, channel, converted, np.array(weight))
    for j, (touches,) in journeys_of(offsets, channel):
        if not converted[j] or not touches:
            assert not got[j].any()
            continue
        np.testing.assert_allclose(got[j], reference_presence(touches, weight), rtol=1e-12)
        assert math.isclose(got[j].sum(), 1.0)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="weight must be a finite"):
        weighted_presence(np.array([0, 1]), np.array([0]), np.array([True]), np.array([np.nan]))
    with pytest.raises(ValueError, match="channel codes"):
        channel_masks(np.array([0, 1]), np.array([C]), C)
    with pytest.raises(ValueError, match="rule must be one of"):
        rule_credit(np.array([0]), np.zeros(0), np.zeros(0), np.zeros(0, bool), C, "u-shaped")
    with pytest.raises(ValueError, match="offsets must be non-decreasing"):
        markov_transitions(np.array([0, 2, 1]), np.zeros(1), np.ones(2, bool), C, 1)
