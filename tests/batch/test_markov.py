"""The standard Markov model and the per-journey split, by hand and against ChannelAttribution."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attribid.cli.main import main
from attribid.models.attribution.classic import (
    MarkovChain, attribute_journeys, credit_totals, totals_for_weights,
)
from attribid.models.attribution.paths import aggregate_paths
from attribid.models.data.loader import read_journeys, read_paths
from attribid.models.simulation.simulate import WORLDS, simulate

# j0: a, converts with value 40; j1: b, converts with value 10; j2: a > b, does not convert.
TOUCHES = ["j0,100,a,click,1", "j1,100,b,click,2", "j2,100,a,click,1", "j2,200,b,click,2"]
CONVERSIONS = ["j0,150,40", "j1,150,10"]
PATHS = ["a;1;40;0", "b;1;10;0", "a > b;0;0;1"]


def _write(tmp_path: Path) -> tuple[Path, Path, Path]:
    tp, cv, paths = tmp_path / "t.csv", tmp_path / "c.csv", tmp_path / "paths.csv"
    tp.write_text("journey_id,timestamp,channel,interaction,cost\n" + "\n".join(TOUCHES) + "\n")
    cv.write_text("journey_id,timestamp,value\n" + "\n".join(CONVERSIONS) + "\n")
    paths.write_text("path;total_conversions;total_conversion_value;total_null\n"
                     + "\n".join(PATHS) + "\n")
    return tp, cv, paths


def test_removal_effects_and_credit_by_hand(tmp_path: Path) -> None:
    # START -> a 2/3, b 1/3; a -> CONV 1/2, b 1/2; b -> CONV 1/2, NULL 1/2.
    # P_b = 1/2, P_a = 1/2 + 1/4 = 3/4, P = 2/3 * 3/4 + 1/3 * 1/2 = 2/3.
    # value: rate_a = 1/2 * 40 = 20, rate_b = 1/2 * 10 = 5; V_b = 5, V_a = 20 + 5/2;
    # V = 2/3 * 45/2 + 1/3 * 5 = 50/3.
    # without a: P = 1/3 * 1/2 = 1/6 -> RE_a = 3/4;   V = 5/3  -> REv_a = 9/10.
    # without b: P = 2/3 * 1/2 = 1/3 -> RE_b = 1/2;   V = 40/3 -> REv_b = 1/5.
    tp, cv, paths = _write(tmp_path)
    journeys = read_journeys(tp, cv).journeys
    assert journeys.channels == ("a", "b")
    effects = MarkovChain(journeys).removal_effects()
    np.testing.assert_allclose(effects.conversion, [3 / 4, 1 / 2])
    np.testing.assert_allclose(effects.value, [9 / 10, 1 / 5])
    assert effects.probability == pytest.approx(2 / 3)
    assert effects.expected_value == pytest.approx(50 / 3)
    # standard: 2 conversions split 3/4 : 1/2 -> 1.2, 0.8; revenue 50 split 9/10 : 1/5
    standard = credit_totals(journeys, "markov")
    np.testing.assert_allclose(standard.conversions, [6 / 5, 4 / 5])
    np.testing.assert_allclose(standard.revenue, [450 / 11, 100 / 11])
    # per journey: each converting journey touched one channel, which takes it all
    split = credit_totals(journeys, "markov-per-journey")
    np.testing.assert_allclose(split.conversions, [1, 1])
    np.testing.assert_allclose(split.revenue, [40, 10])
    np.testing.assert_allclose(attribute_journeys(journeys, "markov-per-journey"),
                               [[1, 0], [0, 1], [0, 0]])
    np.testing.assert_allclose(attribute_journeys(journeys, "markov"),
                               [[0.6, 0.4], [0.6, 0.4], [0, 0]])
    # the same paths, aggregated, give the same figures
    loaded = read_paths(paths)
    for method in ("markov", "markov-per-journey"):
        got = credit_totals(loaded.journeys, method, loaded.weight)
        want = credit_totals(journeys, method)
        np.testing.assert_allclose(got.conversions, want.conversions)
        np.testing.assert_allclose(got.revenue, want.revenue)


def test_the_command_defaults_to_the_standard_model(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    tp, cv, paths = _write(tmp_path)
    files = ["--touchpoints", str(tp), "--conversions", str(cv)]
    assert main(["attribute", *files, "--method", "markov", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx({"a": 1.2, "b": 0.8})
    assert main(["attribute", "--paths", str(paths), "--method", "markov,markov-per-journey",
                 "--format", "json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["markov"] == pytest.approx({"a": 1.2, "b": 0.8})
    assert both["markov-per-journey"] == pytest.approx({"a": 1.0, "b": 1.0})


def test_weights_count_journeys_as_if_repeated() -> None:
    journeys, _ = simulate(WORLDS["synergy"], 600, seed=5)
    weight = np.random.default_rng(1).integers(0, 4, journeys.n_journeys).astype(float)
    repeated = journeys.subset(np.repeat(np.arange(journeys.n_journeys), weight.astype(int)))
    for method in ("linear", "markov", "markov-per-journey", "shapley", "time-decay"):
        got = totals_for_weights(journeys, method)(weight)
        want = credit_totals(repeated, method)
        np.testing.assert_allclose(got.conversions, want.conversions, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(got.revenue, want.revenue, rtol=1e-9, atol=1e-9)


def test_second_order_chain_standard_credit() -> None:
    # the test_classic second-order case: RE = [1/2, 1] -> 2 conversions split 1/3 : 2/3
    from tests.batch.test_classic import _journeys

    j = _journeys([[0, 1], [1, 1], [1]], [True, False, True], ("a", "b"))
    np.testing.assert_allclose(credit_totals(j, "markov", order=2).conversions, [2 / 3, 4 / 3])


def _ca_frame(journeys, weight=None):
    pd = pytest.importorskip("pandas")
    rows = aggregate_paths(journeys, weight)
    return pd.DataFrame({"path": [" > ".join(r.path) for r in rows],
                         "conv": [r.conversions for r in rows],
                         "value": [r.value for r in rows],
                         "null": [r.journeys - r.conversions for r in rows]})


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a / a.sum() - b / b.sum()).sum())


def _reference(frame, channels):
    ca = pytest.importorskip("ChannelAttribution")
    # more simulations than its default (1e5) keep the reference's own noise well below 0.01
    out = ca.markov_model(frame, "path", "conv", var_value="value", var_null="null", order=1,
                          nsim_start=1e6, verbose=0, flg_pro=False)
    conv = dict(zip(out["channel_name"], out["total_conversions"]))
    value = dict(zip(out["channel_name"], out["total_conversion_value"]))
    return (np.array([conv.get(c, 0.0) for c in channels]),
            np.array([value.get(c, 0.0) for c in channels]))


@pytest.mark.parametrize("world, seed", [("recency", 3), ("synergy", 4), ("impressions", 5),
                                         ("balanced", 6)])
def test_markov_agrees_with_channelattribution(world: str, seed: int) -> None:
    pytest.importorskip("ChannelAttribution")
    journeys, _ = simulate(WORLDS[world], 4000, seed=seed)
    ref_conv, ref_value = _reference(_ca_frame(journeys), journeys.channels)
    ours = credit_totals(journeys, "markov")
    assert _tv(ours.conversions, ref_conv) < 0.01
    assert _tv(ours.revenue, ref_value) < 0.01
    assert ours.conversions.sum() == pytest.approx(ref_conv.sum())
    # the per-journey split is a different model, and measurably so
    assert _tv(credit_totals(journeys, "markov-per-journey").conversions, ref_conv) > 0.05


def test_markov_agrees_with_channelattribution_on_its_own_example() -> None:
    ca = pytest.importorskip("ChannelAttribution")
    example = Path(ca.__file__).parents[1] / "cypack" / "data" / "Data.csv"
    if not example.is_file():
        pytest.skip("ChannelAttribution's Data.csv is not installed")
    loaded = read_paths(example)
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(example, sep=";")
    frame = frame.rename(columns={"total_conversions": "conv",
                                  "total_conversion_value": "value", "total_null": "null"})
    ref_conv, ref_value = _reference(frame, loaded.journeys.channels)
    ours = credit_totals(loaded.journeys, "markov", loaded.weight)
    assert _tv(ours.conversions, ref_conv) < 0.01
    assert _tv(ours.revenue, ref_value) < 0.01
