"""The weight sweep, the non-dominated filter and the hypervolume against plain references."""
from __future__ import annotations

import itertools

import numpy as np

from attribid.kernels.allocation import Problem
from attribid.models.allocation.pareto import hypervolume, non_dominated, simplex, sweep
from attribid.kernels.response import EXPONENTIAL, HILL


def test_non_dominated_matches_pairwise_reference() -> None:
    pts = np.random.default_rng(0).integers(0, 5, size=(40, 3)).astype(float)  # ties included
    ref = [not any(np.all(q >= p) and np.any(q > p) for q in pts) for p in pts]
    assert non_dominated(pts).tolist() == ref


def test_hypervolume_matches_inclusion_exclusion() -> None:
    pts = np.random.default_rng(1).uniform(0.1, 1.0, size=(5, 3))
    total = 0.0
    for r in range(1, 6):  # volume of a union of origin boxes: inclusion-exclusion over subsets
        for sub in itertools.combinations(range(5), r):
            total += (-1) ** (r + 1) * np.prod(pts[list(sub)].min(axis=0))
    assert abs(hypervolume(pts) - total) < 1e-12
    assert hypervolume(np.empty((0, 3))) == 0.0


def test_every_sweep_point_is_optimal_for_its_weights() -> None:
    n = 4
    ck = np.array([HILL, EXPONENTIAL, HILL, EXPONENTIAL], dtype=np.int64)
    cp = np.array([[50.0, 800.0, 0.8], [30.0, 400.0, 0.0], [20.0, 300.0, 1.0], [40.0, 900.0, 0.0]])
    mk = np.full(n, EXPONENTIAL, dtype=np.int64)
    mp = np.array([[1e5, 3e3, 0.0], [5e4, 500.0, 0.0], [2e5, 4e3, 0.0], [1e4, 800.0, 0.0]])
    p = Problem(2000.0, np.array([100.0, 60.0, 150.0, 80.0]), np.zeros(n), np.full(n, 2000.0),
                ck, cp, mk, mp)
    front = sweep(p, steps=5)
    assert front.weights.shape == (simplex(5).shape[0], 3)
    best = front.objectives.max(axis=0)
    scores = (front.weights / best) @ front.objectives.T  # [weights, allocations]
    assert np.all(scores.diagonal() >= scores.max(axis=1) * (1 - 1e-9))
    assert np.all(np.diff(front.hypervolume) >= -1e-12)  # the front only grows
    assert front.efficient.sum() >= 3
