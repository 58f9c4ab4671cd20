"""solve a budget allocation from a JSON spec

``attribid allocate --spec examples/allocation_spec.json [--check] [--format plan|json]``
solves the spec. On a terminal it prints a plan: spend and share per channel, the
expected revenue, acquisitions and CPA, and which constraint binds (the budget, the CPA
cap, a channel's floor or ceiling). When stdout is not a terminal, or with ``--format
json``, it prints JSON: the allocation, its expected revenue, acquisitions, exposure, CPA
and objective, the solver used (``kkt`` for concave curves, ``dp`` when a Hill slope
exceeds 1) and the certificate's residuals. ``--check`` adds SLSQP's answer on the same
problem. A bad spec exits 2 naming the field; an infeasible one exits 3 naming the
constraint.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import orjson

from attribid.cli import BAD_INPUT, INFEASIBLE, OK, errors_as, progress
from attribid.kernels.allocation import Infeasible
from attribid.kernels.dp_allocation import solve_auto
from attribid.kernels.response import values
from attribid.models.allocation.report import slsqp_check, solution
from attribid.models.allocation.spec import Spec, SpecError, load
from attribid.models.textgrid import grid

#: a constraint binds when its slack is below this share of its size
_TIGHT = 1e-6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, help="allocation spec (JSON)")
    parser.add_argument("--grid", type=int, default=1000, help="DP grid steps for S-shaped curves")
    parser.add_argument("--check", action="store_true", help="also solve with SciPy SLSQP")
    parser.add_argument("--format", choices=("plan", "json"), default=None,
                        help="plan (readable) or json (default: plan on a terminal, else json)")


def load_spec(path: str) -> Spec:
    """The spec at ``path``; a missing file or a bad field is bad input (exit 2)."""
    with errors_as(BAD_INPUT, SpecError, OSError):
        return load(path)


def binding(spec: Spec, doc: dict[str, Any]) -> list[str]:
    """Which constraints bind at the solution ``doc``, in words.

    >>> from attribid.models.allocation.spec import parse
    >>> spec = parse({"budget": 10, "channels": [{"name": "a", "value_per_conversion": 2,
    ...     "max": 4, "conversions": {"curve": "exponential", "top": 5, "scale": 3}},
    ...     {"name": "b", "value_per_conversion": 1,
    ...     "conversions": {"curve": "exponential", "top": 5, "scale": 3}}]})
    >>> binding(spec, solution(spec, *solve_auto(spec.problem)))
    ['the budget: all 10.00 is spent', 'a at its ceiling of 4.00']
    """
    p = spec.problem
    x = np.array([doc["allocation"][n] for n in spec.names])
    spent = float(x.sum())
    out = []
    scale = max(p.budget, 1.0)
    if p.budget - spent <= _TIGHT * scale:
        out.append(f"the budget: all {p.budget:,.2f} is spent")
    cpa = doc.get("cpa")
    if p.max_cpa > 0 and cpa is not None and p.max_cpa - cpa <= _TIGHT * p.max_cpa:
        out.append(f"the CPA cap of {p.max_cpa:,.2f}"
                   + (f": {p.budget - spent:,.2f} of the budget stays unspent, since more spend "
                      "would raise the CPA above the cap" if p.budget - spent > _TIGHT * scale
                      else ""))
    hi = np.maximum(np.minimum(p.hi, p.budget), p.lo)
    for k, name in enumerate(spec.names):
        if hi[k] > p.lo[k] and hi[k] - x[k] <= _TIGHT * scale:
            out.append(f"{name} at its ceiling of {hi[k]:,.2f}")
        elif p.lo[k] > 0 and x[k] - p.lo[k] <= _TIGHT * scale:
            out.append(f"{name} at its floor of {p.lo[k]:,.2f}")
    return out


def plan_text(spec: Spec, doc: dict[str, Any]) -> str:
    """The solution as a plan a person reads: per channel spend, share, expected revenue."""
    p = spec.problem
    x = np.array([doc["allocation"][n] for n in spec.names])
    conv = values(p.conv_kind, p.conv_params, x)
    revenue = p.value_per_conversion * conv
    spent = float(x.sum())
    rows = [["channel", "spend", "share", "conversions", "revenue", "CPA", "ROAS"]]
    for k, name in enumerate(spec.names):
        rows.append([name, f"{x[k]:,.2f}", f"{100 * x[k] / spent:.1f}%" if spent > 0 else "-",
                     f"{conv[k]:,.1f}", f"{revenue[k]:,.2f}",
                     f"{x[k] / conv[k]:,.2f}" if conv[k] > 0 else "-",
                     f"{revenue[k] / x[k]:,.2f}" if x[k] > 0 else "-"])
    rows.append(["total", f"{spent:,.2f}", "100.0%" if spent > 0 else "-",
                 f"{doc['acquisitions']:,.1f}", f"{doc['revenue']:,.2f}",
                 f"{doc['cpa']:,.2f}" if doc.get("cpa") is not None else "-",
                 f"{doc['revenue'] / spent:,.2f}" if spent > 0 else "-"])
    table = grid(rows[0], rows[1:])
    lines = [f"Budget {p.budget:,.2f}: {spent:,.2f} allocated"
             + (f", {p.budget - spent:,.2f} unspent" if p.budget - spent > 0.005 else ""),
             f"Expected revenue {doc['revenue']:,.2f}, {doc['acquisitions']:,.1f} acquisitions"
             + (f" at a CPA of {doc['cpa']:,.2f}" if doc.get("cpa") is not None else "")
             + f", {doc['exposure']:,.0f} impressions", "", *table, ""]
    binds = binding(spec, doc)
    lines.append("Binding: " + ("; ".join(binds) if binds else "nothing (an interior optimum)"))
    lines.append(f"Solver: {doc['method']}; --format json prints every figure and the "
                 "certificate")
    if "slsqp" in doc:
        check = doc["slsqp"]
        lines.append(f"SLSQP check: objective {check['objective']:,.2f} against "
                     f"{doc['objective']:,.2f} ({'converged' if check['success'] else 'failed'})")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    progress(f"solving {len(spec.names)} channels (the first run compiles the solver; "
             "later runs reuse it)")
    with errors_as(INFEASIBLE, Infeasible, prefix="infeasible: "):
        x, cert, method = solve_auto(spec.problem, grid=args.grid)
    doc = solution(spec, x, cert, method)
    if args.check:
        doc["slsqp"] = slsqp_check(spec)
    fmt = args.format or ("plan" if sys.stdout.isatty() else "json")
    if fmt == "plan":
        sys.stdout.write(plan_text(spec, doc))
    else:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    return OK
