"""Floor A: in-process onnxruntime on the served model, per batch size, for one journey shape.

The time of ``session.run`` alone (features prepared beforehand), the median of
the best of several rounds, with the same intra-op thread count the server uses. Batch 1 is the
latency floor of one Score; the best journeys/s over batch sizes is the
throughput floor of any server of this model on this many cores.

    python -m loadtest.floors --cores 0 --steps 32
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import onnxruntime as ort
import orjson

from attribid.models.onnx.contract import INPUT_FEATURES, INPUT_MASK, SHIPPED_MODEL
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


def shipped_model() -> str:
    """Path of the shipped ONNX model."""
    from importlib.resources import files
    return str(files("attribid.models.onnx").joinpath(SHIPPED_MODEL))


def session(model: str, threads: int) -> ort.InferenceSession:
    """An onnxruntime CPU session with ``threads`` intra-op threads."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def feed(batch: int, steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The network's inputs for ``batch`` seeded journeys of ``steps`` touchpoints: floor A's."""
    feats, mask = model_inputs(generate(batch, seed=seed, length=steps))
    return {INPUT_FEATURES: feats, INPUT_MASK: mask}


def _timings_ms(sess: ort.InferenceSession, feed: dict[str, np.ndarray],
                budget_s: float) -> np.ndarray:
    times: list[int] = []
    end = time.perf_counter_ns() + int(budget_s * 1e9)
    while time.perf_counter_ns() < end or len(times) < 10:
        t0 = time.perf_counter_ns()
        sess.run(None, feed)
        times.append(time.perf_counter_ns() - t0)
    return np.array(times) / 1e6


def floor_a(model: str, steps: int = 32, threads: int = 1, budget_s: float = 1.0,
            batches: tuple[int, ...] = BATCHES, rounds: int = 5) -> list[BatchTiming]:
    """Floor A at every batch size in ``batches``, about ``budget_s`` seconds each.

    The batch sizes take turns over ``rounds`` rounds and each keeps its best
    round's median: a floor is the least the model needs, and a burst of other
    work on the core then spoils one round, not the figure.

    >>> # floor_a(shipped_model(), budget_s=0.2)[0].median_ms
    """
    sess = session(model, threads)
    feeds = {}
    for b in batches:
        feeds[b] = feed(b, steps)
        for _ in range(3):
            sess.run(None, feeds[b])
    best: dict[int, np.ndarray] = {}
    for _ in range(rounds):
        for b in batches:
            ms = _timings_ms(sess, feeds[b], budget_s / rounds)
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
    rows = floor_a(args.model or shipped_model(), args.steps, args.threads, args.budget)
    if args.json:
        sys.stdout.write(orjson.dumps([asdict(r) for r in rows]).decode() + "\n")
        return 0
    print(f"{'batch':>6}{'median ms':>11}{'p99 ms':>9}{'journeys/s':>12}")
    for r in rows:
        print(f"{r.batch:>6}{r.median_ms:>11.3f}{r.p99_ms:>9.3f}{r.journeys_per_s:>12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
