"""The Pareto front of (revenue, acquisitions, exposure) by a sweep of the objective weights.

Each objective is first maximised alone; the sweep then weights the objectives divided by
those maxima (so a weight is a share of attention, not a price), solves every weight vector on
a simplex grid, and keeps the non-dominated allocations. Weighted sums find every point of a
concave front; with concave curves the attainable set is convex, so nothing is missed
between grid points except resolution. The sweep's convergence history is the hypervolume of
the front found so far after each solve.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from attribid.kernels.allocation import Problem
from attribid.kernels.dp_allocation import solve_auto
from attribid.kernels.response import values


@dataclass(frozen=True)
class Front:
    """Every solve of the sweep and which of them are non-dominated."""

    #: [K, 3] normalised weights (revenue, acquisitions, exposure) in sweep order
    weights: np.ndarray
    #: [K, 3] objective values of each solve and [K, C] its spend
    objectives: np.ndarray
    spend: np.ndarray
    #: bool [K]: on the Pareto front
    efficient: np.ndarray
    #: [K]: hypervolume (objectives scaled by their maxima) of the front after each solve
    hypervolume: np.ndarray


def simplex(steps: int) -> np.ndarray:
    """All weight vectors (a, b, c) >= 0 with a + b + c = 1 on a grid of ``steps``.

    >>> simplex(1).tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """
    pts = [(i, j, steps - i - j) for i in range(steps + 1) for j in range(steps + 1 - i)]
    return np.array(pts, dtype=np.float64) / steps


def non_dominated(points: np.ndarray) -> np.ndarray:
    """bool mask of points no other point weakly beats in every coordinate and strictly in one.

    >>> non_dominated(np.array([[1.0, 1.0], [2.0, 0.5], [0.5, 0.5]])).tolist()
    [True, True, False]
    """
    ge = np.all(points[None, :, :] >= points[:, None, :], axis=2)
    gt = np.any(points[None, :, :] > points[:, None, :], axis=2)
    return ~np.any(ge & gt, axis=1)


def hypervolume(points: np.ndarray) -> float:
    """Volume dominated by ``points`` (3 objectives, all >= 0) above the origin, exactly.

    >>> hypervolume(np.array([[1.0, 1.0, 1.0], [2.0, 0.5, 0.5]]))
    1.25
    """
    if points.shape[0] == 0:
        return 0.0
    order = np.argsort(-points[:, 0])
    pts = points[order]
    total = 0.0
    for k in range(pts.shape[0]):
        nxt = pts[k + 1, 0] if k + 1 < pts.shape[0] else 0.0
        depth = pts[k, 0] - nxt
        if depth <= 0:
            continue
        # Area in (acquisitions, exposure) dominated by the points with revenue >= pts[k, 0].
        sl = pts[: k + 1, 1:]
        sl = sl[np.argsort(-sl[:, 0])]
        area, best_e = 0.0, 0.0
        for a, e in sl:  # a staircase: each point adds its width times its new height
            if e > best_e:
                area += a * (e - best_e)
                best_e = e
        total += depth * area
    return float(total)


def _parts(p: Problem, x: np.ndarray) -> np.ndarray:
    conv = values(p.conv_kind, p.conv_params, x)
    return np.array([p.value_per_conversion @ conv, conv.sum(), values(p.imp_kind, p.imp_params, x).sum()])


def sweep(p: Problem, *, steps: int = 10, grid: int = 1000) -> Front:
    """Solve ``p`` for every weight vector of ``simplex(steps)`` and mark the front.

    The problem's own weights are ignored; its curves and constraints are kept.
    """
    solo = []
    for w in np.eye(3):
        q = dataclasses.replace(p, w_revenue=w[0], w_acquisitions=w[1], w_exposure=w[2])
        solo.append(_parts(q, solve_auto(q, grid=grid)[0]))
    best = np.maximum(np.max(np.array(solo), axis=0), 1e-300)
    weights = simplex(steps)
    objectives = np.zeros((weights.shape[0], 3))
    spend = np.zeros((weights.shape[0], p.n))
    hv = np.zeros(weights.shape[0])
    for k, w in enumerate(weights):
        scaled = w / best
        q = dataclasses.replace(p, w_revenue=scaled[0], w_acquisitions=scaled[1], w_exposure=scaled[2])
        x, _, _ = solve_auto(q, grid=grid)
        spend[k] = x
        objectives[k] = _parts(q, x)
        found = objectives[: k + 1] / best
        hv[k] = hypervolume(found[non_dominated(found)])
    return Front(weights, objectives, spend, non_dominated(objectives), hv)
