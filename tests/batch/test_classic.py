"""Classic attribution models on journeys worked out by hand, and their kernels vs plain Python."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attribid.cli.main import main
from attribid.kernels.classic import (
    channel_masks, markov_transitions, rule_credit, weighted_presence,
)
from attribid.models.data.journeys import Journeys
from attribid.kernels.shapley import subset_sums
from attribid.models.attribution.classic import (
    METHODS, attribute_journeys, markov_removal_effects, shapley_set_values,
)
from attribid.models.simulation.simulate import WORLDS, simulate

HOUR = 3600.0
DATA = Path(__file__).resolve().parents[1] / "data"


def _journeys(paths: list[list[int]], converted: list[bool], channels: tuple[str, ...],
              times: list[list[float]] | None = None) -> Journeys:
    lengths = [len(p) for p in paths]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    ts = (np.concatenate([np.asarray(t, float) for t in times]) if times
          else np.arange(n, dtype=float) * HOUR)
    conv = np.asarray(converted)
    last = ts[np.maximum(offsets[1:] - 1, 0)]
    return Journeys(
        ids=np.array([f"j{k}" for k in range(len(paths))], dtype=object), offsets=offsets,
        channel=np.array([c for p in paths for c in p], dtype=np.int32), timestamp=ts,
        interaction=np.full(n, 2, np.int8), cost=np.zeros(n), device=np.zeros(n, np.int8),
        category=np.zeros(len(paths), np.int32), converted=conv,
        conversion_time=np.where(conv, last + HOUR, np.nan), value=conv * 10.0,
        channels=channels)


ABC = ("a", "b", "c")


def test_three_touch_journey_by_hand() -> None:
    # touches a, b, c at 0 h, 12 h, 36 h; conversion at 48 h; half-life 24 h
    j = _journeys([[0, 1, 2], [0, 1]], [True, False], ABC, [[0, 12 * HOUR, 36 * HOUR],
                                                            [0, HOUR]])
    j = Journeys(**{**j.__dict__, "conversion_time": np.array([48 * HOUR, np.nan])})
    # ages 48, 36, 12 h -> weights 2^-2, 2^-1.5, 2^-0.5
    w = np.array([0.25, 0.3535533905932738, 0.7071067811865476])
    np.testing.assert_allclose(attribute_journeys(j, "time-decay", half_life_hours=24)[0],
                               w / w.sum())
    np.testing.assert_allclose(attribute_journeys(j, "position-based")[0], [0.4, 0.2, 0.4])
    np.testing.assert_allclose(attribute_journeys(j, "linear")[0], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(attribute_journeys(j, "last-click")[0], [0, 0, 1])
    np.testing.assert_allclose(attribute_journeys(j, "first-click")[0], [1, 0, 0])
    for method in METHODS:
        np.testing.assert_array_equal(attribute_journeys(j, method)[1], 0.0)


def test_position_based_short_and_repeated_journeys() -> None:
    j = _journeys([[2], [0, 1], [0, 1, 0], [1, 0, 2, 1]], [True] * 4, ABC)
    credit = attribute_journeys(j, "position-based")
    np.testing.assert_allclose(credit, [[0, 0, 1], [0.5, 0.5, 0], [0.8, 0.2, 0],
                                        [0.1, 0.8, 0.1]])


def test_markov_first_order_removal_effects_by_hand() -> None:
    # paths: a>b conv, a null, b conv, b null.  START: a 1/2, b 1/2; a: b 1/2, null 1/2;
    # b: conv 2/3.  P = 1/2 (1/2 * 2/3) + 1/2 * 2/3 = 1/2.
    # without a: P = 1/2 * 2/3 = 1/3 -> 1 - (1/3)/(1/2) = 1/3; without b: P = 0 -> 1.
    j = _journeys([[0, 1], [0], [1], [1]], [True, False, True, False], ("a", "b"))
    np.testing.assert_allclose(markov_removal_effects(j), [1 / 3, 1.0])
    credit = attribute_journeys(j, "markov-per-journey")
    np.testing.assert_allclose(credit, [[0.25, 0.75], [0, 0], [0, 1], [0, 0]])
    # the standard model: every conversion carries RE / sum(RE) = 1/4, 3/4
    credit = attribute_journeys(j, "markov")
    np.testing.assert_allclose(credit, [[0.25, 0.75], [0, 0], [0.25, 0.75], [0, 0]])


def test_markov_second_order_sees_what_first_order_cannot() -> None:
    # paths: a>b conv, b>b null, b conv.
    # order 1: b: conv 2/4, b 1/4, null 1/4 -> P_b = 2/3 = P_a; P = 2/3;
    #          without a: 2/3 * 2/3 = 4/9 -> RE_a = 1/3.
    # order 2: (.,a)->(a,b)->conv; (.,b): (b,b) 1/2 (then null), conv 1/2.
    #          P = 1/3 * 1 + 2/3 * 1/2 = 2/3; without a: 1/3 -> RE_a = 1/2.
    j = _journeys([[0, 1], [1, 1], [1]], [True, False, True], ("a", "b"))
    np.testing.assert_allclose(markov_removal_effects(j, order=1), [1 / 3, 1.0])
    np.testing.assert_allclose(markov_removal_effects(j, order=2), [1 / 2, 1.0])
    np.testing.assert_allclose(attribute_journeys(j, "markov", order=2)[0], [1 / 3, 2 / 3])


def test_data_driven_shapley_by_hand() -> None:
    # {a}: 4 journeys, 1 converts; {b}: 2, 1; {a,b}: 4, 3; {a,b,c}: 2, 2
    paths = [[0]] * 4 + [[1]] * 2 + [[0, 1]] * 4 + [[2, 0, 1]] * 2
    conv = [True, False, False, False, True, False, True, True, True, False, True, True]
    j = _journeys(paths, conv, ABC)
    v = shapley_set_values(j)
    # unseen {c} has no seen subset -> 0; {a,c} pools {a} -> 1/4; {b,c} pools {b} -> 1/2
    np.testing.assert_allclose(v, [0, 0.25, 0.5, 0.75, 0, 0.25, 0.5, 1.0])
    credit = attribute_journeys(j, "shapley")
    # {a,b}: phi_a = (0.25 + 0.25)/2 = 0.25, phi_b = (0.5 + 0.5)/2 = 0.5
    np.testing.assert_allclose(credit[6], [1 / 3, 2 / 3, 0])
    # {a,b,c}: phi_a = 1/3, phi_b = 7/12, phi_c = 1/12 (weights 1/3, 1/6, 1/6, 1/3)
    np.testing.assert_allclose(credit[10], [1 / 3, 7 / 12, 1 / 12])
    np.testing.assert_allclose(credit[0], [1, 0, 0])
    np.testing.assert_array_equal(credit[1], 0.0)


def _rule_reference(paths: list[list[int]], times: list[list[float]], conv: list[bool],
                    n_channels: int, rule: str, half_life_h: float) -> np.ndarray:
    out = np.zeros((len(paths), n_channels))
    for j, (p, t) in enumerate(zip(paths, times)):
        n = len(p)
        if not conv[j] or n == 0:
            continue
        if rule == "last-click":
            w = [0.0] * (n - 1) + [1.0]
        elif rule == "first-click":
            w = [1.0] + [0.0] * (n - 1)
        elif rule == "linear":
            w = [1.0 / n] * n
        elif rule == "time-decay":
            w = [0.5 ** ((t[-1] - x) / (half_life_h * HOUR)) for x in t]
        else:
            w = ([1.0] if n == 1 else [0.5, 0.5] if n == 2
                 else [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4])
        for c, x in zip(p, w):
            out[j, c] += x / sum(w)
    return out


@pytest.mark.parametrize("rule", ["last-click", "first-click", "linear", "time-decay",
                                  "position-based"])
def test_rule_kernel_matches_python_reference(rule: str) -> None:
    rng = np.random.default_rng(3)
    paths = [list(rng.integers(0, 4, size=n)) for n in rng.integers(0, 9, size=300)]
    # edges: identical timestamps, a touch 10 years old (weight underflows vs the rest)
    times = [sorted(rng.choice([0.0, 5.0, 3e8], size=len(p)).tolist()) for p in paths]
    conv = list(rng.random(300) < 0.6)
    lengths = [len(p) for p in paths]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    got = rule_credit(offsets, np.array([c for p in paths for c in p], dtype=np.int32),
                      np.array([x for t in times for x in t]), np.array(conv), 4, rule, 12.0)
    np.testing.assert_allclose(got, _rule_reference(paths, times, conv, 4, rule, 12.0),
                               atol=1e-12)
    has = np.array(conv) & (np.array(lengths) > 0)
    np.testing.assert_allclose(got.sum(1), has.astype(float))


def test_markov_transitions_match_python_reference() -> None:
    rng = np.random.default_rng(4)
    paths = [list(rng.integers(0, 3, size=n)) for n in rng.integers(0, 6, size=100)]
    conv = rng.random(100) < 0.5
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in paths])])
    flat = np.array([c for p in paths for c in p], dtype=np.int32)
    for order in (1, 2, 3):
        src, dst, n_states = markov_transitions(offsets, flat, conv, 3, order)
        start = 4 ** order
        expected = []
        for p, cv in zip(paths, conv):
            if not p:
                continue
            history = [3] * order
            prev = start
            for c in p:
                history = [int(c)] + history[:-1]       # digit k = k steps back
                state = sum(d * 4 ** k for k, d in enumerate(history))
                expected.append((prev, state))
                prev = state
            expected.append((prev, start + (1 if cv else 2)))
        assert list(zip(src.tolist(), dst.tolist())) == expected
        assert n_states == start + 3


def test_masks_presence_and_subset_sums_match_references() -> None:
    offsets = np.array([0, 0, 3, 4])
    channel = np.array([2, 0, 2, 1], dtype=np.int32)
    assert channel_masks(offsets, channel, 3).tolist() == [0, 5, 2]
    credit = weighted_presence(offsets, channel, np.array([True, True, True]),
                               np.array([0.0, -1.0, 0.0]))
    # present channels all weigh 0 (negative counts as 0): even split
    np.testing.assert_allclose(credit, [[0, 0, 0], [0.5, 0, 0.5], [0, 1, 0]])
    values = np.random.default_rng(1).random(16)
    expected = [sum(values[t] for t in range(16) if t & s == t) for s in range(16)]
    np.testing.assert_allclose(subset_sums(values), expected)
    with pytest.raises(ValueError, match="power-of-two"):
        subset_sums(np.ones(3))


def test_every_method_gives_rows_summing_to_one_on_simulated_journeys() -> None:
    journeys, _ = simulate(WORLDS["balanced"], 3000, seed=2)
    for method in METHODS:
        credit = attribute_journeys(journeys, method)
        assert credit.shape == (3000, 7) and np.all(credit >= 0)
        np.testing.assert_allclose(credit.sum(1), journeys.converted.astype(float), atol=1e-9)
        if method == "markov":
            # the standard model is aggregate: every conversion carries the same shares
            np.testing.assert_allclose(credit[journeys.converted],
                                       np.broadcast_to(credit[journeys.converted][0],
                                                       credit[journeys.converted].shape))
            continue
        # credit only goes to channels the journey touched
        touched = np.zeros((3000, 7), bool)
        touched[np.repeat(np.arange(3000), journeys.lengths()), journeys.channel] = True
        assert not np.any((credit > 0) & ~touched)


def test_bad_method_and_options_are_refused() -> None:
    journeys, _ = simulate(WORLDS["balanced"], 50, seed=2)
    with pytest.raises(ValueError, match="method must be one of"):
        attribute_journeys(journeys, "u-shaped")
    with pytest.raises(ValueError, match="no option order"):
        attribute_journeys(journeys, "linear", order=2)
    with pytest.raises(ValueError, match="half_life_hours must be > 0"):
        attribute_journeys(journeys, "time-decay", half_life_hours=0)
    with pytest.raises(ValueError, match="order must be >= 1"):
        attribute_journeys(journeys, "markov", order=0)


def test_attribute_command_json_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    files = ["--touchpoints", str(DATA / "touchpoints.csv"),
             "--conversions", str(DATA / "conversions.csv")]
    assert main(["attribute", *files, "--method", "position-based"]) == 0
    credit = json.loads(capsys.readouterr().out)
    # a: display, search, direct -> 0.4/0.2/0.4; c: affiliate, search -> 0.5/0.5
    assert credit == pytest.approx({"search": 0.7, "display": 0.4, "social": 0.0, "email": 0.0,
                                    "affiliate": 0.5, "direct": 0.4, "tv": 0.0})
    assert main(["attribute", *files, "--method", "last-click", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # channel and credit stay the first two columns; the report's figures follow
    first_two = [",".join(line.split(",")[:2]) for line in lines]
    assert first_two[0] == "channel,credit" and "search,1.0" in first_two
    assert "direct,1.0" in first_two


def test_attribute_command_reports_bad_input(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("journey_id,timestamp,channel,interaction,cost\nx,1,search,clack,1\n")
    files = ["--touchpoints", str(bad), "--conversions", str(DATA / "conversions.csv")]
    assert main(["attribute", *files, "--method", "linear"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 2, column 'interaction'" in err
    assert main(["attribute", "--touchpoints", str(DATA / "touchpoints.csv"), "--conversions",
                 str(DATA / "conversions.csv"), "--method", "linear", "--order", "2"]) == 2
    assert "--order applies to --method markov only" in capsys.readouterr().err


def test_no_journeys_give_no_credit() -> None:
    empty = _journeys([], [], ABC)
    for method in METHODS:
        assert attribute_journeys(empty, method).shape == (0, 3)
    np.testing.assert_array_equal(markov_removal_effects(empty), 0.0)
