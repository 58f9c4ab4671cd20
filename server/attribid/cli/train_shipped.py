"""retrain the shipped model from its fixed seed

``attribid train-shipped [--out DIR --journeys N --seed S]`` simulates a mix of
every world (equal shares, seeds derived from S), trains the network on it
exactly as ``attribid train`` would, scores it on fresh simulated journeys of
each world against their true credit, and writes ``DIR/attribid.onnx`` and
``DIR/attribid.json`` (default: the package's models/shipped/). The defaults
reproduce the committed model.

``--per-world DIR`` instead trains one network per world on that world's
journeys only (``DIR/<world>/attribid.onnx``): what a user gets by training on
their own market's data, and what ``attribid evaluate --world-models DIR`` scores.
"""
from __future__ import annotations

import argparse
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from attribid.models.data.journeys import Journeys
from attribid.models.simulation.simulate import WORLDS, simulate
from attribid.cli.train import add_config_arguments, config_from_args

SHIPPED_SEED = 7
SHIPPED_JOURNEYS = 200_000
#: the shipped defaults differ from `attribid train` where a big, known data set allows it
SHIPPED_CONFIG = {"epochs": 3, "distill_epochs": 2, "distill_journeys": 30_000,
                  "batch_size": 256, "threads": 1}
#: journeys per world for the held-out truth metrics in the metadata
CHECK_JOURNEYS = 5_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="output directory (default: models/shipped)")
    parser.add_argument("--journeys", type=int, default=SHIPPED_JOURNEYS,
                        help="simulated training journeys (split equally over the worlds)")
    parser.add_argument("--per-world", default=None,
                        help="train one model per world into DIR/<world>/ instead")
    parser.add_argument("--worlds", default=",".join(WORLDS),
                        help="with --per-world: comma-separated worlds (default: all)")
    add_config_arguments(parser)
    parser.set_defaults(seed=SHIPPED_SEED, **SHIPPED_CONFIG)


def run(args: argparse.Namespace) -> int:
    """Simulate, train, check against truth, export; returns the exit code.

    >>> # run(parser.parse_args([]))  # rewrites models/shipped/attribid.onnx
    """
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"attribid train-shipped: {exc}", file=sys.stderr)
        return 2
    if args.journeys < 100:
        print("attribid train-shipped: --journeys must be >= 100", file=sys.stderr)
        return 2
    if args.per_world:
        worlds = [w.strip() for w in args.worlds.split(",") if w.strip()]
        unknown = [w for w in worlds if w not in WORLDS]
        if unknown:
            print(f"attribid train-shipped: --worlds: unknown {unknown}", file=sys.stderr)
            return 2
        for name in worlds:
            _train_and_export(config, [name], args.journeys, Path(args.per_world) / name,
                              f"attribid-net-1+sim-{name}-seed{config.seed}")
        return 0
    out = Path(args.out) if args.out else Path(str(resources.files("attribid.models.onnx"))) / "shipped"
    _train_and_export(config, list(WORLDS), args.journeys, out,
                      f"attribid-net-1+sim-mix-seed{config.seed}")
    return 0


def simulate_mix(worlds: list[str], n_journeys: int, seed: int) -> tuple[Journeys, np.ndarray]:
    """Journeys drawn equally from ``worlds`` (ids prefixed by world) and their decision times.

    >>> j, ref = simulate_mix(["recency", "synergy"], 100, 1)
    >>> j.n_journeys, str(j.ids[0]).startswith("recency:")
    (100, True)
    """
    parts, refs = [], []
    sizes = np.full(len(worlds), n_journeys // len(worlds))
    sizes[: n_journeys - sizes.sum()] += 1
    for name, size in zip(worlds, sizes):
        journeys, truth = simulate(WORLDS[name], int(size), seed * 100 + list(WORLDS).index(name))
        parts.append(journeys)
        refs.append(truth.reference_time)
    return _concat(parts, worlds), np.concatenate(refs)


def _train_and_export(config: Any, worlds: list[str], n_journeys: int, out: Path,
                      version: str) -> None:
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.network.train import train_network

    started = time.monotonic()
    journeys, ref = simulate_mix(worlds, n_journeys, config.seed)
    net, report = train_network(journeys, config, log=_log, ref_time=ref)
    metrics = dict(report["metrics"])
    check = min(CHECK_JOURNEYS, max(n_journeys // len(worlds), 200))
    metrics["worlds"] = _truth_metrics(net, worlds, config, check)
    summary = dict(report["summary"])
    summary["data"] = f"simulated: worlds {', '.join(worlds)}, seed {config.seed}"
    metadata = build_metadata(journeys.channels, config.max_len, version, summary, metrics,
                              report["base_rate"])
    path = export_model(net, out, metadata)
    _log(f"wrote {path} ({time.monotonic() - started:.0f} s)")


def _truth_metrics(net: Any, worlds: list[str], config: Any,
                   n_journeys: int) -> dict[str, dict[str, float]]:
    """Accuracy against true Shapley credit on fresh journeys of each world."""
    from attribid.models.simulation.simulate import attribution_accuracy, journey_accuracy, true_channel_shares
    from attribid.models.network.train import predict_batches

    out = {}
    for name in worlds:
        journeys, truth = simulate(WORLDS[name], n_journeys, config.seed * 100 + 50)
        _, credit = predict_batches(net, journeys, config.max_len, ref_time=truth.reference_time)
        conv = journeys.converted
        shares = credit[conv].sum(axis=0)
        out[name] = {
            "attribution_accuracy": round(attribution_accuracy(
                shares / shares.sum(), true_channel_shares(journeys, truth)), 4),
            "journey_accuracy": round(journey_accuracy(credit, truth, conv), 4),
        }
        _log(f"{name}: {out[name]}")
    return out


def _concat(parts: list[Journeys], worlds: list[str]) -> Journeys:
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for p in parts:
        offsets.append(p.offsets[1:] + base)
        base += p.n_touchpoints
    ids = np.concatenate([np.array([f"{w}:{i}" for i in p.ids], dtype=object)
                          for w, p in zip(worlds, parts)])
    return Journeys(
        ids=ids, offsets=np.concatenate(offsets),
        channel=np.concatenate([p.channel for p in parts]),
        timestamp=np.concatenate([p.timestamp for p in parts]),
        interaction=np.concatenate([p.interaction for p in parts]),
        cost=np.concatenate([p.cost for p in parts]),
        device=np.concatenate([p.device for p in parts]),
        category=np.concatenate([p.category for p in parts]),
        converted=np.concatenate([p.converted for p in parts]),
        conversion_time=np.concatenate([p.conversion_time for p in parts]),
        value=np.concatenate([p.value for p in parts]), channels=parts[0].channels)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
