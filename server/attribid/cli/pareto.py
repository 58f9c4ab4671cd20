"""sweep objective weights and plot the Pareto front

``attribid pareto --spec examples/allocation_spec.json --steps 12 [--out DIR]`` writes
``DIR/pareto.png`` (the front in two projections, the sweep's hypervolume history and the KKT
solver's convergence on the spec's own weights) and ``DIR/pareto.md`` (the front's points):
the paper's Figure 5. ``DIR`` is ``runs/`` unless given; ``--out docs`` regenerates the
committed report.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from attribid.cli import INFEASIBLE, OK, errors_as
from attribid.cli.allocate import load_spec
from attribid.kernels.allocation import Infeasible
from attribid.models.allocation.pareto import sweep
from attribid.models.allocation.report import bisection_history, front_table, plot_front


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, help="allocation spec (JSON)")
    parser.add_argument("--steps", type=int, default=12, help="weight grid steps per objective")
    parser.add_argument("--grid", type=int, default=1000, help="DP grid steps for S-shaped curves")
    parser.add_argument("--out", default="runs",
                        help="directory for pareto.png and pareto.md (default runs)")


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    with errors_as(INFEASIBLE, Infeasible, prefix="infeasible: "):
        front = sweep(spec.problem, steps=args.steps, grid=args.grid)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = f"attribid pareto --spec {args.spec} --steps {args.steps} --out {args.out}"
    plot_front(front, bisection_history(spec), out / "pareto.png")
    (out / "pareto.md").write_text(front_table(spec, front, cmd), encoding="utf-8")
    print(f"{int(front.efficient.sum())} of {front.weights.shape[0]} allocations on the front; "
          f"hypervolume {front.hypervolume[-1]:.4f}; wrote {out / 'pareto.png'} and {out / 'pareto.md'}")
    return OK
