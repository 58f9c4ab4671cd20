"""solve a budget allocation from a JSON spec

``attribid allocate --spec examples/allocation_spec.json [--check]`` prints, as JSON, the
allocation, its expected revenue, acquisitions, exposure, CPA and objective, the solver used
(``kkt`` for concave curves, ``dp`` when a Hill slope exceeds 1) and the certificate's
residuals. ``--check`` adds SLSQP's answer on the same problem. A bad spec exits 2 naming the
field; an infeasible one exits 3 naming the constraint.
"""
from __future__ import annotations

import argparse
import sys

import orjson

from attribid.cli import BAD_INPUT, INFEASIBLE, OK, errors_as
from attribid.kernels.allocation import Infeasible
from attribid.kernels.dp_allocation import solve_auto
from attribid.models.allocation.report import slsqp_check, solution
from attribid.models.allocation.spec import Spec, SpecError, load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, help="allocation spec (JSON)")
    parser.add_argument("--grid", type=int, default=1000, help="DP grid steps for S-shaped curves")
    parser.add_argument("--check", action="store_true", help="also solve with SciPy SLSQP")


def load_spec(path: str) -> Spec:
    """The spec at ``path``; a missing file or a bad field is bad input (exit 2)."""
    with errors_as(BAD_INPUT, SpecError, OSError):
        return load(path)


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    with errors_as(INFEASIBLE, Infeasible, prefix="infeasible: "):
        x, cert, method = solve_auto(spec.problem, grid=args.grid)
    doc = solution(spec, x, cert, method)
    if args.check:
        doc["slsqp"] = slsqp_check(spec)
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    return OK
