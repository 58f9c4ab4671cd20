"""The truth-free recipe: the credit blend (graph vs NumPy, weight 0 = data-driven Shapley,
chosen by held-out likelihood) and early stopping on the held-out log-loss."""
from __future__ import annotations

import numpy as np
import pytest

from attribid.models.attribution.classic import (
    attribute_journeys, journey_masks, shapley_set_values,
)
from attribid.models.network.blend import (
    WEIGHT_GRID, blended_credit, choose_weight, set_credit_table,
)
from attribid.models.network.config import TrainConfig
from attribid.models.simulation.simulate import WORLDS, simulate


def test_the_weight_follows_the_better_predictor() -> None:
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.01, 0.4, 20_000)
    y = (rng.random(truth.size) < truth).astype(float)
    noisy = np.clip(truth + rng.normal(0, 0.15, truth.size), 0.001, 0.999)
    flat = np.full(truth.size, y.mean())
    assert choose_weight(truth, flat, y).weight >= 0.9
    assert choose_weight(flat, truth, y).weight <= 0.1
    # Two predictors of similar worth mix: neither end is best.
    mixed = choose_weight(truth, noisy, y)
    assert mixed.log_likelihood[mixed.weight] == max(mixed.log_likelihood.values())
    assert set(mixed.log_likelihood) == set(WEIGHT_GRID)


def test_the_set_table_holds_data_driven_shapley() -> None:
    journeys, _ = simulate(WORLDS["balanced"], 3000, seed=4)
    v = shapley_set_values(journeys)
    table = set_credit_table(v, len(journeys.channels))
    masks = journey_masks(journeys)
    conv = np.flatnonzero(journeys.converted)
    # Weight 0: the blend is data-driven Shapley's credit of each converting journey.
    credit = blended_credit(np.zeros((conv.size, len(journeys.channels))), np.zeros(conv.size),
                            masks[conv], table, 0.0, 0.0)
    expected = attribute_journeys(journeys, "shapley")[conv]
    np.testing.assert_allclose(credit, expected, atol=1e-6)
    # Rows are the game's efficiency: a set's positive values sum to at least v(S).
    assert np.all(table[masks[conv]].sum(axis=1) >= v[masks[conv]] - 1e-6)


@pytest.mark.train
def test_the_exported_graph_blends_as_the_numpy_reference(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from attribid.models.network.architecture import AttributionNet, normalise_credit
    from attribid.models.network.dataset import featurize_journeys
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.onnx.quantize import quantize_file
    from attribid.models.onnx.runtime import OnnxModel

    journeys, _ = simulate(WORLDS["balanced"], 400, seed=5)
    n = len(journeys.channels)
    torch.manual_seed(0)
    net = AttributionNet(n).eval()
    table = set_credit_table(shapley_set_values(journeys), n)
    net.set_credit_blend(torch.from_numpy(table), 0.4, 0.02)
    features, mask = featurize_journeys(journeys, 64)
    with torch.no_grad():
        logit, scores, present, _ = net.heads(torch.from_numpy(features), torch.from_numpy(mask))
        own = normalise_credit(scores, present).double().numpy()
        conversion = torch.sigmoid(logit).double().numpy()
    expected = blended_credit(own, conversion, journey_masks(journeys), table, 0.4, 0.02)
    meta = build_metadata(journeys.channels, 64, "blend", {}, {}, 0.1)
    path = export_model(net, tmp_path, meta)
    _, credit, _ = OnnxModel(path).run(features, mask)
    np.testing.assert_allclose(credit, expected, atol=2e-5)
    # The int8 variant quantizes the network's weights, never the table or its bitmask.
    int8 = quantize_file(path, tmp_path / "attribid.int8.onnx")
    net.set_credit_blend(torch.from_numpy(table), 0.0, 0.02)
    path0 = export_model(net, tmp_path / "w0", meta)
    int8_0 = quantize_file(path0, tmp_path / "w0" / "attribid.int8.onnx")
    mask_rows = journey_masks(journeys)
    only_table = blended_credit(own, conversion, mask_rows, table, 0.0, 0.02)
    for model in (path0, int8_0):
        np.testing.assert_allclose(OnnxModel(model).run(features, mask)[1], only_table,
                                   atol=2e-5)
    assert OnnxModel(int8).run(features, mask)[1].shape == credit.shape


@pytest.mark.train
def test_weight_zero_serves_data_driven_shapley_through_attribute(tmp_path) -> None:
    pytest.importorskip("torch")
    from attribid.models.attribution.network_credit import network_credit
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.network.train import train_network

    journeys, _ = simulate(WORLDS["balanced"], 1500, seed=6)
    config = TrainConfig(epochs=1, distill_epochs=1, distill_journeys=100, blend=0.0)
    net, report = train_network(journeys, config, log=lambda _: None)
    assert report["summary"]["credit_blend"] == {"weight": 0.0, "chosen_by": "--blend"}
    meta = build_metadata(journeys.channels, 64, "w0", report["summary"], report["metrics"],
                          report["base_rate"])
    credit = network_credit(journeys, str(export_model(net, tmp_path, meta)))
    np.testing.assert_allclose(credit, attribute_journeys(journeys, "shapley"), atol=1e-6)


@pytest.mark.train
def test_the_default_recipe_records_its_held_out_choices() -> None:
    pytest.importorskip("torch")
    from attribid.models.network.train import train_network

    journeys, _ = simulate(WORLDS["balanced"], 2000, seed=7)
    logs: list[str] = []
    config = TrainConfig(epochs=6, patience=1, distill_epochs=0, batch_size=64)
    net, report = train_network(journeys, config, log=logs.append)
    held = [float(line.rsplit(" ", 1)[1]) for line in logs if "held-out log-loss 0" in line]
    epochs = report["summary"]["conversion_epochs"]
    assert epochs["run"] == len(held) and 1 <= epochs["kept"] <= epochs["run"] <= 6
    # The kept epoch is the best held-out one, and its weights are the ones served.
    assert held[epochs["kept"] - 1] == min(held)
    assert report["metrics"]["log_loss"] == pytest.approx(min(held), abs=2e-5)
    assert epochs["run"] == 6 or epochs["run"] == epochs["kept"] + 1
    blend = report["summary"]["credit_blend"]
    assert blend["chosen_by"].startswith("held-out log-likelihood")
    scores = blend["log_likelihood"]
    assert scores[f"{blend['weight']:.1f}"] == max(scores.values())
    assert net.blended == (blend["weight"] < 1.0)


def test_bad_blend_and_patience_values_name_their_setting() -> None:
    with pytest.raises(ValueError, match="^blend:"):
        TrainConfig(blend=1.5)
    with pytest.raises(ValueError, match="^blend:"):
        TrainConfig(blend=-0.5)
    with pytest.raises(ValueError, match="^patience:"):
        TrainConfig(patience=-1)
    assert TrainConfig(blend=0.3).blend == 0.3


@pytest.mark.train
@pytest.mark.slow
def test_the_served_credit_benchmark_runs_as_the_readme_shows(tmp_path) -> None:
    pytest.importorskip("torch")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "loadtest.bench_credit", "--repeats", "10",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in (tmp_path / "served-credit.md").read_text().splitlines()
            if line.startswith("| 7 |") or line.startswith("| 16 |")]
    assert len(rows) == 8
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[3]) > 0 and float(cells[4]) > 0
