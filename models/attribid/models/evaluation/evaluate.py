"""Score every attribution model against simulated ground truth (NumPy + onnxruntime only).

For one world: simulate journeys, credit them with each classic method and
each network, and compare with the simulator's true Shapley credit:

- attribution accuracy: 1 - TV between a model's channel shares over all
  converting journeys and the true shares (simulate.true_channel_shares);
- journey accuracy: mean over converting journeys of 1 - TV per journey;
- for the networks: conversion AUC and log-loss, and how closely the served
  one-pass credit follows the exact Shapley values of the same network
  (brute force over channel subsets, 2**k passes);
- latency per converting journey and peak traced memory of each call.
"""
from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np

from attribid.models.data.journeys import Journeys
from attribid.models.attribution.classic import METHODS, attribute_journeys
from attribid.models.network.distill import credit_shares, network_shapley
from attribid.models.evaluation.metrics import auc, log_loss, row_agreement
from attribid.models.attribution.network_credit import network_credit, predict_journeys, to_model_channels
from attribid.models.onnx.runtime import OnnxModel, load_model
from attribid.models.simulation.simulate import (
    Truth, World, attribution_accuracy, journey_accuracy, simulate, true_channel_shares,
)

Credit = Callable[[Journeys], np.ndarray]


@dataclass
class ModelScore:
    """One model on one world (or one product category of it)."""

    name: str
    accuracy: float
    journey_accuracy: float
    #: channel shares over converting journeys
    shares: np.ndarray
    ms_per_journey: float = float("nan")
    peak_mb: float = float("nan")
    auc: float = float("nan")
    log_loss: float = float("nan")


@dataclass
class WorldResult:
    world: World
    journeys: int
    conversions: int
    true_shares: np.ndarray
    models: list[ModelScore]
    #: product category code -> scores of each model within it
    categories: dict[int, list[ModelScore]] = field(default_factory=dict)
    #: network name -> fidelity figures of its served credit
    fidelity: dict[str, dict[str, float]] = field(default_factory=dict)
    #: network name -> its removal effects against the true ones (see removal_check)
    removal: dict[str, dict[str, float]] = field(default_factory=dict)


def classic_models() -> dict[str, Credit]:
    """Each classic method with its default options, by name.

    >>> sorted(classic_models())[:2]
    ['first-click', 'last-click']
    """
    return {m: partial(_classic, method=m) for m in METHODS}


def _classic(journeys: Journeys, method: str) -> np.ndarray:
    return attribute_journeys(journeys, method)


def evaluate_world(world: World, n_journeys: int, seed: int,
                   networks: dict[str, str | None], fidelity_journeys: int = 1500) -> WorldResult:
    """Every classic model and each network (name -> ONNX path, None = shipped) on one world.

    >>> from attribid.models.simulation.simulate import WORLDS
    >>> r = evaluate_world(WORLDS["balanced"], 300, 2026, {"network": None}, fidelity_journeys=20)
    >>> r.journeys, [m.name for m in r.models][-2:], sorted(r.fidelity)
    (300, ['network', 'true probability'], ['network'])
    """
    journeys, truth = simulate(world, n_journeys, seed)
    conv = journeys.converted
    credits: dict[str, np.ndarray] = {}
    scores: list[ModelScore] = []
    models: dict[str, Credit] = dict(classic_models())
    for name, path in networks.items():
        models[name] = partial(network_credit, model_path=path)
    true_shares = true_channel_shares(journeys, truth)
    for name, fn in models.items():
        credit, seconds, peak = _measure(fn, journeys)
        credits[name] = credit
        score = _score(name, credit, truth, conv, true_shares)
        score.ms_per_journey = 1000.0 * seconds / max(int(conv.sum()), 1)
        score.peak_mb = peak
        scores.append(score)
    result = WorldResult(world=world, journeys=journeys.n_journeys, conversions=int(conv.sum()),
                         true_shares=true_shares, models=scores)
    probs: dict[str, np.ndarray] = {}
    for name, path in networks.items():
        model = load_model(path)
        prob = probs[name] = _conversion(model, journeys, truth)
        score = next(s for s in scores if s.name == name)
        score.auc, score.log_loss = auc(conv, prob), log_loss(conv, prob)
        result.fidelity[name] = _fidelity(model, journeys, truth, credits[name], fidelity_journeys)
        result.removal[name] = removal_check(model, journeys, truth, fidelity_journeys)
    oracle = ModelScore("true probability", float("nan"), float("nan"), true_shares,
                        auc=auc(conv, truth.p_true), log_loss=log_loss(conv, truth.p_true))
    result.models.append(oracle)
    for cat in np.unique(journeys.category):
        rows = journeys.category == cat
        if not (rows & conv).any():
            continue
        sub, sub_truth = journeys.subset(rows), _truth_rows(truth, rows)
        sub_true = true_channel_shares(sub, sub_truth)
        result.categories[int(cat)] = [
            _score(name, credits[name][rows], sub_truth, conv[rows], sub_true)
            for name in models]
        for name in networks:
            s = next(x for x in result.categories[int(cat)] if x.name == name)
            prob = probs[name][rows]
            s.auc, s.log_loss = auc(conv[rows], prob), log_loss(conv[rows], prob)
    return result


def serving_latency(model: OnnxModel, journeys: Journeys, truth: Truth,
                    batch: int, repeats: int = 200) -> float:
    """Median ms per call of featurize + one forward pass on ``batch`` journeys.

    >>> from attribid.models.simulation.simulate import WORLDS
    >>> js, truth = simulate(WORLDS["balanced"], 300, seed=1)
    >>> serving_latency(load_model(None), js, truth, batch=1, repeats=3) > 0
    True
    """
    from attribid.models.network.dataset import featurize_journeys

    picked = to_model_channels(journeys, model)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeats):
        idx = rng.choice(journeys.n_journeys, size=batch, replace=False)
        t0 = time.perf_counter()
        features, mask = featurize_journeys(picked.subset(idx), model.max_len,
                                            ref_time=truth.reference_time[idx])
        model.run(features, mask)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def removal_check(model: OnnxModel, journeys: Journeys, truth: Truth,
                  limit: int = 1500) -> dict[str, float]:
    """Network vs true removal effect of one channel, when it made the last touch and when not.

    For converting journeys with at least two channels: ``last`` removes the
    channel of the last touch, ``earlier`` a channel that did not make the last
    touch. Means of v(all) - v(all without the channel), network and truth.

    >>> from attribid.models.simulation.simulate import WORLDS
    >>> js, truth = simulate(WORLDS["balanced"], 300, seed=1)
    >>> sorted(removal_check(load_model(None), js, truth))
    ['earlier_network', 'earlier_truth', 'journeys', 'last_network', 'last_truth']
    """
    from attribid.models.network.dataset import featurize_journeys, keep_channels, present_channels

    present = present_channels(journeys)
    last = journeys.channel[np.maximum(journeys.offsets[1:] - 1, 0)]
    rows = np.flatnonzero(journeys.converted & (present.sum(axis=1) >= 2))[:limit]
    out: dict[str, float] = {"journeys": float(rows.size)}
    if rows.size == 0:
        return out
    earlier = np.argmax(present[rows] & (np.arange(present.shape[1]) != last[rows, None]), axis=1)
    picked = to_model_channels(journeys.subset(rows), model)
    model_code = np.array([model.channels.index(c) for c in journeys.channels])
    ref = truth.reference_time[rows]
    full = model.run(*featurize_journeys(picked, model.max_len, ref_time=ref))[0]
    for name, channel in (("last", last[rows]), ("earlier", earlier)):
        keep = np.int64(2 ** len(model.channels) - 1) & ~(np.int64(1) << model_code[channel])
        copies = keep_channels(picked, np.arange(rows.size), keep)
        without = model.run(*featurize_journeys(copies, model.max_len, ref_time=ref))[0]
        out[f"{name}_network"] = float(np.mean(full - without))
        out[f"{name}_truth"] = float(np.mean(truth.removal[rows, channel]))
    return out


def _conversion(model: OnnxModel, journeys: Journeys, truth: Truth) -> np.ndarray:
    prob, _, _ = predict_journeys(model, to_model_channels(journeys, model),
                                  ref_time=truth.reference_time)
    return prob


def _fidelity(model: OnnxModel, journeys: Journeys, truth: Truth, served: np.ndarray,
              limit: int) -> dict[str, float]:
    """Served credit vs the same network's exact channel Shapley shares (brute force)."""
    rows = np.flatnonzero(journeys.converted)[:limit]
    picked = to_model_channels(journeys.subset(rows), model)

    def predict(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return model.run(features, mask)[0].astype(np.float64)

    t0 = time.perf_counter()
    phi, present = network_shapley(picked, predict, model.max_len,
                                   ref_time=truth.reference_time[rows])
    seconds = time.perf_counter() - t0
    shares, _ = credit_shares(phi, present)
    exact = np.zeros_like(served)
    cols = [model.channels.index(c) for c in journeys.channels]
    exact[rows] = shares[:, cols]
    mask = np.zeros(journeys.n_journeys, dtype=bool)
    mask[rows] = True
    sub_truth = _truth_rows(truth, mask)
    true_rows = np.maximum(sub_truth.shapley, 0.0)
    served_rows, exact_rows = served[rows], exact[rows]
    return {
        "journeys": float(rows.size),
        "served_vs_exact": float(row_agreement(served_rows, exact_rows).mean()),
        "served_vs_truth": journey_accuracy(served_rows, sub_truth, np.ones(rows.size, bool)),
        "exact_vs_truth": journey_accuracy(exact_rows, sub_truth, np.ones(rows.size, bool)),
        "exact_accuracy": attribution_accuracy(exact_rows.sum(0), _true_share_sum(true_rows)),
        "exact_ms_per_journey": 1000.0 * seconds / max(rows.size, 1),
    }


def _true_share_sum(true_rows: np.ndarray) -> np.ndarray:
    total = true_rows.sum(axis=1, keepdims=True)
    rows = np.divide(true_rows, total, out=np.zeros_like(true_rows), where=total > 0)
    return rows.sum(axis=0)


def _score(name: str, credit: np.ndarray, truth: Truth, conv: np.ndarray,
           true_shares: np.ndarray) -> ModelScore:
    shares = credit[conv].sum(axis=0)
    shares = shares / shares.sum() if shares.sum() > 0 else shares
    return ModelScore(name=name, accuracy=attribution_accuracy(shares, true_shares),
                      journey_accuracy=journey_accuracy(credit, truth, conv), shares=shares)


def _measure(fn: Credit, journeys: Journeys) -> tuple[np.ndarray, float, float]:
    """Result, wall seconds, and peak traced MB (a second, traced run: tracing slows Python)."""
    fn(journeys.subset(np.arange(min(50, journeys.n_journeys))))  # compile / load once
    t0 = time.perf_counter()
    credit = fn(journeys)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    fn(journeys)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return credit, seconds, peak / 2**20


def _truth_rows(truth: Truth, rows: np.ndarray) -> Truth:
    return Truth(shapley=truth.shapley[rows], removal=truth.removal[rows],
                 p_true=truth.p_true[rows], p_base=truth.p_base[rows],
                 reference_time=truth.reference_time[rows],
                 touch_shapley=np.zeros(0), after_conversion=truth.after_conversion,
                 world=truth.world)
