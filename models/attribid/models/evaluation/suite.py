"""One evaluation run: every world scored against its truth, serving latency timed, the report
written (attribid.models.evaluation.report)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from attribid.models.evaluation.evaluate import WorldResult, evaluate_world, serving_latency
from attribid.models.evaluation.report import write_report
from attribid.models.onnx.runtime import load_model
from attribid.models.progress import bar
from attribid.models.simulation.simulate import WORLDS, simulate

#: the report's name for the network under test (by default the shipped one)
SHIPPED = "network"
#: the report's name for the network trained on the world's own journeys
PER_WORLD = "network (this world)"


def world_model(world_models: str | Path, world: str) -> Path:
    """Where the network trained on ``world`` alone lives under ``world_models``.

    >>> world_model("models", "recency").as_posix()
    'models/recency/attribid.onnx'
    """
    return Path(world_models) / world / "attribid.onnx"


def run_evaluation(out: Path, command: str, worlds: list[str], n_journeys: int, seed: int,
                   model: str | None = None, world_models: str | None = None,
                   fidelity_journeys: int = 1500, latency_repeats: int = 200,
                   log: Callable[[str], None] = print) -> Path:
    """Score every model on each world, time serving, write ``out/evaluation.md``; its path.

    ``command`` is the command line that regenerates the report, quoted in it.
    """
    started = time.monotonic()
    results: list[WorldResult] = []
    for name in bar(worlds, total=len(worlds), desc="worlds", unit="world"):
        networks: dict[str, str | None] = {SHIPPED: model}
        if world_models:
            networks[PER_WORLD] = str(world_model(world_models, name))
        log(f"{name}: {n_journeys:,} journeys, every model against the truth")
        t0 = time.monotonic()
        results.append(evaluate_world(WORLDS[name], n_journeys, seed, networks, fidelity_journeys))
        log(f"{name}: {time.monotonic() - t0:.0f} s")
    served = load_model(model)
    journeys, truth = simulate(WORLDS[worlds[0]], min(n_journeys, 5000), seed + 1)
    repeats = max(latency_repeats, 5)
    log(f"serving latency: {repeats} calls at batch 1 and 64")
    latency = {"batch 1 (ms per call)": serving_latency(served, journeys, truth, 1, repeats),
               "batch 64 (ms per call)": serving_latency(served, journeys, truth, 64, repeats)}
    latency["batch 64 (ms per journey)"] = latency["batch 64 (ms per call)"] / 64
    log(f"writing {out / 'evaluation.md'} and its plots")
    return write_report(out, command, results, served, latency, journeys, truth,
                        seconds=time.monotonic() - started, world_models=world_models)
