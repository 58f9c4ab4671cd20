"""The zoo of worlds: each form's exact truth against brute force, determinism by seed, the
drawn parameters within their stated ranges, and the simulate command on zoo worlds."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from attribid.cli.main import main
from attribid.models.simulation.simulate import true_channel_shares
from attribid.models.simulation.zoo import simulate_zoo, zoo_world
from attribid.models.simulation.zoo_reference import subset_value
from attribid.models.simulation.zoo_game import channel_game
from attribid.models.simulation.zoo_world import (
    FORMS, HARVEST_CANDIDATES, MAX_TOUCHES, RANGES, draw_world, split_name,
)


def _brute_force(v, players: list[int]) -> dict[int, float]:
    """Shapley values of v (a function of a set of players) by every ordering's weights."""
    n = len(players)
    phi = {}
    for i in players:
        others = [p for p in players if p != i]
        total = 0.0
        for size in range(n):
            w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                total += w * (v(set(subset) | {i}) - v(set(subset)))
        phi[i] = total
    return phi


# two seeds per form: between them both taxonomies (7 and 16 channels) take part
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("seed", [1, 4])
def test_truth_is_the_brute_force_shapley_of_the_reference_value(form: str, seed: int) -> None:
    world = zoo_world(f"zoo:{form}:{seed}")
    journeys, truth = simulate_zoo(world, 400, seed=9)
    picks = []
    for j in range(journeys.n_journeys):
        chans = sorted(set(journeys.channel[journeys.offsets[j]:journeys.offsets[j + 1]]
                           .tolist()))
        if 2 <= len(chans) <= 6:
            picks.append((j, chans))
    assert len(picks) >= 5
    for j, chans in picks[:5]:
        def v(keep: set[int], j: int = j) -> float:
            return subset_value(world, journeys, truth, j, keep)
        phi = _brute_force(v, chans)
        expected = np.zeros(len(world.channels))
        expected[chans] = [phi[c] for c in chans]
        np.testing.assert_allclose(truth.shapley[j], expected, rtol=1e-9, atol=1e-12)
        full = set(chans)
        assert truth.p_true[j] == pytest.approx(v(full), rel=1e-12)
        assert truth.p_base[j] == pytest.approx(v(set()), rel=1e-12)
        for c in chans:
            assert truth.removal[j, c] == pytest.approx(v(full) - v(full - {c}), abs=1e-12)


def test_enumeration_matches_brute_force_at_sixteen_players() -> None:
    rng = np.random.default_rng(3)
    effect = rng.uniform(0.0, 0.05, size=(1, 16))
    pairs, coef = np.array([[0, 5], [3, 9], [14, 15]]), np.array([0.5, -0.3, 1.0])
    triples, tcoef = np.array([[1, 2, 3]]), np.array([1.5])
    base = np.array([0.02])
    phi, removal, p = channel_game(effect, np.ones((1, 16), bool), base, "logistic",
                                   pairs, coef, triples, tcoef)

    def v(keep: set[int]) -> float:
        z = sum(effect[0, c] for c in keep)
        z += sum(a * math.sqrt(effect[0, c] * effect[0, d])
                 for (c, d), a in zip(pairs.tolist(), coef) if c in keep and d in keep)
        z += sum(a * (effect[0, c] * effect[0, d] * effect[0, e]) ** (1 / 3)
                 for (c, d, e), a in zip(triples.tolist(), tcoef) if {c, d, e} <= keep)
        return 1 / (1 + (1 - base[0]) / base[0] * math.exp(-z))

    # the brute force over 16 players is 16 * 2**15 subsets: check four players of them
    for i in (0, 2, 9, 15):
        others = [c for c in range(16) if c != i]
        total = 0.0
        for mask in range(1 << 15):
            keep = {others[b] for b in range(15) if mask >> b & 1}
            w = math.factorial(len(keep)) * math.factorial(15 - len(keep)) / math.factorial(16)
            total += w * (v(keep | {i}) - v(keep))
        assert phi[0, i] == pytest.approx(total, rel=1e-9, abs=1e-13)
    assert p[0] == pytest.approx(v(set(range(16))), rel=1e-12)
    assert phi.sum() == pytest.approx(p[0] - base[0], rel=1e-9)


@pytest.mark.parametrize("form", FORMS)
def test_shapley_values_add_up_to_the_lift_of_every_journey(form: str) -> None:
    journeys, truth = simulate_zoo(zoo_world(f"zoo:{form}:2"), 3000, seed=1)
    np.testing.assert_allclose(truth.shapley.sum(axis=1), truth.p_true - truth.p_base,
                               rtol=1e-9, atol=1e-12)
    assert np.all((truth.p_true >= 0) & (truth.p_true <= 1))
    assert journeys.lengths().max() <= MAX_TOUCHES
    # a channel the journey did not touch gets nothing
    present = np.zeros_like(truth.shapley, dtype=bool)
    row = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    present[row, journeys.channel] = True
    assert not truth.shapley[~present].any()
    # each touch's share of its channel's value adds back up to it
    per_channel = np.zeros_like(truth.shapley)
    np.add.at(per_channel, (row, journeys.channel), truth.touch_shapley)
    np.testing.assert_allclose(per_channel, truth.shapley, atol=1e-12)


def test_the_same_seeds_give_the_same_world_and_journeys() -> None:
    a, b = draw_world("negative", 12), draw_world("negative", 12)
    assert a.summary() == b.summary()
    assert draw_world("negative", 13).summary() != a.summary()
    # the same seed number with another form is another world
    assert not np.array_equal(draw_world("additive", 12).effect, a.effect)
    world = zoo_world("zoo:negative:12")
    j1, t1 = simulate_zoo(world, 500, seed=5)
    j2, t2 = simulate_zoo(world, 500, seed=5)
    j3, _ = simulate_zoo(world, 500, seed=6)
    assert np.array_equal(j1.timestamp, j2.timestamp) and np.array_equal(j1.converted,
                                                                          j2.converted)
    np.testing.assert_array_equal(t1.shapley, t2.shapley)
    assert not np.array_equal(j1.channel[:50], j3.channel[:50])


def test_drawn_parameters_stay_in_their_ranges() -> None:
    taxonomies = set()
    for seed in range(8):
        for form in FORMS:
            w = draw_world(form, seed)
            summary = w.summary()
            for name, (lo, hi) in RANGES.items():
                if name in summary and isinstance(summary[name], float):
                    assert lo <= summary[name] <= hi, (w.name, name)
            for name in ("half_life_hours", "impression_weight"):
                lo, hi = RANGES[name]
                values = getattr(w, name)
                assert np.all((values >= lo) & (values <= hi)), (w.name, name)
            assert np.all((w.click_rate >= 0.05) & (w.click_rate <= 0.95))
            n = len(w.channels)
            taxonomies.add(n)
            assert n in (7, 16) and len(w.harvest) == (1 if n == 7 else 2)
            assert set(w.harvest_names) <= set(HARVEST_CANDIDATES[n])
            others = [c for c in range(n) if c not in w.harvest]
            # harvesting channels: small effect, visible clicks, in no interaction
            assert w.effect[list(w.harvest)].max() < 0.15 * w.effect[others].max() + 1e-12
            assert np.all(w.click_rate[list(w.harvest)] >= 0.8)
            assert not set(w.pairs.ravel().tolist()) & set(w.harvest)
            np.testing.assert_allclose(w.transitions.sum(axis=1), 1.0)
            assert w.start.sum() == pytest.approx(1.0)
            if form == "negative":
                assert (w.pair_coef < 0).sum() >= len(w.pair_coef) - 1
            if form == "logistic":
                assert len(w.triples) >= 1
    assert taxonomies == {7, 16}


@pytest.mark.parametrize("name", ["zoo:additive:3", "zoo:threshold:5", "zoo:logistic:0"])
def test_calibration_meets_the_drawn_conversion_rate(name: str) -> None:
    world = zoo_world(name)
    journeys, truth = simulate_zoo(world, 20_000, seed=2)
    assert truth.p_true.mean() == pytest.approx(world.conversion_rate, rel=0.15)
    assert 0.003 <= world.conversion_rate <= 0.10


def test_last_click_overrates_the_harvesting_channels() -> None:
    from attribid.models.attribution.classic import attribute_journeys

    over = []
    for seed in range(3):
        world = zoo_world(f"zoo:noisy-or:{seed}")
        journeys, truth = simulate_zoo(world, 20_000, seed=1)
        last = attribute_journeys(journeys, "last-click")[journeys.converted].sum(axis=0)
        true = true_channel_shares(journeys, truth)
        h = list(world.harvest)
        over.append(last[h].sum() / last.sum() - true[h].sum())
    assert min(over) > 0.05


def test_world_names_are_checked() -> None:
    assert split_name("zoo:diminishing:40") == ("diminishing", 40)
    for bad in ("zoo:cubic:1", "zoo:additive", "zoo:additive:-1", "noisy-or:3"):
        with pytest.raises(ValueError, match="zoo:FORM:SEED"):
            split_name(bad)


def test_simulate_writes_a_zoo_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim"
    assert main(["simulate", "--world", "zoo:diminishing:3", "--journeys", "800",
                 "--seed", "4", "--out", str(out)]) == 0
    summary = json.loads((out / "world.json").read_text())
    assert summary["world"]["name"] == "zoo:diminishing:3"
    assert summary["world"]["form"] == "diminishing"
    assert sum(summary["true_channel_shares"].values()) == pytest.approx(1.0, abs=1e-5)
    header = (out / "truth.csv").read_text().splitlines()[0]
    assert header == "journey_id,channel,shapley,removal"
    assert main(["simulate", "--world", "zoo:diminishing:3", "--journeys", "800", "--seed",
                 "4", "--format", "parquet", "--parts", "2", "--out", str(tmp_path / "p")]) == 0
    assert len(list((tmp_path / "p" / "truth").iterdir())) == 2
    capsys.readouterr()
    assert main(["simulate", "--world", "zoo:cubic:3", "--out", str(tmp_path / "x")]) == 2
    assert "--world: " in capsys.readouterr().err
