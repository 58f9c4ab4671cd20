"""The simulated market: fair comparisons (same spend, same draws) and sound baselines."""
from __future__ import annotations

import numpy as np
import pytest

from attribid.models.simulation.market import CHANNELS, MARKETS, STRATEGIES, draw_truth, run_seed

IDX = {s: i for i, s in enumerate(STRATEGIES)}


@pytest.fixture(scope="module")
def result():
    return run_seed(MARKETS["table6"], 3, days=24, learn=4)


def test_every_strategy_spends_the_same_budget_each_day(result) -> None:
    daily = result.spend.sum(axis=2)
    np.testing.assert_allclose(daily, 10_000.0, rtol=1e-9)
    assert result.bound_violations == 0 and result.budget_violations == 0


def test_the_per_day_oracle_is_never_beaten_in_expectation(result) -> None:
    best = result.expected[IDX["oracle"]]
    assert np.all(result.expected <= best * (1 + 1e-9))
    hindsight = result.expected[IDX["hindsight"]].sum()
    assert hindsight >= result.expected[IDX["static"]].sum()


def test_same_plan_same_draws(result) -> None:
    """Before the freeze, frozen and adaptive follow one plan: common random numbers make the
    realised revenue identical, so differences later come from the plans alone."""
    learn = 4
    np.testing.assert_array_equal(result.revenue[IDX["frozen"], :learn], result.revenue[IDX["adaptive"], :learn])
    assert not np.array_equal(result.revenue[IDX["frozen"]], result.revenue[IDX["adaptive"]])


def test_the_loop_moves_toward_the_oracle(result) -> None:
    share = result.spend / result.spend.sum(axis=2, keepdims=True)
    last = slice(-6, None)
    to_oracle = lambda k: np.abs(share[k, last] - share[IDX["oracle"], last]).sum(axis=1).mean()  # noqa: E731
    assert to_oracle(IDX["adaptive"]) < to_oracle(IDX["static"])


def test_the_shift_hits_one_channel_halfway() -> None:
    m = MARKETS["hill"]
    truth = draw_truth(m, 20, 1000.0, np.random.default_rng(0))
    k = CHANNELS.index(m.shifted)
    ratio = truth.top_scale[:, k] / truth.top_scale[:, (k + 1) % len(CHANNELS)]
    np.testing.assert_allclose(ratio[:10], 1.0)
    np.testing.assert_allclose(ratio[10:], m.keep)


def test_market_command_reports_every_market(tmp_path) -> None:
    from attribid.cli.main import main

    assert main(["market-sim", "--seeds", "2", "--days", "12", "--learn", "2", "--ablation-seeds", "0",
                 "--out", str(tmp_path)]) == 0
    text = (tmp_path / "market.md").read_text()
    assert text.startswith("<!-- made by: attribid market-sim")
    for name in MARKETS:
        assert f"Market `{name}`" in text
    assert (tmp_path / "market_regret.png").stat().st_size > 10_000


def test_pacing_keeps_a_day_on_budget_under_varying_demand() -> None:
    from attribid.models.simulation.market import pacing_day

    on = np.array([pacing_day(s, controlled=True) for s in range(8)])
    off = np.array([pacing_day(s, controlled=False) for s in range(8)])
    assert np.abs(on[:, -1] - 1).mean() < 0.5 * np.abs(off[:, -1] - 1).mean()
    even = np.arange(1, 25) / 24
    assert np.abs(on - even).max() < np.abs(off - even).max()
