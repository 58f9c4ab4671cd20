"""Floor A: in-process onnxruntime on the served model, per batch size, for one journey shape.

The time of the model's run alone (features prepared beforehand), the median of the best of
several rounds. The model is loaded as the server loads it (``attribid.models.onnx.runtime``:
the same session options, the same intra-op thread count) and run through the same call. Batch
1 is the latency floor of one Score; the best journeys/s over batch sizes is the throughput
floor of any server of this model on this many cores.

    python -m loadtest.floors --cores 0 --steps 32
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import orjson

from attribid.models.onnx.runtime import OnnxModel, load_model, shipped_model_path
from loadtest.journeys import generate, model_inputs
from loadtest.procs import pin_self

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class BatchTiming:
    """One batch size: median and p99 wall time of one run, and journeys per second."""

    batch: int
    median_ms: float
    p99_ms: float
    journeys_per_s: float


def feed(batch: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(features, mask) for ``batch`` seeded journeys of ``steps`` touchpoints: floor A's input.

    >>> features, mask = feed(2, 5)
    >>> features.shape, mask.shape
    ((2, 5, 64), (2, 5))
    """
    return model_inputs(generate(batch, seed=seed, length=steps))


def _timings_ms(model: OnnxModel, inputs: tuple[np.ndarray, np.ndarray],
                budget_s: float) -> np.ndarray:
    times: list[int] = []
    end = time.perf_counter_ns() + int(budget_s * 1e9)
    while time.perf_counter_ns() < end or len(times) < 10:
        t0 = time.perf_counter_ns()
        model.run(*inputs)
        times.append(time.perf_counter_ns() - t0)
    return np.array(times) / 1e6


def floor_a(model: str, steps: int = 32, threads: int = 1, budget_s: float = 1.0,
            batches: tuple[int, ...] = BATCHES, rounds: int = 5) -> list[BatchTiming]:
    """Floor A at every batch size in ``batches``, about ``budget_s`` seconds each.

    The batch sizes take turns over ``rounds`` rounds and each keeps its best
    round's median: a floor is the least the model needs, and a burst of other
    work on the core then spoils one round, not the figure.

    >>> [t.batch for t in floor_a(shipped_model_path(), budget_s=0.01, batches=(1, 4), rounds=1)]
    [1, 4]
    """
    onnx = load_model(model, threads)
    feeds = {}
    for b in batches:
        feeds[b] = feed(b, steps)
        for _ in range(3):
            onnx.run(*feeds[b])
    best: dict[int, np.ndarray] = {}
    for _ in range(rounds):
        for b in batches:
            ms = _timings_ms(onnx, feeds[b], budget_s / rounds)
            if b not in best or np.median(ms) < np.median(best[b]):
                best[b] = ms
    out = []
    for b in batches:
        median = float(np.median(best[b]))
        out.append(BatchTiming(batch=b, median_ms=median, p99_ms=float(np.percentile(best[b], 99)),
                               journeys_per_s=b / median * 1000.0))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="ONNX file; default the shipped model")
    parser.add_argument("--steps", type=int, default=32, help="touchpoints per journey")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--cores", default=None, help="pin to these cores, e.g. 0")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per batch size")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    pin_self(args.cores)
    rows = floor_a(args.model or shipped_model_path(), args.steps, args.threads, args.budget)
    if args.json:
        sys.stdout.write(orjson.dumps([asdict(r) for r in rows]).decode() + "\n")
        return 0
    print(f"{'batch':>6}{'median ms':>11}{'p99 ms':>9}{'journeys/s':>12}")
    for r in rows:
        print(f"{r.batch:>6}{r.median_ms:>11.3f}{r.p99_ms:>9.3f}{r.journeys_per_s:>12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
