"""The journey-level market: the truth it simulates, the loop it drives, the report and command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attribid.models.simulation.journey_market import (
    CHANNELS, MARKETS, DayDraws, Population, Shoppers, run_seed,
)
from attribid.models.simulation.journey_market_report import market_json, summarise
from attribid.models.simulation.simulate import attribution_accuracy

SMALL = {"shoppers": 600, "days": 12}


def credit_shares(result: object, field: str) -> np.ndarray:
    total = getattr(result, field).sum(axis=0)
    return total / total.sum()


def test_true_credit_is_each_conversions_incremental_part() -> None:
    market = MARKETS["brand-search"]
    population = Population.draw(market, 500, seed=3)
    shoppers = Shoppers(market, population, budget=500 / 3)
    outcomes = [shoppers.step(d, np.full(len(CHANNELS), 500 / 3 / len(CHANNELS)),
                              DayDraws.draw(3, d, 500)) for d in range(6)]
    day = outcomes[-1]
    assert day.converters.n_journeys > 0
    # each converter's credit is its channels' Shapley values over v: the organic part b / v
    # is left out, so rows sum to less than 1 and more than 0
    rows = day.truth.sum(axis=1)
    assert np.all((rows > 0) & (rows < 1))
    assert np.all(day.truth >= 0)
    assert day.converters.converted.all() and not day.non_converters.converted.any()


def test_truth_fed_loop_beats_the_static_split_in_a_harvesting_market() -> None:
    runs = [run_seed(MARKETS["brand-search"], seed, ("static", "truth"), **SMALL)
            for seed in range(3)]
    truth = sum(r["truth"].expected_revenue.sum() for r in runs)
    static = sum(r["static"].expected_revenue.sum() for r in runs)
    spend = [sum(r[s].spend.sum() for r in runs) for s in ("truth", "static")]
    assert truth / spend[0] > 1.02 * static / spend[1]


def test_last_click_over_credits_the_harvesting_channel() -> None:
    market = MARKETS["brand-search"]
    search = CHANNELS.index("search")
    for seed in range(2):
        r = run_seed(market, seed, ("last-click",), **SMALL)["last-click"]
        credited, true = credit_shares(r, "credited"), credit_shares(r, "true_credit")
        assert credited[search] > 2 * true[search]
        # and under-credits the channel that creates the demand
        assert credited[CHANNELS.index("display")] < true[CHANNELS.index("display")]


def test_last_click_is_nearly_right_where_the_last_touch_is_the_incremental_one() -> None:
    right = run_seed(MARKETS["last-touch"], 0, ("last-click",), shoppers=2000, days=12)["last-click"]
    wrong = run_seed(MARKETS["brand-search"], 0, ("last-click",), **SMALL)["last-click"]
    def acc(r: object) -> float:
        return attribution_accuracy(credit_shares(r, "credited"), credit_shares(r, "true_credit"))
    assert acc(right) > 0.9
    assert acc(right) > acc(wrong) + 0.1


def test_common_random_numbers() -> None:
    market = MARKETS["coupon-affiliate"]
    first = run_seed(market, 5, ("linear", "markov", "static"), shoppers=300, days=5)
    again = run_seed(market, 5, ("linear", "markov", "static"), shoppers=300, days=5)
    for s in first:
        for field in ("spend", "revenue", "credited", "true_credit", "touches"):
            np.testing.assert_array_equal(getattr(first[s], field), getattr(again[s], field))
    # both loops start from the book's same first plan, so day 0 meets the same shoppers and
    # draws: the same touches, conversions and revenue
    a, b = first["linear"], first["markov"]
    np.testing.assert_array_equal(a.spend[0], b.spend[0])
    assert a.revenue[0] == b.revenue[0] and a.conversions[0] == b.conversions[0]
    assert not np.array_equal(a.spend[1:], b.spend[1:])  # then their credit moves them apart
    other = run_seed(market, 6, ("static",), shoppers=300, days=5)
    assert not np.array_equal(other["static"].revenue, first["static"].revenue)


def test_the_json_has_the_exact_schema() -> None:
    strategies = ("last-click", "markov", "truth", "static", "oracle")
    runs = [run_seed(MARKETS["brand-search"], s, strategies, shoppers=300, days=4)
            for s in range(2)]
    entry = market_json(summarise(MARKETS["brand-search"], strategies, runs))
    assert set(entry) == {"name", "harvesting", "methods"}
    assert entry["name"] == "brand-search" and entry["harvesting"] is True
    methods = entry["methods"]
    assert isinstance(methods, dict)
    assert list(methods) == ["last-click", "markov", "truth", "static"]
    for value in methods.values():
        assert set(value) == {"oracle_share", "ci95"}
        lo, hi = value["ci95"]
        assert lo <= value["oracle_share"] <= hi
    assert market_json(summarise(MARKETS["last-touch"], strategies, [
        run_seed(MARKETS["last-touch"], s, strategies, shoppers=300, days=4)
        for s in range(2)]))["harvesting"] is False


@pytest.mark.slow
def test_the_command_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attribid.cli.main import main

    assert main(["market-sim", "--journeys", "--seeds", "2", "--days", "4", "--shoppers", "200",
                 "--markets", "brand-search", "--methods", "last-click,network",
                 "--warmup-journeys", "200", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "market-journeys.md").read_text()
    assert text.startswith("<!-- made by: attribid market-sim --journeys --seeds 2")
    assert "## Market `brand-search`" in text and "| network |" in text
    data = json.loads((tmp_path / "market-journeys.json").read_text())
    assert [m["name"] for m in data["markets"]] == ["brand-search"]
    assert list(data["markets"][0]["methods"]) == ["last-click", "network", "truth", "static"]
    assert (tmp_path / "market-journeys.png").stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(("flags", "message"), [
    (["--methods", "last-click,magic"], "--methods: unknown ['magic']"),
    (["--markets", "mars"], "--markets: unknown ['mars']"),
    (["--seeds", "1"], "--seeds: must be >= 2, got 1"),
    (["--methods", "linear", "--shoppers", "3"], "--shoppers: must be >= 10, got 3"),
])
def test_a_bad_flag_names_the_flag(flags: list[str], message: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from attribid.cli.main import main

    assert main(["market-sim", "--journeys", *flags]) == 2
    assert capsys.readouterr().err.startswith(f"attribid market-sim: {message}")
