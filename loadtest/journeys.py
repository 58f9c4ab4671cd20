"""Realistic, seeded Score traffic: journeys of 1-64 touchpoints as a simulator draws them.

Channels follow a Markov chain (people tend to stay on a channel, and drift
towards search and direct as they get closer to buying); each channel has its
own click rate, cost per click and cost per thousand impressions; a journey has
a main device with the odd switch; gaps between touches mix minutes and days.
Every journey ends before "now", so the server never sees a future timestamp.

>>> gen = generate(100, seed=1)
>>> reqs = score_requests(gen)
>>> len(reqs), 1 <= len(reqs[0].journey) <= 64
(100, True)
"""
from __future__ import annotations

import time

import numpy as np

from attribid.kernels.featurize import featurize
from attribid.models.data.journeys import Journeys
from attribid.kernels.taxonomy import (CLICK, DEFAULT_CHANNELS, IMPRESSION,
                                       PRODUCT_CATEGORIES, UNKNOWN_CATEGORY)
from attribid.v1 import attribution_pb2 as pb

MAX_TOUCHPOINTS = 64

#: where journeys start (search, display, social, email, affiliate, direct, offline)
_START = np.array([0.30, 0.28, 0.20, 0.07, 0.05, 0.05, 0.05])
#: P(next channel | channel); rows sum to 1. Sticky diagonals, drift to search/direct.
_TRANSITION = np.array([
    [0.45, 0.12, 0.08, 0.07, 0.08, 0.17, 0.03],
    [0.20, 0.40, 0.12, 0.06, 0.07, 0.12, 0.03],
    [0.18, 0.14, 0.40, 0.08, 0.06, 0.11, 0.03],
    [0.20, 0.05, 0.05, 0.40, 0.05, 0.23, 0.02],
    [0.25, 0.08, 0.07, 0.05, 0.35, 0.17, 0.03],
    [0.30, 0.08, 0.07, 0.10, 0.05, 0.37, 0.03],
    [0.25, 0.15, 0.10, 0.05, 0.05, 0.15, 0.25],
])
_CLICK_RATE = np.array([0.45, 0.04, 0.12, 0.30, 0.35, 0.90, 0.0])
#: median cost of a click and of one impression, in the campaign's currency
_CPC = np.array([1.20, 0.60, 0.80, 0.05, 0.90, 0.0, 0.0])
_CPM = np.array([3.0, 2.5, 6.0, 0.5, 1.0, 0.0, 12.0]) / 1000.0
#: desktop, mobile, tablet (codes 1-3); 0 = unknown is mixed in separately
_DEVICE = np.array([0.45, 0.45, 0.10])
_FLOOR_CPM = np.array([2.0, 1.5, 4.0, 0.0, 0.5, 0.0, 8.0]) / 1000.0


def draw_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Journey lengths in 1..64: most 2-8 touches, a long tail up to 64.

    >>> lens = draw_lengths(np.random.default_rng(0), 1000)
    >>> int(lens.min()) >= 1 and int(lens.max()) <= 64
    True
    """
    raw = np.rint(rng.lognormal(mean=1.4, sigma=0.8, size=n))
    return np.clip(raw, 1, MAX_TOUCHPOINTS).astype(np.int64)


def generate(n_journeys: int, seed: int, length: int | None = None,
             now: float | None = None) -> Journeys:
    """Draw ``n_journeys`` journeys (all of ``length`` touches if given).

    Timestamps are epoch seconds, oldest first, the newest at most a few
    minutes before ``now`` (default: the wall clock).

    >>> j = generate(3, seed=0, length=32)
    >>> j.lengths().tolist()
    [32, 32, 32]
    """
    if n_journeys < 1:
        raise ValueError("n_journeys must be >= 1")
    if length is not None and not 1 <= length <= MAX_TOUCHPOINTS:
        raise ValueError(f"length must be in [1, {MAX_TOUCHPOINTS}], got {length}")
    rng = np.random.default_rng(seed)
    now = time.time() if now is None else now
    lens = (np.full(n_journeys, length, np.int64) if length is not None
            else draw_lengths(rng, n_journeys))
    offsets = np.zeros(n_journeys + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    n_rows = int(offsets[-1])
    step = np.arange(n_rows) - np.repeat(offsets[:-1], lens)
    journey_of = np.repeat(np.arange(n_journeys), lens)

    channel = _markov_channels(rng, lens, offsets)
    click = rng.random(n_rows) < _CLICK_RATE[channel]
    interaction = np.where(click, CLICK, IMPRESSION).astype(np.int8)
    unit = np.where(click, _CPC[channel], _CPM[channel])
    cost = np.round(unit * rng.lognormal(0.0, 0.4, n_rows), 6)

    main_device = rng.choice(3, size=n_journeys, p=_DEVICE) + 1
    device = main_device[journey_of].astype(np.int8)
    switch = rng.random(n_rows) < 0.15
    device[switch] = (rng.choice(3, size=int(switch.sum()), p=_DEVICE) + 1).astype(np.int8)
    device[rng.random(n_rows) < 0.03] = 0

    # Gaps: 70 % within a session (minutes), 30 % across days.
    gaps = np.where(rng.random(n_rows) < 0.7,
                    rng.exponential(240.0, n_rows), rng.exponential(86400.0, n_rows))
    gaps[step == 0] = 0.0
    since_start = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[offsets[:-1]], lens)
    end_lag = rng.exponential(120.0, n_journeys) + 1.0
    start = now - end_lag - since_start[offsets[1:] - 1]
    timestamp = np.floor((start[journey_of] + since_start) * 1000.0) / 1000.0

    category = rng.integers(0, len(PRODUCT_CATEGORIES), n_journeys).astype(np.int32)
    category[rng.random(n_journeys) < 0.1] = UNKNOWN_CATEGORY
    return Journeys(
        ids=np.array([f"lt-{seed}-{j}" for j in range(n_journeys)], dtype=object),
        offsets=offsets, channel=channel, timestamp=timestamp, interaction=interaction,
        cost=cost, device=device, category=category,
        converted=np.zeros(n_journeys, bool),
        conversion_time=np.full(n_journeys, np.nan), value=np.zeros(n_journeys),
        channels=DEFAULT_CHANNELS,
    )


def _markov_channels(rng: np.random.Generator, lens: np.ndarray,
                     offsets: np.ndarray) -> np.ndarray:
    """Channel codes by walking the chain one step at a time over all journeys."""
    channel = np.empty(int(offsets[-1]), np.int32)
    cum = np.cumsum(_TRANSITION, axis=1)
    current = rng.choice(len(_START), size=lens.shape[0], p=_START)
    for s in range(int(lens.max())):
        alive = lens > s
        channel[offsets[:-1][alive] + s] = current[alive]
        u = rng.random(lens.shape[0])
        current = np.minimum((u[:, None] > cum[current]).sum(axis=1), len(_START) - 1)
    return channel


def next_channels(journeys: Journeys, seed: int) -> np.ndarray:
    """The channel selling the impression after each journey: one more Markov step."""
    rng = np.random.default_rng(seed + 1)
    last = journeys.channel[journeys.offsets[1:] - 1]
    cum = np.cumsum(_TRANSITION, axis=1)
    u = rng.random(last.shape[0])
    return np.minimum((u[:, None] > cum[last]).sum(axis=1), len(_START) - 1)


def score_requests(journeys: Journeys, seed: int = 0,
                   campaign_id: str = "") -> list[pb.ScoreRequest]:
    """One ScoreRequest per journey; the impression is scored at the server's clock.

    >>> r = score_requests(generate(1, seed=3, length=4))[0]
    >>> len(r.journey), r.impression.timestamp_ms
    (4, 0)
    """
    names = journeys.channels
    imp = next_channels(journeys, seed)
    out: list[pb.ScoreRequest] = []
    ts_ms = (journeys.timestamp * 1000.0).astype(np.int64).tolist()
    ch = journeys.channel.tolist()
    inter = journeys.interaction.tolist()
    cost = journeys.cost.tolist()
    dev = journeys.device.tolist()
    offsets = journeys.offsets.tolist()
    for j in range(journeys.n_journeys):
        cat = int(journeys.category[j])
        req = pb.ScoreRequest(
            request_id=str(journeys.ids[j]), campaign_id=campaign_id,
            product_category=PRODUCT_CATEGORIES[cat] if cat < UNKNOWN_CATEGORY else "",
            impression=pb.ImpressionContext(channel=names[imp[j]],
                                            floor_price=float(_FLOOR_CPM[imp[j]])),
        )
        req.journey.extend(
            pb.Touchpoint(channel=names[ch[i]], timestamp_ms=ts_ms[i],
                          interaction=inter[i], cost=cost[i], device=dev[i])
            for i in range(offsets[j], offsets[j + 1]))
        out.append(req)
    return out


def outcome_request(rng: np.random.Generator, batch_id: str,
                    campaign_id: str = "") -> pb.ReportOutcomesRequest:
    """A plausible hour of outcomes for every channel, keyed by ``batch_id``.

    >>> r = outcome_request(np.random.default_rng(0), "b1")
    >>> len(r.outcomes) == len(DEFAULT_CHANNELS)
    True
    """
    spend = rng.gamma(2.0, 50.0, len(DEFAULT_CHANNELS))
    conversions = rng.poisson(spend / 40.0).astype(float)
    return pb.ReportOutcomesRequest(
        batch_id=batch_id, campaign_id=campaign_id,
        outcomes=[pb.ChannelOutcome(channel=name, spend=float(s), conversions=float(c),
                                    revenue=float(c * rng.uniform(40.0, 120.0)),
                                    impressions=float(np.floor(s * 300.0)))
                  for name, s, c in zip(DEFAULT_CHANNELS, spend, conversions)],
    )


def model_inputs(journeys: Journeys, max_len: int = MAX_TOUCHPOINTS,
                 now: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The network's (features, mask) for these journeys scored at ``now``: floor A's input.

    >>> f, m = model_inputs(generate(2, seed=0, length=32))
    >>> f.shape, m.shape
    ((2, 32, 64), (2, 32))
    """
    now = time.time() if now is None else now
    feats, mask, _ = featurize(
        journeys.offsets, journeys.channel, journeys.timestamp, journeys.interaction,
        journeys.cost, journeys.device, journeys.category,
        np.full(journeys.n_journeys, now), max_len)
    return feats, mask
