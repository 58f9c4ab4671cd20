"""The int8 variant: its parity gate's figures, when it is served instead of float32, and the
shipped variant's contract, credit and version."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from attribid.core.scoring import Scorer
from attribid.core.validate import RequestValidator
from attribid.core.types import RawJourney
from attribid.kernels.taxonomy import CLICK
from attribid.models.attribution.network_credit import predict_journeys, to_model_channels
from attribid.models.network.shipped import check_mix, shipped_dir
from attribid.models.onnx import contract
from attribid.models.onnx.parity import (ParityBounds, aggregate_tvd, journey_tvd,
                                         parity_figures)
from attribid.models.onnx.runtime import int8_refusal, load_model
from attribid.models.simulation.simulate import WORLDS
from attribid.runtime.settings import Settings, add_arguments, from_sources

SHIPPED_INT8 = shipped_dir() / contract.INT8_MODEL_FILE


def naive_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Share of (converting, not converting) pairs ranked right, ties counting half."""
    pos, neg = scores[labels], scores[~labels]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


def test_gate_figures_equal_plain_numpy() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random(40) < 0.4
    conv = rng.random(40)
    conv_b = np.clip(conv + rng.normal(0, 0.05, 40), 0, 1)
    conv_b[:5] = conv[:5]  # some ties between the models' scores
    credit = rng.dirichlet(np.ones(4), 40)
    credit_b = rng.dirichlet(np.ones(4), 40)
    per_row = [0.5 * sum(abs(a - b) for a, b in zip(x, y))
               for x, y in zip(credit[labels], credit_b[labels])]
    totals_a, totals_b = credit[labels].sum(axis=0), credit_b[labels].sum(axis=0)
    aggregate = 0.5 * np.abs(totals_a / totals_a.sum() - totals_b / totals_b.sum()).sum()

    figures = parity_figures(labels, conv, credit, conv_b, credit_b, ParityBounds(1.0, 1.0))
    assert figures["credit_tvd_mean"] == pytest.approx(np.mean(per_row), abs=1e-6)
    assert figures["credit_tvd_max"] == pytest.approx(max(per_row), abs=1e-6)
    assert figures["credit_tvd_aggregate"] == pytest.approx(aggregate, abs=1e-6)
    assert figures["auc_float32"] == pytest.approx(naive_auc(labels, conv), abs=1e-6)
    assert figures["auc_int8"] == pytest.approx(naive_auc(labels, conv_b), abs=1e-6)
    assert figures["auc_difference"] == pytest.approx(
        abs(naive_auc(labels, conv_b) - naive_auc(labels, conv)), abs=1e-6)
    assert figures["converting"] == labels.sum() and figures["passed"] is True
    np.testing.assert_allclose(journey_tvd(credit, credit), 0.0)
    assert aggregate_tvd(credit, credit) == 0.0


def test_gate_fails_past_a_bound_or_without_a_figure() -> None:
    labels = np.array([True, False, True, False])
    conv = np.array([0.9, 0.1, 0.8, 0.3])
    credit = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [1.0, 0.0]])
    moved = credit + np.array([[-0.01, 0.01]] * 4)
    assert parity_figures(labels, conv, credit, conv, moved)["passed"] is False  # TVD 0.01
    assert parity_figures(labels, conv, credit, conv, moved,
                          ParityBounds(max_credit_tvd=0.02))["passed"] is True
    swapped = np.array([0.1, 0.9, 0.8, 0.3])  # the ranking changes: AUC 1.0 -> 0.5
    assert parity_figures(labels, conv, credit, swapped, credit)["passed"] is False
    one_class = np.zeros(4, bool)  # no conversions: nothing to compare, so no pass
    assert parity_figures(one_class, conv, credit, conv, credit)["passed"] is False
    with pytest.raises(ValueError, match="max_auc_difference: must be finite"):
        ParityBounds(max_auc_difference=float("nan"))


@pytest.fixture
def float32_folder(tmp_path: Path) -> Path:
    pytest.importorskip("onnx")
    shutil.copy(shipped_dir() / contract.MODEL_FILE, tmp_path / contract.MODEL_FILE)
    return tmp_path


def test_a_failed_gate_is_recorded_and_not_served(float32_folder: Path) -> None:
    from attribid.cli.main import main

    # A bound of 0: any movement of the credit at all fails the gate.
    code = main(["quantize", str(float32_folder), "--journeys", "100", "--max-credit-tvd", "0"])
    assert code == 1
    int8 = load_model(float32_folder / contract.INT8_MODEL_FILE)  # a file: loaded as given
    gate = int8.metadata[contract.META_PARITY]
    assert gate["passed"] is False and gate["bounds"]["max_credit_tvd"] == 0.0
    assert gate["journeys"] == 100 * len(WORLDS) and gate["credit_tvd_mean"] > 0
    side = json.loads((float32_folder / "attribid.int8.json").read_text())
    assert side[contract.META_PARITY] == gate
    assert side[contract.META_VERSION] == int8.version
    assert int8_refusal(int8.info, float32_folder / contract.MODEL_FILE) == \
        "its parity gate did not pass"
    served = load_model(float32_folder, prefer_int8=True)
    assert served.info.precision == "float32" and served.path.endswith(contract.MODEL_FILE)


def test_a_passed_gate_is_served_from_a_folder_and_only_while_fresh(float32_folder: Path) -> None:
    from attribid.cli.main import main

    assert main(["quantize", str(float32_folder / contract.MODEL_FILE), "--journeys", "100"]) == 0
    served = load_model(float32_folder, prefer_int8=True)
    assert served.info.precision == "int8" and served.info.parity_passed
    assert served.version == "attribid-net-1+sim-mix-seed7-int8"
    # Without the preference (the batch commands, --model-float32) a folder means float32.
    assert load_model(float32_folder).info.precision == "float32"
    # A file path is served as given, whatever lies beside it.
    explicit = load_model(float32_folder / contract.MODEL_FILE, prefer_int8=True)
    assert explicit.info.precision == "float32"
    # A float32 model changed since quantizing leaves the variant stale: float32 serves.
    shutil.copy(_retagged(float32_folder), float32_folder / contract.MODEL_FILE)
    assert "quantized from" in int8_refusal(served.info, float32_folder / contract.MODEL_FILE)
    assert load_model(float32_folder, prefer_int8=True).info.precision == "float32"


def _retagged(folder: Path) -> Path:
    """The folder's float32 model with another version string: same weights, other digest."""
    import onnx

    model = onnx.load(str(folder / contract.MODEL_FILE))
    for entry in model.metadata_props:
        if entry.key == contract.META_VERSION:
            entry.value = "retrained"
    path = folder / "retagged.onnx"
    onnx.save(model, str(path))
    return path


def test_the_shipped_int8_model_serves_within_the_gate() -> None:
    float32 = load_model(None)
    int8 = load_model(None, prefer_int8=True)
    assert float32.info.precision == "float32"  # the default stays float32
    assert int8.path == str(SHIPPED_INT8) and int8.info.precision == "int8"
    assert int8.info.parity_passed and int8_refusal(int8.info, float32.path) == ""
    assert int8.version == float32.version + "-int8"
    # the contract: same channels and journey length, so it can take over from float32
    assert (int8.channels, int8.max_len) == (float32.channels, float32.max_len)
    Scorer(float32, max_batch=6, max_journey=64).check(int8)
    # credit on journeys the gate never saw stays within the gate's bound
    journeys, ref = check_mix(list(WORLDS), 250, seed=11)
    picked = to_model_channels(journeys, float32)
    conv, credit, _ = predict_journeys(float32, picked, ref_time=ref)
    conv_8, credit_8, _ = predict_journeys(int8, picked, ref_time=ref)
    bound = int8.metadata[contract.META_PARITY]["bounds"]["max_credit_tvd"]
    converted = journeys.converted
    assert journey_tvd(credit[converted], credit_8[converted]).mean() < bound
    assert aggregate_tvd(credit[converted], credit_8[converted]) < bound
    np.testing.assert_allclose(credit_8[converted].sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(conv_8 - conv).max() < 0.02


def test_model_version_names_the_int8_model_in_every_answer() -> None:
    scorer = Scorer(load_model(None, prefer_int8=True), max_batch=4, max_journey=64)
    channels = scorer.channels
    validator = RequestValidator(channels, 512, 64, 300.0)
    now = time.time()
    journeys = [validator.validate(RawJourney.of(
        [(channels[(k + i) % len(channels)], int((now - 3600 + 60 * i) * 1000), CLICK, 0.1, 0)
         for i in range(2 + k)], request_id=str(k)), now) for k in range(3)]
    versions = {s.model_version for s in scorer.infer_batch(journeys)}
    versions.add(scorer.fallback(journeys[0], "deadline").model_version)
    assert versions == {"attribid-net-1+sim-mix-seed7-int8"}


def test_model_float32_is_a_setting_flag_and_variable() -> None:
    import argparse

    assert Settings().model_float32 is False
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert from_sources(parser.parse_args(["--model-float32"]), {}).model_float32 is True
    assert from_sources(None, {"ATTRIBID_MODEL_FLOAT32": "1"}).model_float32 is True


@pytest.mark.train
@pytest.mark.slow
def test_train_and_train_shipped_write_the_gated_int8_variant_beside_float32(
        tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from attribid.cli.main import main
    from attribid.models.data.loader import write_journeys
    from attribid.models.onnx.runtime import file_digest
    from attribid.models.simulation.simulate import simulate

    small = ["--epochs", "1", "--distill-epochs", "1", "--distill-journeys", "60",
             "--batch-size", "128"]
    assert main(["train-shipped", "--journeys", "400", "--out", str(tmp_path / "s")] + small) == 0
    journeys, _ = simulate(WORLDS["balanced"], 400, seed=2)
    tp, cv = tmp_path / "touchpoints.csv", tmp_path / "conversions.csv"
    write_journeys(journeys, tp, cv)
    assert main(["train", "--touchpoints", str(tp), "--conversions", str(cv),
                 "--out", str(tmp_path / "t")] + small) == 0
    for folder, data in ((tmp_path / "s", "simulated check journeys: 200 per world"),
                         (tmp_path / "t", "held-out journeys: 40 of 400")):
        assert sorted(p.name for p in folder.iterdir()) == [
            "attribid.int8.json", "attribid.int8.onnx", "attribid.json", "attribid.onnx"]
        int8 = load_model(folder / contract.INT8_MODEL_FILE)
        gate = int8.metadata[contract.META_PARITY]
        assert gate["data"].startswith(data) and isinstance(gate["passed"], bool)
        assert int8.metadata[contract.META_QUANTIZED_FROM] == file_digest(
            folder / contract.MODEL_FILE)
        assert int8.version == load_model(folder).version + "-int8"
        side = json.loads((folder / "attribid.int8.json").read_text())
        assert side[contract.META_PARITY] == gate
