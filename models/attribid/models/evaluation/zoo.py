"""Every method on random zoo worlds: simulate, train the network as a user would, score.

For each world (``zoo_names``: the forms in turn, each world its own seed): simulate its
journeys, train the network with the default recipe on those journeys alone (no truth: the
featurizer's own reference times, as ``attribid train`` on a user's files), export it to
ONNX and credit the converting journeys through the served path (``attribute --method
network``), credit them with every classic method, and score each against the exact true
Shapley shares (1 - total variation, simulate.attribution_accuracy). Needs the train extra.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from attribid.models.attribution.network_credit import network_credit
from attribid.models.evaluation.evaluate import classic_models
from attribid.models.network.config import TrainConfig
from attribid.models.simulation.simulate import (
    attribution_accuracy, journey_accuracy, true_channel_shares,
)
from attribid.models.simulation.zoo import simulate_zoo, zoo_world
from attribid.models.simulation.zoo_world import FORMS

#: the name the network's scores go under
NETWORK = "network"
#: the accuracy every world should reach
TARGET = 0.95


@dataclass
class ZooResult:
    """One zoo world: every method's scores against its truth."""

    world: str
    form: str
    channels: int
    journeys: int
    conversions: int
    conversion_rate: float
    harvest: list[str]
    #: method -> 1 - TV of its channel shares to the true ones
    accuracy: dict[str, float]
    #: method -> mean over converting journeys of 1 - TV per journey
    journey_accuracy: dict[str, float]
    #: channel -> true share
    true_shares: dict[str, float]
    #: channel -> the network's share
    network_shares: dict[str, float]
    train_seconds: float
    #: the network's held-out figures from training (AUC, log-loss, ...)
    network_metrics: dict[str, float] = field(default_factory=dict)
    #: what the recipe chose on held-out journeys (blend weight, conversion epochs kept) and
    #: the accuracy of the same network without the blend (network_alone)
    recipe: dict[str, float] = field(default_factory=dict)

    def best_classic(self) -> tuple[str, float]:
        """The classic method with the highest accuracy, and that accuracy."""
        name = max((m for m in self.accuracy if m != NETWORK), key=lambda m: self.accuracy[m])
        return name, self.accuracy[name]

    def margin(self) -> float:
        """The network's accuracy minus the best classic method's."""
        return self.accuracy[NETWORK] - self.best_classic()[1]

    def fails(self) -> bool:
        """Below the target, or beaten by a classic method."""
        return self.accuracy[NETWORK] < TARGET or self.margin() <= 0


def zoo_names(n_worlds: int, seed: int) -> list[str]:
    """The ``n_worlds`` worlds of a zoo run: the forms in turn, world k seeded ``seed + k``.

    >>> zoo_names(3, 10)
    ['zoo:additive:10', 'zoo:noisy-or:11', 'zoo:logistic:12']
    """
    if n_worlds < 1:
        raise ValueError(f"n_worlds must be >= 1, got {n_worlds}")
    return [f"zoo:{FORMS[k % len(FORMS)]}:{seed + k}" for k in range(n_worlds)]


def evaluate_zoo_world(name: str, n_journeys: int, seed: int,
                       config: TrainConfig | None = None,
                       log: Callable[[str], None] = print) -> ZooResult:
    """Simulate ``name``, train the network on its journeys, score every method.

    >>> r = evaluate_zoo_world("zoo:additive:1", 600, 3, TrainConfig(epochs=1,
    ...     distill_epochs=1, distill_journeys=100), log=lambda line: None)
    >>> r.world, sorted(r.accuracy)[:2], 0.0 <= r.accuracy["network"] <= 1.0
    ('zoo:additive:1', ['first-click', 'last-click'], True)
    """
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.network.train import train_network

    world = zoo_world(name)
    journeys, truth = simulate_zoo(world, n_journeys, seed)
    conv = journeys.converted
    if not conv.any():
        raise ValueError(f"{name}: no journey of {n_journeys} converted; simulate more")
    true_shares = true_channel_shares(journeys, truth)
    credits = {method: fn(journeys) for method, fn in classic_models().items()}
    config = config or TrainConfig()
    started = time.monotonic()
    net, report = train_network(journeys, config, log=log)
    seconds = time.monotonic() - started
    with tempfile.TemporaryDirectory() as folder:
        metadata = build_metadata(journeys.channels, config.max_len, f"zoo-{name}",
                                  report["summary"], report["metrics"], report["base_rate"])
        credits[NETWORK] = network_credit(journeys, str(export_model(net, folder, metadata)))
        # What the blend did: the same network serving its own credit.
        alone = (network_credit(journeys, str(export_model(
                     net.without_credit_blend(), Path(folder) / "alone", metadata)))
                 if net.blended else credits[NETWORK])
    accuracy, per_journey = {}, {}
    for method, credit in credits.items():
        shares = credit[conv].sum(axis=0)
        accuracy[method] = attribution_accuracy(shares, true_shares)
        per_journey[method] = journey_accuracy(credit, truth, conv)
    network_alone = attribution_accuracy(alone[conv].sum(axis=0), true_shares)
    net_shares = credits[NETWORK][conv].sum(axis=0)
    net_shares = net_shares / net_shares.sum()
    return ZooResult(
        world=name, form=world.form, channels=len(world.channels), journeys=n_journeys,
        conversions=int(conv.sum()), conversion_rate=float(conv.mean()),
        harvest=list(world.harvest_names), accuracy=accuracy, journey_accuracy=per_journey,
        true_shares=_by_channel(journeys.channels, true_shares),
        network_shares=_by_channel(journeys.channels, net_shares),
        train_seconds=round(seconds, 1),
        network_metrics={k: float(v) for k, v in report["metrics"].items()},
        recipe={**recipe_choices(report["summary"]), "network_alone": network_alone})


def recipe_choices(summary: dict[str, object]) -> dict[str, float]:
    """The truth-free choices of a training summary: the blend weight and the epochs kept.

    >>> recipe_choices({"credit_blend": {"weight": 0.6}, "conversion_epochs": {"kept": 3}})
    {'blend_weight': 0.6, 'conversion_epochs': 3.0}
    """
    blend, epochs = summary.get("credit_blend"), summary.get("conversion_epochs")
    out: dict[str, float] = {}
    if isinstance(blend, dict):
        out["blend_weight"] = float(blend["weight"])
    if isinstance(epochs, dict):
        out["conversion_epochs"] = float(epochs["kept"])
    return out


def _by_channel(channels: tuple[str, ...], shares: np.ndarray) -> dict[str, float]:
    return dict(zip(channels, np.round(shares, 6).tolist()))


def world_seed(seed: int, k: int) -> int:
    """The journeys' seed of world k of a run seeded ``seed`` (not the world's own seed).

    >>> world_seed(2026, 0) != world_seed(2026, 1)
    True
    """
    return int(np.random.SeedSequence([seed, k, 1]).generate_state(1)[0])


def run_zoo(n_worlds: int, n_journeys: int, seed: int, config: TrainConfig | None = None,
            log: Callable[[str], None] = print, jobs: int = 1) -> list[ZooResult]:
    """Evaluate every world of ``zoo_names(n_worlds, seed)``, with a progress bar.

    ``jobs`` > 1 runs that many worlds at a time, each in its own process (training uses
    one thread); the results are the same, in the same order.

    >>> rs = run_zoo(1, 600, 5, TrainConfig(epochs=1, distill_epochs=0), log=lambda l: None)
    >>> [r.world for r in rs]
    ['zoo:additive:5']
    """
    from attribid.models.progress import counter

    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    names = zoo_names(n_worlds, seed)
    tasks = [(name, n_journeys, world_seed(seed, k), config) for k, name in enumerate(names)]
    results: list[ZooResult | None] = [None] * len(names)
    with counter(len(names), desc="zoo worlds", unit="world") as done:
        if jobs == 1:
            for k, task in enumerate(tasks):
                results[k] = _one_world(task, log)
                done.update()
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # spawn, not fork: a forked child of a process that loaded PyTorch can hang
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                futures = {pool.submit(_one_world, task, log): k for k, task in enumerate(tasks)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    done.update()
    return [r for r in results if r is not None]


def _one_world(task: tuple[str, int, int, TrainConfig | None],
               log: Callable[[str], None]) -> ZooResult:
    name, n_journeys, journeys_seed, config = task
    t0 = time.monotonic()
    log(f"{name}: {n_journeys:,} journeys, train, every method")
    r = evaluate_zoo_world(name, n_journeys, journeys_seed, config, log)
    best, acc = r.best_classic()
    log(f"{name}: network {r.accuracy[NETWORK]:.3f}, best classic {best} {acc:.3f}, "
        f"training {r.train_seconds:.0f} s, world {time.monotonic() - t0:.0f} s")
    return r
