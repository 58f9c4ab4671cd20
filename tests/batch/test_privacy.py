"""Differentially private reports: the sensitivity bounds they rest on, the noise, the refusals."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attribid.cli.main import main
from attribid.models.attribution.classic import Totals, credit_totals
from attribid.models.attribution.privacy import (
    PRIVATE_METHODS, PrivacySpec, accuracy_against_epsilon, clipped, clipped_spend, release,
)
from attribid.models.data.loader import read_journeys, write_journeys
from attribid.models.simulation.simulate import WORLDS, simulate

CAP = 200.0


@pytest.mark.parametrize("method", [m for m in PRIVATE_METHODS if m != "network"])
def test_one_journey_moves_each_released_vector_at_most_its_sensitivity(method: str) -> None:
    journeys, _ = simulate(WORLDS["synergy"], 800, seed=3)
    spec = PrivacySpec(1.0, value_cap=CAP, cost_cap=5.0)
    full = credit_totals(clipped(journeys, spec), method)
    rng = np.random.default_rng(0)
    worst_conv = worst_rev = 0.0
    # leave out, one at a time, the converting journeys that weigh the most
    for j in rng.choice(np.flatnonzero(journeys.converted), 40, replace=False):
        keep = np.ones(journeys.n_journeys, dtype=bool)
        keep[j] = False
        less = credit_totals(clipped(journeys.subset(keep), spec), method)
        worst_conv = max(worst_conv, float(np.abs(full.conversions - less.conversions).sum()))
        worst_rev = max(worst_rev, float(np.abs(full.revenue - less.revenue).sum()))
    assert 0.99 < worst_conv <= 1.0 + 1e-9
    assert worst_rev <= CAP + 1e-9



def test_a_data_driven_model_has_no_such_bound() -> None:
    from tests.batch.test_classic import _journeys

    # 10 x "a" converting, 10 x "b" not: a takes all 10 conversions. One more journey,
    # "b > a", not converting, gives b RE 1/11 of a's 1: b 10/12, a 10 - 10/12.
    base = [[0]] * 10 + [[1]] * 10
    outcome = [True] * 10 + [False] * 10
    before = credit_totals(_journeys(base, outcome, ("a", "b")), "markov").conversions
    after = credit_totals(_journeys(base + [[1, 0]], outcome + [False], ("a", "b")),
                          "markov").conversions
    np.testing.assert_allclose(before, [10, 0])
    np.testing.assert_allclose(after, [10 - 10 / 12, 10 / 12])
    assert np.abs(after - before).sum() > 1.5         # more than a rule's bound of 1


def test_spend_clipping_bounds_each_journey(tmp_path: Path) -> None:
    journeys, truth = simulate(WORLDS["balanced"], 300, seed=4)
    write_journeys(journeys, tmp_path / "t.csv", tmp_path / "c.csv", truth.after_conversion)
    loaded = read_journeys(tmp_path / "t.csv", tmp_path / "c.csv")
    journey, channel, cost = loaded.touch_costs
    # without a binding cap, clipped spend is the report's spend
    np.testing.assert_allclose(clipped_spend(loaded.touch_costs, 7, 1e9), loaded.spend)
    spend = clipped_spend(loaded.touch_costs, 7, 1.0)
    for j in np.unique(journey)[:50]:
        keep = journey != j
        less = clipped_spend((journey[keep], channel[keep], cost[keep]), 7, 1.0)
        assert np.abs(spend - less).sum() <= 1.0 + 1e-9


def test_noise_has_the_stated_laplace_scale() -> None:
    totals = {"linear": Totals(np.full(4, 1000.0), np.full(4, 5e4))}
    spec = PrivacySpec(2.0, value_cap=100.0, cost_cap=10.0, seed=5)
    draws = []
    for seed in range(400):
        out = release(totals, np.full(4, 300.0), 5000.0,
                      PrivacySpec(2.0, 100.0, 10.0, seed=seed))
        draws.append(out.totals["linear"].conversions - 1000.0)
    # epsilon 2 over four releases: scale 1 / 0.5 = 2, a standard deviation of 2 * sqrt(2)
    assert release(totals, None, 1.0, spec).scales["conversions"] == pytest.approx(1.5)
    assert out.scales == {"conversions": 2.0, "revenue": 200.0, "spend": 20.0, "journeys": 2.0}
    assert np.std(draws) == pytest.approx(2.0 * np.sqrt(2.0), rel=0.1)
    assert abs(float(np.mean(draws))) < 0.3


def test_private_report_from_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journeys, _ = simulate(WORLDS["balanced"], 4000, seed=6)
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    write_journeys(journeys, tp, cv)
    files = ["--touchpoints", str(tp), "--conversions", str(cv)]
    private = ["--epsilon", "1", "--value-cap", "250", "--cost-cap", "10", "--min-count", "40",
               "--noise-seed", "1"]
    assert main(["attribute", *files, "--method", "linear", "--format", "json"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert main(["attribute", *files, "--method", "linear", *private,
                 "--format", "report-json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["privacy"]["epsilon"] == 1.0 and doc["privacy"]["min_count"] == 40.0
    assert doc["privacy"]["laplace_scale"]["conversions"] == pytest.approx(4.0)
    assert doc["issues"] == []                              # no raw counts in the release
    rows = doc["methods"]["linear"]["channels"]
    for name, row in rows.items():
        if exact[name] >= 100:
            # within 8 scales of the exact figure (a miss has probability e**-8 per cell)
            assert abs(row["conversions"] - exact[name]) < 8 * 4.0, name
        if row.get("suppressed"):
            assert row["conversions"] is None and row["revenue"] is None
    assert any(r.get("suppressed") for r in rows.values())  # offline has few conversions
    assert main(["attribute", *files, "--method", "linear", *private, "--format", "json"]) == 0
    credit = json.loads(capsys.readouterr().out)
    assert None in credit.values()
    assert main(["attribute", *files, "--method", "linear", *private, "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert "Differentially private: epsilon 1" in table and "<40" in table


def test_private_reports_refuse_what_they_cannot_bound(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = Path(__file__).resolve().parents[1] / "data"
    files = ["--touchpoints", str(data / "touchpoints.csv"), "--conversions",
             str(data / "conversions.csv")]
    caps = ["--value-cap", "100", "--cost-cap", "5"]
    assert main(["attribute", *files, "--method", "markov", "--epsilon", "1", *caps]) == 2
    assert "no bound" in capsys.readouterr().err
    assert main(["attribute", *files, "--method", "linear", "--epsilon", "1", *caps,
                 "--bootstrap", "10"]) == 2
    assert "--bootstrap does not go with --epsilon" in capsys.readouterr().err
    assert main(["attribute", *files, "--method", "linear", "--epsilon", "1"]) == 2
    assert "--epsilon needs --value-cap" in capsys.readouterr().err
    assert main(["attribute", *files, "--method", "linear", "--value-cap", "3"]) == 2
    assert "--value-cap applies with --epsilon only" in capsys.readouterr().err
    assert main(["attribute", *files, "--method", "linear", "--epsilon", "-1", *caps]) == 2
    assert "epsilon must be > 0" in capsys.readouterr().err
    # 'all' keeps the methods a private report can bound
    assert main(["attribute", *files, "--method", "all", "--epsilon", "5", *caps,
                 "--format", "json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) <= set(PRIVATE_METHODS)


def test_accuracy_rises_with_epsilon_and_journeys() -> None:
    rows = accuracy_against_epsilon([0.1, 5.0], [1000, 20000], 8, seed=2)
    acc = {(r["journeys"], r["epsilon"]): r["accuracy"] for r in rows}
    assert acc[(1000, 0.1)] < acc[(1000, 5.0)]
    assert acc[(1000, 0.1)] < acc[(20000, 0.1)]
    exact = {r["journeys"]: r["exact_accuracy"] for r in rows}
    assert acc[(20000, 5.0)] == pytest.approx(exact[20000], abs=0.005)
