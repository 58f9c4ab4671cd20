"""The `attribid` command: one entry point, one module per subcommand.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``;
its docstring's first line is the help text. Modules are imported only when
their subcommand runs, so `attribid serve` never imports PyTorch.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

#: subcommand -> module implementing it
COMMANDS: dict[str, str] = {
    "serve": "attribid.runtime.server",
    "score": "attribid.cli.score",
    "simulate": "attribid.cli.simulate",
    "train": "attribid.cli.train",
    "train-shipped": "attribid.cli.train_shipped",
    "attribute": "attribid.cli.attribute",
    "evaluate": "attribid.cli.evaluate",
    "allocate": "attribid.cli.allocate",
    "pareto": "attribid.cli.pareto",
    "market-sim": "attribid.cli.market_sim",
}

#: one-line help, kept here so `attribid --help` imports nothing heavy
HELP: dict[str, str] = {
    "serve": "serve the gRPC API (Score, ScoreStream, outcomes, allocation)",
    "score": "send one Score call to a running server and print the response",
    "simulate": "write simulated journeys with their true channel credit",
    "train": "train the attribution network on journeys and export it to ONNX",
    "train-shipped": "retrain the shipped model from its fixed seed",
    "attribute": "credit conversions to channels with a chosen model",
    "evaluate": "score every attribution model against simulated ground truth",
    "allocate": "solve a budget allocation from a JSON spec",
    "pareto": "sweep objective weights and plot the Pareto front",
    "market-sim": "run the closed loop in a simulated market against baselines",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(prog="attribid", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        sub.add_parser(name, help=HELP[name], add_help=False)
    if not argv or argv[0] not in COMMANDS:
        top.parse_args(argv or ["--help"])
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name])
    parser = argparse.ArgumentParser(prog=f"attribid {name}", description=HELP[name])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
