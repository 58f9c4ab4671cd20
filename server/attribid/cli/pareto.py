"""Sweep the objective weights of a spec and plot the Pareto front (the paper's Figure 5).

``attribid pareto --spec examples/allocation_spec.json --steps 12 --out docs`` writes
``docs/pareto.png`` (the front in two projections, the sweep's hypervolume history and the KKT
solver's convergence on the spec's own weights) and ``docs/pareto.md`` (the front's points).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from attribid.kernels.allocation import Infeasible, solve_into
from attribid.models.allocation.pareto import Front, sweep
from attribid.kernels.response import is_concave
from attribid.models.allocation.spec import Spec, SpecError, load, report_failure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, help="allocation spec (JSON)")
    parser.add_argument("--steps", type=int, default=12, help="weight grid steps per objective")
    parser.add_argument("--grid", type=int, default=1000, help="DP grid steps for S-shaped curves")
    parser.add_argument("--out", default="docs", help="directory for pareto.png and pareto.md")


def _history(spec: Spec) -> np.ndarray:
    """The KKT budget bisection's (t, budget residual) per iteration on the spec's own weights,
    without the CPA ceiling (with it binding, the budget is slack and there is no bisection)."""
    p = dataclasses.replace(spec.problem, max_cpa=0.0)
    hist = np.zeros((200, 2))
    if is_concave(p.conv_kind, p.conv_params) and is_concave(p.imp_kind, p.imp_params):
        solve_into(p, np.zeros(p.n), np.zeros(10), hist)
    return hist[~np.isnan(hist[:, 0])]


def plot(front: Front, hist: np.ndarray, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obj, eff = front.objectives, front.efficient
    fig, ax = plt.subplots(2, 2, figsize=(11, 8.5))
    for a, (j, label) in zip(ax[0], ((1, "acquisitions"), (2, "exposure (impressions)"))):
        a.scatter(obj[~eff, 0], obj[~eff, j], c="lightgrey", s=14, label="dominated")
        sc = a.scatter(obj[eff, 0], obj[eff, j], c=obj[eff, 3 - j], s=22, cmap="viridis", label="Pareto front")
        fig.colorbar(sc, ax=a, label=("exposure" if j == 1 else "acquisitions"))
        a.set_xlabel("revenue")
        a.set_ylabel(label)
        a.legend(loc="lower left", fontsize=8)
    ax[0][0].set_title("Pareto front: revenue x acquisitions (colour: exposure)")
    ax[0][1].set_title("Pareto front: revenue x exposure (colour: acquisitions)")
    ax[1][0].plot(np.arange(1, front.hypervolume.shape[0] + 1), front.hypervolume)
    ax[1][0].set_xlabel("weight vectors solved")
    ax[1][0].set_ylabel("hypervolume of the front (objectives / their maxima)")
    ax[1][0].set_title("Sweep convergence")
    if hist.shape[0]:
        ax[1][1].semilogy(np.arange(hist.shape[0]), np.abs(hist[:, 1]) + 1e-16, marker="o")
    ax[1][1].set_xlabel("iteration")
    ax[1][1].set_ylabel("|spend - budget| (log)")
    ax[1][1].set_title("KKT budget bisection (spec's weights, no CPA ceiling)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(spec: Spec, front: Front, cmd: str) -> str:
    lines = [f"<!-- made by: {cmd} -->", "# Pareto front of revenue, acquisitions and exposure", "",
             f"Made by `{cmd}`: {front.weights.shape[0]} weight vectors, "
             f"{int(front.efficient.sum())} on the front. Weights are shares of attention on each "
             "objective divided by its maximum alone. Plot: `pareto.png`.", "",
             "| w revenue | w acquisitions | w exposure | revenue | acquisitions | exposure | "
             + " | ".join(f"{n} spend" for n in spec.names) + " |",
             "|" + "---|" * (6 + len(spec.names))]
    order = np.argsort(-front.objectives[:, 0])
    for k in order:
        if not front.efficient[k]:
            continue
        w, o = front.weights[k], front.objectives[k]
        lines.append(f"| {w[0]:.2f} | {w[1]:.2f} | {w[2]:.2f} | {o[0]:,.0f} | {o[1]:,.1f} | {o[2]:,.0f} | "
                     + " | ".join(f"{v:,.0f}" for v in front.spend[k]) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    try:
        spec = load(args.spec)
        front = sweep(spec.problem, steps=args.steps, grid=args.grid)
    except (SpecError, Infeasible) as exc:
        return report_failure(exc)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = f"attribid pareto --spec {args.spec} --steps {args.steps} --out {args.out}"
    plot(front, _history(spec), out / "pareto.png")
    (out / "pareto.md").write_text(table(spec, front, cmd), encoding="utf-8")
    print(f"{int(front.efficient.sum())} of {front.weights.shape[0]} allocations on the front; "
          f"hypervolume {front.hypervolume[-1]:.4f}; wrote {out / 'pareto.png'} and {out / 'pareto.md'}")
    return 0
