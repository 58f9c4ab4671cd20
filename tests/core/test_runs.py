"""Length-aware batching: the split into runs is the cheapest there is, and scoring a batch
in several runs answers exactly what one run would."""
from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import pytest

from attribid.core.runs import ONE_RUN, RunCost, fit_run_cost, plan_runs, planned_cost
from attribid.core.scoring import Scorer, _synthetic
from attribid.models.onnx.runtime import load_model


def partitions(items: list[int]):
    """Every set partition of ``items`` (the brute force plan_runs must match)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in partitions(rest):
        yield [[first]] + part
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]


@pytest.mark.parametrize("seed", range(40))
def test_the_plan_costs_what_the_best_of_every_partition_costs(seed) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    lengths = rng.integers(1, 65, n)
    cost = RunCost(*rng.uniform(0, 1, 3) * [1e-3, 2e-5, 2e-5])
    runs = plan_runs(lengths, cost)
    assert sorted(np.concatenate(runs).tolist()) == list(range(n))  # each journey once
    best = min(planned_cost(lengths, [np.array(p) for p in part], cost)
               for part in partitions(list(range(n))))
    assert planned_cost(lengths, runs, cost) == pytest.approx(best, rel=1e-12)


def test_a_costly_run_overhead_keeps_one_run_and_a_cheap_one_splits_by_length() -> None:
    lengths = [64, 3, 3, 3, 3, 3]
    assert len(plan_runs(lengths, RunCost(1.0, 1e-6, 1e-6))) == 1
    assert [r.tolist() for r in plan_runs(lengths, RunCost(1e-5, 1e-6, 1e-6))] == \
        [[1, 2, 3, 4, 5], [0]]
    assert len(plan_runs(lengths, ONE_RUN)) == 1


def test_the_fit_recovers_the_cost_it_was_timed_from() -> None:
    truth = RunCost(2e-4, 8e-6, 1.2e-5)
    fitted = fit_run_cost(truth.of(1, 8), truth.of(1, 64), truth.of(6, 64), 8, 64, 6)
    for field in ("overhead", "per_step", "per_journey_step"):
        assert getattr(fitted, field) == pytest.approx(getattr(truth, field), rel=1e-6)


def test_a_batch_split_into_runs_scores_as_one_run_would() -> None:
    now = time.time()
    rng = np.random.default_rng(3)
    scorer = Scorer(load_model(None), 6, 64)
    journeys = [_synthetic(rng, scorer.n_channels, n, now) for n in (64, 2, 3, 40, 5, 1)]
    whole = scorer.infer_batch(journeys)  # never timed: one run
    scorer.run_cost = RunCost(1e-6, 1e-6, 1e-6)  # runs are cheap: split by length
    assert len(plan_runs([len(j.channel) for j in journeys], scorer.run_cost)) > 1
    split = scorer.infer_batch(journeys)
    for a, b in zip(whole, split):
        assert b.journey is a.journey
        assert b.probability == pytest.approx(a.probability, abs=1e-6)
        np.testing.assert_allclose(b.credit, a.credit, atol=1e-6)


def test_a_journey_alone_scores_as_it_does_in_a_batch() -> None:
    now = time.time()
    rng = np.random.default_rng(4)
    scorer = Scorer(load_model(None), 6, 64)
    journeys = [_synthetic(rng, scorer.n_channels, n, now) for n in (1, 7, 64, 30)]
    together = scorer.infer_batch(journeys)  # never timed: one run, padded to 64
    for j, batched in zip(journeys, together):
        cost = j.cost.copy()
        cost.flags.writeable = False  # a caller's read-only array is scored all the same
        alone = scorer.infer_batch([dataclasses.replace(j, cost=cost)])
        assert len(alone) == 1 and alone[0].model_version == batched.model_version
        assert alone[0].probability == pytest.approx(batched.probability, abs=1e-6)
        np.testing.assert_allclose(alone[0].credit, batched.credit, atol=1e-6)
        assert alone[0].credit.sum() == pytest.approx(1.0)


def test_warm_up_fits_a_usable_cost_model() -> None:
    scorer = Scorer(load_model(None), 6, 64)
    scorer.warm(time.time())
    cost = scorer.run_cost
    assert cost is not ONE_RUN
    assert all(v >= 0 and np.isfinite(v) for v in (cost.overhead, cost.per_step,
                                                   cost.per_journey_step))
    # the model's terms are what the fit makes of the timings: never negative, so a longer
    # or fuller run never costs less (no assertion on the timings themselves)
    assert cost.of(6, 64) >= cost.of(1, 64) >= cost.of(1, 8) >= 0


def test_a_reloaded_model_brings_its_own_timing() -> None:
    now = time.time()
    scorer = Scorer(load_model(None), 6, 64)
    scorer.warm(now)
    new = load_model(None)
    scorer.prepare(new, now)
    timed = scorer._prepared
    assert timed is not None and timed[0] is new
    scorer.swap(new)
    assert scorer.model is new and scorer.run_cost == timed[1]
