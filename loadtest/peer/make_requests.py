"""Turn journeys (an .npz of padded columns) into KServe v2 ModelInferRequest bytes.

    .venv/bin/python -m loadtest.peer.make_requests runs/journeys.npz runs/peer.bin

The .npz holds ``loadtest.peer.kserve.padded_columns``' arrays (``channel``,
``timestamp``, ``interaction``, ``cost``, ``device`` as [J, T]; ``category`` and
``length`` as [J, 1]); the tensors go as raw contents, as high-rate v2 clients send them.
The same bytes serve MLServer and Triton (both name the model ``attribid``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from loadtest.driver import write_requests
from loadtest.peer.kserve import INPUTS, infer_request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journeys", type=Path, help=".npz of padded columns")
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
