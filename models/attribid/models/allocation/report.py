"""What the allocation commands report: one solution as a document, a Pareto front as a plot
and a table."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from attribid.kernels.allocation import solve_into
from attribid.kernels.response import is_concave
from attribid.models.allocation.pareto import Front
from attribid.models.allocation.slsqp import objective_parts, solve_slsqp
from attribid.models.allocation.spec import Spec


def solution(spec: Spec, x: np.ndarray, cert: dict[str, float], method: str) -> dict[str, Any]:
    """The document `attribid allocate` prints for one solution ``x`` of ``spec``.

    >>> from attribid.kernels.dp_allocation import solve_auto
    >>> from attribid.models.allocation.spec import parse
    >>> spec = parse({"budget": 10, "channels": [{"name": "a", "value_per_conversion": 2,
    ...     "conversions": {"curve": "exponential", "top": 5, "scale": 3}}]})
    >>> doc = solution(spec, *solve_auto(spec.problem))
    >>> doc["allocation"], doc["method"]
    ({'a': 10.0}, 'kkt')
    """
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


def slsqp_check(spec: Spec) -> dict[str, Any]:
    """SciPy SLSQP's answer on the same problem: a second opinion on the solver's."""
    xs, ok, nit = solve_slsqp(spec.problem)
    check = solution(spec, xs, {}, "slsqp")
    return {"allocation": check["allocation"], "objective": check["objective"],
            "success": ok, "iterations": nit}


def bisection_history(spec: Spec) -> np.ndarray:
    """The KKT budget bisection's (t, budget residual) per iteration on the spec's own weights,
    without the CPA ceiling (with it binding, the budget is slack and there is no bisection)."""
    p = dataclasses.replace(spec.problem, max_cpa=0.0)
    hist = np.zeros((200, 2))
    if is_concave(p.conv_kind, p.conv_params) and is_concave(p.imp_kind, p.imp_params):
        solve_into(p, np.zeros(p.n), np.zeros(10), hist)
    return hist[~np.isnan(hist[:, 0])]


def plot_front(front: Front, hist: np.ndarray, path: Path) -> None:
    """``path`` (PNG): the front in two projections, the sweep's hypervolume history and the
    KKT budget bisection ``hist`` (from ``bisection_history``)."""
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


def front_table(spec: Spec, front: Front, cmd: str) -> str:
    """The front's points as a Markdown page; ``cmd`` is the command line that made it."""
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
