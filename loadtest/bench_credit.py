"""What the credit blend costs per call: the served network with and without its table lookup.

    .venv/bin/python -m loadtest.bench_credit                 # about 1 minute; runs/bench_credit/
    .venv/bin/python -m loadtest.bench_credit --out docs      # rewrites docs/served-credit.md

For 7 and 16 channels, one network (seeded weights: the cost does not depend on what was
learnt) is exported twice, plain and with a credit blend (models.network.blend: a
``[2 ** C, C]`` table of data-driven Shapley values read by the journey's channel bitmask),
and each is quantized to int8 as `attribid train` does (the variant the server serves).
The four models then answer the same 32-touch journey at batch 1 and a batch of 6, calls
taking turns, with the server's session options; the report gives each model's median time
per call and the blend's extra cost in microseconds. Needs the train extra (PyTorch, onnx).
"""
from __future__ import annotations

import argparse
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from loadtest.bench_quantized import featurized, interleaved_times

CHANNELS = (7, 16)
BATCHES = (1, 6)
STEPS = 32
REPORT = "served-credit.md"


def build_models(n_channels: int, folder: Path) -> dict[str, Path]:
    """Plain and blended exports of one seeded network, each float32 and int8."""
    import torch

    from attribid.models.network.architecture import AttributionNet
    from attribid.models.network.blend import set_credit_table
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.onnx.quantize import quantize_file

    channels = [f"c{k}" for k in range(n_channels)]
    meta = build_metadata(channels, 64, "bench", {}, {}, 0.05)
    torch.manual_seed(n_channels)
    net = AttributionNet(n_channels).eval()
    out: dict[str, Path] = {}
    out["plain"] = export_model(net, folder / "plain", meta)
    rng = np.random.default_rng(n_channels)
    values = rng.uniform(0.0, 0.2, 1 << n_channels)
    values[0] = 0.0
    net.set_credit_blend(torch.from_numpy(set_credit_table(values, n_channels)), 0.6, 0.01)
    out["blended"] = export_model(net, folder / "blended", meta)
    for name in ("plain", "blended"):
        out[name + " int8"] = quantize_file(out[name], out[name].with_name("attribid.int8.onnx"))
    return out


def measure(repeats: int) -> list[dict[str, float | int | str]]:
    """One row per channel count, precision and batch: medians in microseconds."""
    from attribid.models.onnx.runtime import OnnxModel

    rows: list[dict[str, float | int | str]] = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for n_channels in CHANNELS:
            paths = build_models(n_channels, Path(tmp) / str(n_channels))
            for precision in ("float32", "int8"):
                suffix = "" if precision == "float32" else " int8"
                plain = OnnxModel(paths["plain" + suffix])
                blended = OnnxModel(paths["blended" + suffix])
                for batch in BATCHES:
                    features, mask = featurized(rng, batch, STEPS, n_channels)
                    a, b = interleaved_times([plain, blended], features, mask, repeats)
                    pa, pb = float(np.median(a) * 1e6), float(np.median(b) * 1e6)
                    rows.append({"channels": n_channels, "precision": precision, "batch": batch,
                                 "plain_us": pa, "blended_us": pb, "extra_us": pb - pa,
                                 "file_mb": paths["blended" + suffix].stat().st_size / 1e6})
    return rows


def markdown(rows: list[dict[str, float | int | str]], command: str, repeats: int) -> str:
    lines = [
        "# What the served credit costs per call", "",
        f"Regenerate: `{command}` ({platform.machine()}, {_cores()} cores; "
        f"{datetime.now(timezone.utc):%Y-%m-%d}).", "",
        "The network as `attribid train` exports it, plain and with its credit blend "
        "(the network's credit mixed with data-driven Shapley's, read from a per-channel-set "
        f"table inside the graph), one {STEPS}-touch journey per row of the batch, "
        f"{repeats} calls each, the two models taking turns (loadtest.bench_credit). The "
        "blend adds a bitmask, one table row per journey and a renormalisation to the one "
        "forward pass.", "",
        "| channels | precision | batch | plain p50 us | blended p50 us | blend's extra us "
        "| blended file MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['channels']} | {r['precision']} | {r['batch']} | "
                     f"{r['plain_us']:.0f} | {r['blended_us']:.0f} | {r['extra_us']:+.0f} | "
                     f"{r['file_mb']:.2f} |")
    return "\n".join(lines + [""])


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1000, help="calls per model and case")
    parser.add_argument("--out", default="runs/bench_credit",
                        help="report folder (default runs/bench_credit; docs rewrites the "
                             "committed report)")
    args = parser.parse_args(argv)
    if args.repeats < 10:
        parser.error("--repeats: must be >= 10")
    rows = measure(args.repeats)
    words = ["python -m loadtest.bench_credit"]
    words += [] if args.repeats == 1000 else ["--repeats", str(args.repeats)]
    words += [] if args.out == "runs/bench_credit" else ["--out", args.out]
    report = markdown(rows, " ".join(words), args.repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(report, encoding="utf-8")
    print(report)
    print(f"wrote {out / REPORT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
