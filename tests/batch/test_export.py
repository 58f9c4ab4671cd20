"""ONNX export: parity with PyTorch, dynamic axes, metadata; and the shipped model as served."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attribid.kernels.featurize import FEATURE_SPEC_VERSION
from attribid.models.onnx import contract
from attribid.models.network.dataset import featurize_journeys
from attribid.models.attribution.network_credit import network_credit, predict_journeys, to_model_channels
from attribid.models.onnx.runtime import load_model, shipped_model_path
from attribid.models.simulation.simulate import WORLDS, simulate


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    torch = pytest.importorskip("torch")
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.network.architecture import AttributionNet

    torch.manual_seed(5)
    net = AttributionNet(7).eval()
    # Random weights give near-uniform outputs; scale them up so parity is a real check.
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    meta = build_metadata(("search", "display", "social", "email", "affiliate", "direct",
                           "offline"), 64, "test-1", {"journeys": 10}, {"auc": 0.5}, 0.12)
    out = tmp_path_factory.mktemp("model")
    path = export_model(net, out, meta)
    return net, path, torch


@pytest.mark.train
def test_onnx_matches_pytorch_to_1e_5_on_featurized_journeys(exported: tuple) -> None:
    net, path, torch = exported
    journeys, truth = simulate(WORLDS["balanced"], 300, seed=11)
    model = load_model(str(path))
    for batch in (journeys.subset(np.arange(1)), journeys.subset(np.arange(64)), journeys):
        ref = truth.reference_time[:batch.n_journeys]
        features, mask = featurize_journeys(batch, 64, ref_time=ref)
        onnx_out = model.run(features, mask)
        with torch.no_grad():
            torch_out = net(torch.from_numpy(features), torch.from_numpy(mask))
        for a, b in zip(onnx_out, torch_out):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-5, rtol=0)


@pytest.mark.train
def test_exported_metadata_is_complete_and_readable(exported: tuple) -> None:
    _, path, _ = exported
    model = load_model(str(path))
    assert model.channels[0] == "search" and len(model.channels) == 7
    assert model.max_len == 64 and model.version == "test-1"
    assert model.metadata[contract.META_FEATURE_SPEC] == FEATURE_SPEC_VERSION
    assert model.metadata[contract.META_BASE_RATE] == {"base_rate": 0.12}
    side = json.loads((Path(path).parent / "attribid.json").read_text())
    assert side[contract.META_TRAINING] == {"journeys": 10}
    assert side[contract.META_METRICS] == {"auc": 0.5}


@pytest.mark.train
def test_export_refuses_incomplete_metadata(exported: tuple, tmp_path: Path) -> None:
    net, _, _ = exported
    from attribid.models.network.export import export_model

    with pytest.raises(ValueError, match="missing keys"):
        export_model(net, tmp_path, {contract.META_CHANNELS: "[]"})


def test_shipped_model_loads_with_full_metadata() -> None:
    model = load_model(None)
    assert Path(shipped_model_path()).stat().st_size < 4_000_000
    for key in (contract.META_CHANNELS, contract.META_FEATURE_SPEC, contract.META_MAX_LEN,
                contract.META_VERSION, contract.META_TRAINING, contract.META_METRICS,
                contract.META_BASE_RATE):
        assert key in model.metadata, key
    assert 0.0 < model.metadata[contract.META_BASE_RATE]["base_rate"] < 1.0
    side = json.loads((Path(shipped_model_path()).parent / "attribid.json").read_text())
    assert side[contract.META_VERSION] == model.version


def test_shipped_model_has_dynamic_batch_and_steps() -> None:
    model = load_model(None)
    for batch, steps in ((1, 1), (3, 17), (64, 64)):
        features = np.zeros((batch, steps, 64), np.float32)
        features[:, :, 0] = 1.0
        mask = np.ones((batch, steps), np.float32)
        conv, credit, attn = model.run(features, mask)
        assert conv.shape == (batch,) and credit.shape == (batch, len(model.channels))
        assert attn.shape == (batch, steps)
        np.testing.assert_allclose(credit[:, 0], 1.0, atol=1e-6)


def test_network_credit_rows_sum_to_one_on_present_channels() -> None:
    journeys, _ = simulate(WORLDS["recency"], 400, seed=3)
    credit = network_credit(journeys, None)
    assert credit.shape == (journeys.n_journeys, len(journeys.channels))
    conv = journeys.converted & (journeys.lengths() > 0)
    np.testing.assert_allclose(credit[conv].sum(axis=1), 1.0, atol=1e-5)
    assert np.all(credit[~journeys.converted] == 0)
    for j in np.flatnonzero(conv):
        touched = np.zeros(len(journeys.channels), bool)
        touched[journeys.channel[journeys.offsets[j]:journeys.offsets[j + 1]]] = True
        assert np.all(credit[j, ~touched] == 0)


def test_network_credit_follows_channel_names_not_codes() -> None:
    journeys, _ = simulate(WORLDS["balanced"], 200, seed=4)
    # The same journeys with the channel list reversed (codes remapped to match).
    perm = np.arange(len(journeys.channels))[::-1]
    names = tuple(journeys.channels[i] for i in perm)
    inverse = np.argsort(perm)
    from dataclasses import replace
    flipped = replace(journeys, channel=inverse[journeys.channel].astype(np.int32), channels=names)
    a = network_credit(journeys, None)
    b = network_credit(flipped, None)
    np.testing.assert_allclose(a, b[:, inverse], atol=1e-9)


def test_unknown_channel_is_named() -> None:
    journeys, _ = simulate(WORLDS["balanced"], 50, seed=5)
    from dataclasses import replace
    renamed = replace(journeys, channels=("tv",) + journeys.channels[1:])
    renamed = replace(renamed, converted=np.ones(50, bool))
    with pytest.raises(ValueError, match="'tv'"):
        network_credit(renamed, None)


def test_predict_journeys_attention_covers_real_touches() -> None:
    model = load_model(None)
    journeys, _ = simulate(WORLDS["synergy"], 100, seed=6)
    conv, credit, attention = predict_journeys(model, to_model_channels(journeys, model))
    assert np.all((conv > 0) & (conv < 1))
    for j in range(journeys.n_journeys):
        n = min(int(journeys.lengths()[j]), model.max_len)
        assert attention[j].shape == (n,)
        if n:
            assert abs(attention[j].sum() - 1.0) < 1e-5


@pytest.mark.slow
def test_evaluate_command_writes_a_report_from_its_own_run(tmp_path: Path) -> None:
    from attribid.cli.main import main

    out = tmp_path / "docs"
    assert main(["evaluate", "--journeys", "600", "--worlds", "recency", "--out", str(out),
                 "--fidelity-journeys", "40", "--latency-repeats", "5"]) == 0
    text = (out / "evaluation.md").read_text()
    first = text.splitlines()[0]
    assert first.startswith("<!-- generated by: attribid evaluate --journeys 600")
    for name in ("last-click", "markov", "shapley", "network", "true probability"):
        assert f"| {name} |" in text or f"| recency | {name} |" in text, name
    assert (out / "evaluation-accuracy.png").stat().st_size > 1000
    assert (out / "evaluation-attention.png").stat().st_size > 1000


def test_evaluate_command_rejects_unknown_world(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    from attribid.cli.main import main

    assert main(["evaluate", "--worlds", "mars", "--out", str(tmp_path)]) == 2
    assert "mars" in capsys.readouterr().err


def test_inference_modules_never_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys\n"
            "import attribid.models.attribution.network_credit, attribid.models.evaluation.evaluate, "
            "attribid.cli.evaluate, attribid.models.onnx.runtime\n"
            "sys.exit(1 if 'torch' in sys.modules else 0)\n")
    # A fresh interpreter: this test process may already have torch loaded.
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
