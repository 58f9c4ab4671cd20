"""What the int8 variant saves: the network's forward pass, float32 against int8, in process.

    .venv/bin/python -m loadtest.bench_quantized                  # the shipped model, ~1 minute
    .venv/bin/python -m loadtest.bench_quantized --model DIR --repeats 500

Both models (``DIR/attribid.onnx`` and ``DIR/attribid.int8.onnx``, the shipped ones by
default) are loaded with the server's session options and run on the same featurized
journeys at batch 1 and 6 and lengths 8, 32 and 64. Calls alternate between the two models,
so a slower or busier moment of the machine falls on both alike. Prints each model's median
and p90 time per call and the ratio of the medians (float32 / int8: above 1, int8 is faster).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from attribid.kernels.featurize import N_FEATURES
from attribid.models.onnx import contract
from attribid.models.onnx.runtime import OnnxModel, model_folder

BATCHES = (1, 6)
LENGTHS = (8, 32, 64)


def featurized(rng: np.random.Generator, batch: int, steps: int,
               n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs shaped like the featurizer's: a channel one-hot and dense features, all real."""
    features = rng.uniform(0, 1, (batch, steps, N_FEATURES)).astype(np.float32)
    features[:, :, :16] = 0.0
    channel = rng.integers(0, n_channels, (batch, steps))
    np.put_along_axis(features[:, :, :16], channel[..., None], 1.0, axis=2)
    return features, np.ones((batch, steps), np.float32)


def interleaved_times(models: list[OnnxModel], features: np.ndarray, mask: np.ndarray,
                      repeats: int) -> list[np.ndarray]:
    """Seconds per call of each model, the models taking turns call by call."""
    times = [np.empty(repeats) for _ in models]
    for model in models:  # first-run costs (allocations, kernel choice) are not measured
        model.run(features, mask)
    for r in range(repeats):
        for k, model in enumerate(models):
            started = time.perf_counter()
            model.run(features, mask)
            times[k][r] = time.perf_counter() - started
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model folder (default: the shipped one)")
    parser.add_argument("--repeats", type=int, default=300, help="calls per model and case")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    folder = model_folder(args.model)
    if folder is None:
        parser.error("--model: expected a folder holding attribid.onnx and attribid.int8.onnx")
    float32 = OnnxModel(folder / contract.MODEL_FILE, args.threads)
    int8 = OnnxModel(folder / contract.INT8_MODEL_FILE, args.threads)
    print(f"float32 {float32.version} ({float32.path})\nint8    {int8.version} ({int8.path})")
    print(f"{args.repeats} interleaved calls each, {args.threads} intra-op thread(s)\n")
    print(f"{'batch':>5} {'len':>4} {'f32 p50 us':>11} {'f32 p90':>8} {'int8 p50 us':>12} "
          f"{'int8 p90':>9} {'ratio':>6}")
    rng = np.random.default_rng(0)
    for batch in BATCHES:
        for steps in LENGTHS:
            features, mask = featurized(rng, batch, steps, len(float32.channels))
            f32, i8 = interleaved_times([float32, int8], features, mask, args.repeats)
            p50_f, p50_i = np.median(f32) * 1e6, np.median(i8) * 1e6
            print(f"{batch:>5} {steps:>4} {p50_f:>11.0f} {np.quantile(f32, 0.9) * 1e6:>8.0f} "
                  f"{p50_i:>12.0f} {np.quantile(i8, 0.9) * 1e6:>9.0f} {p50_f / p50_i:>6.2f}")


if __name__ == "__main__":
    main()
