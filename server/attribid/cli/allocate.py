"""Solve a budget allocation from a JSON spec and print it as JSON.

``attribid allocate --spec examples/allocation_spec.json [--check]``: the allocation, its
expected revenue, acquisitions, exposure, CPA and objective, the solver used (``kkt`` for concave
curves, ``dp`` when a Hill slope exceeds 1) and the certificate's residuals. ``--check`` adds
SLSQP's answer on the same problem. An infeasible spec exits 3 naming the constraint.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import orjson

from attribid.kernels.allocation import Infeasible
from attribid.kernels.dp_allocation import solve_auto
from attribid.models.allocation.slsqp import objective_parts, solve_slsqp
from attribid.models.allocation.spec import Spec, SpecError, load, report_failure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, help="allocation spec (JSON)")
    parser.add_argument("--grid", type=int, default=1000, help="DP grid steps for S-shaped curves")
    parser.add_argument("--check", action="store_true", help="also solve with SciPy SLSQP")


def result(spec: Spec, x: np.ndarray, cert: dict[str, float], method: str) -> dict[str, Any]:
    """The printed document for one solution."""
    p = spec.problem
    revenue, acq, exposure = objective_parts(p, x)
    spend = float(x.sum())
    return {
        "allocation": {n: float(v) for n, v in zip(spec.names, x)},
        "revenue": revenue, "acquisitions": acq, "exposure": exposure,
        "cpa": spend / acq if acq > 0 else None,
        "objective": p.w_revenue * revenue + p.w_acquisitions * acq + p.w_exposure * exposure,
        "method": method,
        "certificate": {k: float(v) for k, v in cert.items()},
    }


def run(args: argparse.Namespace) -> int:
    try:
        spec = load(args.spec)
        x, cert, method = solve_auto(spec.problem, grid=args.grid)
    except (SpecError, Infeasible) as exc:
        return report_failure(exc)
    doc = result(spec, x, cert, method)
    if args.check:
        xs, ok, nit = solve_slsqp(spec.problem)
        check = result(spec, xs, {}, "slsqp")
        doc["slsqp"] = {"allocation": check["allocation"], "objective": check["objective"],
                        "success": ok, "iterations": nit}
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
