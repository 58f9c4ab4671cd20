"""Turn journeys (an .npz of equal-length columns) into V2 ModelInferRequest bytes (.venv-peer).

    .venv-peer/bin/python -m loadtest.peer.make_requests runs/journeys32.npz runs/peer32.bin

The .npz holds ``channel``, ``timestamp``, ``interaction``, ``cost``, ``device``
as [J, T] arrays and ``category`` as [J]; the tensors go as raw contents, as
high-rate V2 clients send them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from mlserver.grpc import dataplane_pb2 as v2

from loadtest.driver import write_requests

#: input name -> (V2 datatype, numpy dtype)
INPUTS = {
    "channel": ("INT32", np.int32), "timestamp": ("FP64", np.float64),
    "interaction": ("INT32", np.int32), "cost": ("FP64", np.float64),
    "device": ("INT32", np.int32), "category": ("INT32", np.int32),
}


def infer_request(model: str, cols: dict[str, np.ndarray], j: int) -> bytes:
    """The serialized ModelInferRequest for journey ``j`` (batch of one)."""
    req = v2.ModelInferRequest(model_name=model, id=f"lt-{j}")
    for name, (datatype, dtype) in INPUTS.items():
        row = np.ascontiguousarray(cols[name][j], dtype=dtype).reshape(1, -1)
        req.inputs.add(name=name, datatype=datatype, shape=list(row.shape))
        req.raw_input_contents.append(row.tobytes())
    return req.SerializeToString()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journeys", type=Path, help=".npz of [J, T] columns")
    parser.add_argument("out", type=Path, help="requests file for loadtest.driver")
    parser.add_argument("--model", default="attribid")
    args = parser.parse_args(argv)
    with np.load(args.journeys) as data:
        cols = {k: data[k] for k in INPUTS}
    write_requests(args.out, [infer_request(args.model, cols, j)
                              for j in range(cols["channel"].shape[0])])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
