"""Training end to end, the exact-Shapley teacher, and the `attribid train` command."""
from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from attribid.models.data.journeys import Journeys
from attribid.models.network.distill import credit_shares, network_shapley, shapley_from_values
from attribid.models.evaluation.metrics import auc, log_loss, row_agreement
from attribid.models.simulation.simulate import WORLDS, simulate


def _permutation_shapley(v: np.ndarray, k: int) -> np.ndarray:
    """Shapley values by averaging marginal gains over all k! orders (the definition)."""
    phi = np.zeros(k)
    for order in itertools.permutations(range(k)):
        s = 0
        for p in order:
            phi[p] += v[s | (1 << p)] - v[s]
            s |= 1 << p
    return phi / math.factorial(k)


def test_shapley_from_values_matches_the_permutation_definition() -> None:
    rng = np.random.default_rng(0)
    # Journeys with 0..5 present channels, in scattered channel positions.
    present = np.zeros((6, 7), bool)
    for j, k in enumerate(range(6)):
        present[j, rng.choice(7, size=k, replace=False)] = True
    sizes = 1 << present.sum(axis=1)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    values = rng.random(starts[-1])
    phi = shapley_from_values(starts, present, values)
    for j in range(6):
        k = int(present[j].sum())
        expected = np.zeros(7)
        game = values[starts[j]:starts[j + 1]]
        expected[np.flatnonzero(present[j])] = _permutation_shapley(game, k)
        np.testing.assert_allclose(phi[j], expected, atol=1e-12)
        # Efficiency: the values add up to v(all) - v(empty).
        assert abs(phi[j].sum() - (values[starts[j + 1] - 1] - values[starts[j]])) < 1e-12


def test_network_shapley_of_an_additive_predictor_is_its_per_channel_sum() -> None:
    journeys, truth = simulate(WORLDS["balanced"], 60, seed=1)
    weight = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07])

    def additive(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # v(S) = sum over kept touches of the channel's weight: featurized copies only.
        one_hot = features[:, :, :7] * mask[:, :, None]
        return one_hot.sum(axis=1) @ weight

    phi, present = network_shapley(journeys, additive, ref_time=truth.reference_time)
    counts = np.zeros((journeys.n_journeys, 7))
    rows = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    np.add.at(counts, (rows, journeys.channel), 1.0)
    np.testing.assert_allclose(phi, counts * weight, atol=1e-6)
    assert np.array_equal(present, counts > 0)


def test_credit_shares_keep_positive_values_over_present_channels() -> None:
    phi = np.array([[0.2, -0.1, 0.0, 0.2], [-0.1, -0.2, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    present = np.array([[1, 1, 0, 1], [1, 1, 0, 0], [0, 0, 0, 0]], bool)
    shares, defined = credit_shares(phi, present)
    np.testing.assert_allclose(shares[0], [0.5, 0.0, 0.0, 0.5])
    np.testing.assert_allclose(shares[1], [0.5, 0.5, 0.0, 0.0])
    assert defined.tolist() == [True, False, False]


def test_metrics_against_hand_computed_cases() -> None:
    # 3 positives x 2 negatives = 6 pairs; positive 0.3 loses to negative 0.4 only.
    scores = np.array([0.9, 0.3, 0.8, 0.4, 0.1])
    assert auc(np.array([1, 1, 1, 0, 0]), scores) == pytest.approx(5 / 6)
    assert math.isnan(auc(np.array([1, 1]), np.array([0.2, 0.3])))
    assert log_loss(np.array([1]), np.array([math.exp(-2)])) == pytest.approx(2.0)
    np.testing.assert_allclose(row_agreement(np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])), [0.6])


def _toy_journeys(n: int, seed: int) -> Journeys:
    """Simulated journeys relabelled by a learnable rule: email touched -> converts w.p. 0.85."""
    journeys, truth = simulate(WORLDS["balanced"], n, seed=seed)
    email = journeys.channels.index("email")
    rows = np.repeat(np.arange(n), journeys.lengths())
    has_email = np.bincount(rows[journeys.channel == email], minlength=n) > 0
    rng = np.random.default_rng(seed)
    converted = rng.random(n) < np.where(has_email, 0.85, 0.05)
    return replace(journeys, converted=converted,
                   conversion_time=np.where(converted, truth.reference_time, np.nan))


@pytest.mark.train
@pytest.mark.slow
def test_tiny_training_learns_a_toy_signal_and_credits_it() -> None:
    pytest.importorskip("torch")
    from attribid.models.network.train import TrainConfig, predict_batches, train_network

    journeys = _toy_journeys(600, seed=2)
    config = TrainConfig(epochs=3, distill_epochs=6, seed=3, batch_size=32, holdout=0.25,
                         learning_rate=5e-3, distill_journeys=600, threads=1)
    logs: list[str] = []
    net, report = train_network(journeys, config, log=logs.append)
    assert report["metrics"]["auc"] > 0.8, report
    assert report["summary"]["journeys"] == 450
    losses = [float(line.rsplit(" ", 1)[1]) for line in logs if line.startswith("conversion epoch")]
    assert losses[-1] < losses[0]
    # The network's credit should put most of each email journey's conversion on email.
    test = _toy_journeys(400, seed=9)
    _, credit = predict_batches(net, test, 64)
    email = test.channels.index("email")
    rows = np.repeat(np.arange(400), test.lengths())
    with_email = (np.bincount(rows[test.channel == email], minlength=400) > 0) & test.converted
    n_present = (credit > 0).sum(axis=1)
    uniform_share = 1.0 / n_present[with_email]
    assert credit[with_email, email].mean() > uniform_share.mean() + 0.05
    # Served credit vs the network's own exact Shapley shares: far from perfect after a
    # few seconds of training, but better than a coin flip per journey.
    assert report["metrics"]["credit_vs_network_shapley"] > 0.5


@pytest.mark.train
def test_training_is_deterministic_for_a_seed() -> None:
    torch = pytest.importorskip("torch")
    from attribid.models.network.train import TrainConfig, train_network

    journeys = _toy_journeys(160, seed=4)
    config = TrainConfig(epochs=1, distill_epochs=1, seed=5, batch_size=64,
                         distill_journeys=50, threads=1)
    a, _ = train_network(journeys, config, log=lambda _: None)
    b, _ = train_network(journeys, config, log=lambda _: None)
    c, _ = train_network(journeys, replace(config, seed=6), log=lambda _: None)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.conv.weight, c.conv.weight)


@pytest.mark.train
def test_config_rejects_bad_values() -> None:
    pytest.importorskip("torch")
    from attribid.models.network.train import TrainConfig

    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="holdout"):
        TrainConfig(holdout=1.0)


@pytest.mark.train
@pytest.mark.slow
def test_train_command_on_files_writes_a_servable_model(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from attribid.cli.main import main
    from attribid.models.data.loader import write_journeys
    from attribid.models.attribution.network_credit import network_credit
    from attribid.models.onnx.runtime import load_model

    journeys = _toy_journeys(300, seed=6)
    tp, cv = tmp_path / "touchpoints.csv", tmp_path / "conversions.csv"
    write_journeys(journeys, tp, cv)
    code = main(["train", "--touchpoints", str(tp), "--conversions", str(cv),
                 "--out", str(tmp_path / "m"), "--epochs", "1", "--distill-epochs", "1",
                 "--distill-journeys", "100", "--seed", "1", "--batch-size", "64"])
    assert code == 0
    model = load_model(str(tmp_path / "m"))
    assert model.metadata["attribid.training_summary"]["journeys"] == 270
    credit = network_credit(journeys, str(tmp_path / "m"))
    conv = journeys.converted
    np.testing.assert_allclose(credit[conv].sum(axis=1), 1.0, atol=1e-5)


def test_train_command_names_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from attribid.cli.main import main

    tp = tmp_path / "touchpoints.csv"
    tp.write_text("journey_id,timestamp,channel,interaction,cost\nj1,100,search,click,-1\n")
    cv = tmp_path / "conversions.csv"
    cv.write_text("journey_id,timestamp,value\n")
    assert main(["train", "--touchpoints", str(tp), "--conversions", str(cv),
                 "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "touchpoints.csv" in err and "cost" in err


@pytest.mark.train
@pytest.mark.slow
def test_train_shipped_writes_a_model_with_truth_metrics(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from attribid.cli.main import main
    from attribid.models.onnx.runtime import load_model
    from attribid.models.simulation.simulate import WORLDS

    args = ["train-shipped", "--journeys", "400", "--epochs", "1", "--distill-epochs", "1",
            "--distill-journeys", "60", "--batch-size", "128", "--threads", "1"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    a = load_model(str(tmp_path / "a"))
    metrics = a.metadata["attribid.metrics"]
    assert set(metrics["worlds"]) == set(WORLDS)
    for world in metrics["worlds"].values():
        assert 0.0 < world["attribution_accuracy"] <= 1.0
    assert a.version == "attribid-net-1+sim-mix-seed7"
    summary = a.metadata["attribid.training_summary"]
    assert summary["journeys"] == 360 and summary["config"]["seed"] == 7
