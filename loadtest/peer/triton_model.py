"""The PyTriton peer: Triton's C++ front end with attribid's model as a Python function.

Runs in ``.venv-triton`` (``loadtest/peer/setup_triton.sh``). The model function
(``loadtest.peer.scoring.PeerScorer``: attribid's featurizer, then one run of the given
ONNX file with the server's session options and one intra-op thread) sits behind PyTriton's
``@batch``, so Triton's dynamic batcher stacks requests into one call of up to
``--max-batch-size`` rows. Inputs and outputs as ``loadtest.peer.kserve`` describes them.
Triton's HTTP, gRPC and metrics front ends bind 127.0.0.1 on the given ports. Once the model
is ready it prints one JSON line, ``{"event": "serving", "address": "127.0.0.1:<grpc>"}``;
SIGTERM stops it.

    .venv-triton/bin/python -m loadtest.peer.triton_model --model m.onnx \\
        --grpc-port 8001 --http-port 8000 --metrics-port 8002 --workspace /tmp/triton
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from loadtest.peer.kserve import INPUTS, PER_TOUCH
from loadtest.peer.scoring import PeerScorer

MODEL_NAME = "attribid"


def infer_function(scorer: PeerScorer) -> Callable[..., dict[str, np.ndarray]]:
    """The batched model function Triton calls: named [B, ...] inputs in, named outputs out."""
    from pytriton.decorators import batch

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        conversion, credit = scorer(inputs)
        return {"conversion": conversion.reshape(-1, 1), "channel_credit": credit}

    return infer


def tensors(n_channels: int) -> tuple[list[Any], list[Any]]:
    """Triton's input and output definitions (per row; Triton adds the batch dimension)."""
    from pytriton.model_config import Tensor

    inputs = [Tensor(name=name, dtype=dtype, shape=(-1,) if name in PER_TOUCH else (1,))
              for name, (_, dtype) in INPUTS.items()]
    outputs = [Tensor(name="conversion", dtype=np.float32, shape=(1,)),
               Tensor(name="channel_credit", dtype=np.float32, shape=(n_channels,))]
    return inputs, outputs


def serve(args: argparse.Namespace) -> None:
    """Start Triton with the model bound, announce the address, block until SIGTERM."""
    from pytriton.model_config import DynamicBatcher, ModelConfig
    from pytriton.triton import Triton, TritonConfig

    scorer = PeerScorer(args.model, args.intra_op_threads)
    config = TritonConfig(http_address="127.0.0.1", http_port=args.http_port,
                          grpc_address="127.0.0.1", grpc_port=args.grpc_port,
                          metrics_address="127.0.0.1", metrics_port=args.metrics_port,
                          exit_timeout_secs=5)
    batcher = DynamicBatcher(max_queue_delay_microseconds=args.max_queue_delay_us)
    inputs, outputs = tensors(len(scorer.model.channels))
    triton = Triton(config=config, workspace=args.workspace)
    try:
        triton.bind(model_name=MODEL_NAME, infer_func=infer_function(scorer), inputs=inputs,
                    outputs=outputs, config=ModelConfig(max_batch_size=args.max_batch_size,
                                                        batcher=batcher), strict=True)
        triton.run()
        print(json.dumps({"event": "serving", "address": f"127.0.0.1:{args.grpc_port}",
                          "model": scorer.model.path, "model_version": scorer.model.version}),
              flush=True)
        while triton.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        triton.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="ONNX file; default the shipped model")
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--workspace", type=Path, default=None,
                        help="Triton's model store and sockets (default: a temporary folder)")
    parser.add_argument("--intra-op-threads", type=int, default=1)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-queue-delay-us", type=int, default=0,
                        help="how long Triton's dynamic batcher may hold a request for more")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
