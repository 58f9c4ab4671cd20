"""Length-aware batching: which journeys of a batch share one onnxruntime run.

A run pads every journey to the batch's longest, so one 64-touch call in a batch of
3-touch calls makes them all pay for 64 steps. Splitting a batch into runs of similar
lengths saves those steps but pays each run's fixed cost again. ``plan_runs`` chooses the
split with the least expected time under a cost model of one run, fitted on the served
model at warm-up (``fit_run_cost``):

    seconds(batch, steps) = overhead + steps * (per_step + per_journey_step * batch)

With journeys sorted by length, the best split into runs takes contiguous slices (a run's
cost depends only on its count and its longest journey: swapping a journey into the run
of the longer ones never costs more), so a dynamic programme over the sorted lengths
finds it exactly; batches hold at most a few dozen journeys.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class RunCost:
    """Seconds one run of ``batch`` journeys padded to ``steps`` takes (see the module)."""

    overhead: float
    per_step: float
    per_journey_step: float

    def of(self, batch: int, steps: int) -> float:
        return self.overhead + steps * (self.per_step + self.per_journey_step * batch)


#: never split: every batch in one run (a scorer whose model was not timed)
ONE_RUN = RunCost(overhead=math.inf, per_step=0.0, per_journey_step=0.0)


def plan_runs(lengths: Sequence[int] | np.ndarray, cost: RunCost) -> list[np.ndarray]:
    """Indices into ``lengths`` grouped into runs, least total ``cost`` first found; the
    runs ordered by length, indices within a run ascending by length.

    >>> cost = RunCost(overhead=10.0, per_step=1.0, per_journey_step=0.1)
    >>> [r.tolist() for r in plan_runs([3, 64, 3, 3], cost)]
    [[0, 2, 3], [1]]
    >>> [r.tolist() for r in plan_runs([30, 32, 31], cost)]
    [[0, 2, 1]]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n = lengths.shape[0]
    order = np.argsort(lengths, kind="stable")
    if n <= 1 or not math.isfinite(cost.overhead):
        return [order]
    steps = lengths[order]
    if steps[0] == steps[-1]:  # one length: a split only adds runs' fixed costs
        return [order]
    best = [0.0] + [math.inf] * n
    start = [0] * (n + 1)
    for j in range(1, n + 1):  # best[j]: the first j journeys (by length) in runs
        longest = int(steps[j - 1])
        for i in range(j):
            c = best[i] + cost.of(j - i, longest)
            if c < best[j]:
                best[j], start[j] = c, i
    runs = []
    j = n
    while j > 0:
        runs.append(order[start[j]:j])
        j = start[j]
    return runs[::-1]


def planned_cost(lengths: Sequence[int] | np.ndarray, runs: Sequence[np.ndarray],
                 cost: RunCost) -> float:
    """What ``runs`` cost under ``cost`` (each run padded to its longest journey)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return sum(cost.of(len(r), int(lengths[r].max())) for r in runs if len(r))


def fit_run_cost(short: float, long: float, full: float, short_steps: int, long_steps: int,
                 batch: int) -> RunCost:
    """The cost model from three timed runs: one journey of ``short_steps`` and of
    ``long_steps``, and ``batch`` journeys of ``long_steps`` (seconds each). Terms the
    timings would make negative (noise) are 0.

    >>> fit_run_cost(1.2e-3, 1.9e-3, 3.5e-3, 8, 64, 6)
    RunCost(overhead=0.0011, per_step=7.5e-06, per_journey_step=5e-06)
    """
    step_one = max((long - short) / max(long_steps - short_steps, 1), 0.0)  # per_step + per_j
    overhead = max(short - short_steps * step_one, 0.0)
    per_journey = 0.0
    if batch > 1:
        per_journey = max((full - overhead - long_steps * step_one)
                          / (long_steps * (batch - 1)), 0.0)
    per_step = max(step_one - per_journey, 0.0)
    return RunCost(round(overhead, 12), round(per_step, 12), round(per_journey, 12))
