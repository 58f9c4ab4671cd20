"""The shipped model: trained on a simulated mix of every world, checked against their truth.

The defaults reproduce the committed model (attribid.models.onnx's ``shipped/``).
PyTorch is imported only by ``train_on_worlds``, so the defaults read without it.
"""
from __future__ import annotations

import dataclasses
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from attribid.models.data.journeys import Journeys
from attribid.models.network.config import TrainConfig
from attribid.models.onnx.parity import ParityBounds
from attribid.models.simulation.simulate import (WORLDS, attribution_accuracy, journey_accuracy,
                                                 simulate, true_channel_shares)

if TYPE_CHECKING:  # needs PyTorch
    from attribid.models.network.architecture import AttributionNet

SHIPPED_SEED = 7
SHIPPED_JOURNEYS = 200_000
#: the shipped defaults differ from `attribid train` where a big, known data set allows it;
#: no blend (a channel-set table of the simulated worlds would say nothing of a user's
#: traffic) and a fixed number of passes, as the shipped model was trained
SHIPPED_CONFIG: dict[str, int | float] = {
    "epochs": 3, "patience": 0, "distill_epochs": 2, "distill_journeys": 30_000,
    "batch_size": 256, "threads": 1, "blend": 1.0}
#: journeys per world for the held-out truth metrics in the metadata
CHECK_JOURNEYS = 5_000
#: the check journeys of each world are simulated with seed ``seed * 100 + CHECK_SEED_OFFSET``
CHECK_SEED_OFFSET = 50

Log = Callable[[str], None]


def shipped_dir() -> Path:
    """Where the shipped model lives inside the installed package.

    >>> (shipped_dir() / "attribid.onnx").is_file()
    True
    """
    return Path(str(resources.files("attribid.models.onnx"))) / "shipped"


def simulate_mix(worlds: list[str], n_journeys: int, seed: int) -> tuple[Journeys, np.ndarray]:
    """Journeys drawn equally from ``worlds`` (ids prefixed by world) and their decision times.

    >>> j, ref = simulate_mix(["recency", "synergy"], 100, 1)
    >>> j.n_journeys, str(j.ids[0]).startswith("recency:"), ref.shape
    (100, True, (100,))
    """
    parts, refs = [], []
    sizes = np.full(len(worlds), n_journeys // len(worlds))
    sizes[: n_journeys - sizes.sum()] += 1
    for name, size in zip(worlds, sizes):
        journeys, truth = simulate(WORLDS[name], int(size), seed * 100 + list(WORLDS).index(name))
        parts.append(journeys)
        refs.append(truth.reference_time)
    return _concat(parts, worlds), np.concatenate(refs)


def train_on_worlds(config: TrainConfig, worlds: list[str], n_journeys: int, out: Path,
                    version: str, log: Log = print) -> Path:
    """Simulate, train, check against truth, export to ``out/attribid.onnx``; returns its path."""
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.network.train import train_network

    started = time.monotonic()
    journeys, ref = simulate_mix(worlds, n_journeys, config.seed)
    net, report = train_network(journeys, config, log=log, ref_time=ref)
    metrics = dict(report["metrics"])
    check = min(CHECK_JOURNEYS, max(n_journeys // len(worlds), 200))
    metrics["worlds"] = truth_metrics(net, worlds, config, check, log)
    summary = dict(report["summary"])
    summary["data"] = f"simulated: worlds {', '.join(worlds)}, seed {config.seed}"
    metadata = build_metadata(journeys.channels, config.max_len, version, summary, metrics,
                              report["base_rate"])
    path = export_model(net, out, metadata)
    log(f"wrote {path} ({time.monotonic() - started:.0f} s)")
    quantize_with_check_journeys(path, worlds, config.seed, check, log)
    return path


def quantize_with_check_journeys(path: Path, worlds: list[str], seed: int,
                                 n_journeys: int = CHECK_JOURNEYS, log: Log = print,
                                 bounds: ParityBounds | None = None) -> dict[str, Any]:
    """Write the int8 variant beside the float32 model at ``path``, gated on the journeys
    ``truth_metrics`` checks it on (``check_mix``); returns the gate.

    ``attribid quantize`` calls this on the committed model, so its variant is regenerated
    without retraining.
    """
    from attribid.models.onnx.quantize import quantize_beside  # needs the onnx package

    journeys, ref = check_mix(worlds, n_journeys, seed)
    data = (f"simulated check journeys: {n_journeys:,} per world ({', '.join(worlds)}), "
            f"seed {seed * 100 + CHECK_SEED_OFFSET}")
    return quantize_beside(path, journeys, ref, data, bounds or ParityBounds(), log)


def check_mix(worlds: list[str], n_journeys: int, seed: int) -> tuple[Journeys, np.ndarray]:
    """The fresh journeys of each world ``truth_metrics`` scores (``n_journeys`` per world),
    concatenated, and their decision times.

    >>> j, ref = check_mix(["recency", "synergy"], 50, 7)
    >>> j.n_journeys, str(j.ids[50]).startswith("synergy:"), ref.shape
    (100, True, (100,))
    """
    parts, refs = [], []
    for name in worlds:
        journeys, truth = simulate(WORLDS[name], n_journeys, seed * 100 + CHECK_SEED_OFFSET)
        parts.append(journeys)
        refs.append(truth.reference_time)
    return _concat(parts, worlds), np.concatenate(refs)


def truth_metrics(net: AttributionNet, worlds: list[str], config: TrainConfig, n_journeys: int,
                  log: Log = print) -> dict[str, dict[str, float]]:
    """Accuracy against true Shapley credit on fresh journeys of each world."""
    from attribid.models.network.train import predict_batches

    out = {}
    for name in worlds:
        journeys, truth = simulate(WORLDS[name], n_journeys,
                                   config.seed * 100 + CHECK_SEED_OFFSET)
        _, credit = predict_batches(net, journeys, config.max_len, ref_time=truth.reference_time)
        conv = journeys.converted
        shares = credit[conv].sum(axis=0)
        out[name] = {
            "attribution_accuracy": round(attribution_accuracy(
                shares / shares.sum(), true_channel_shares(journeys, truth)), 4),
            "journey_accuracy": round(journey_accuracy(credit, truth, conv), 4),
        }
        log(f"{name}: {out[name]}")
    return out


def _concat(parts: list[Journeys], worlds: list[str]) -> Journeys:
    # ids prefixed by their world: two worlds' journeys may share an id
    return Journeys.concat([
        dataclasses.replace(p, ids=np.array([f"{w}:{i}" for i in p.ids], dtype=object))
        for w, p in zip(worlds, parts)])
