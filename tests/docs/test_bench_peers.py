"""The benchmark's peer plumbing, with no peer installed: KServe v2 requests, the peers'
scoring of padded rows, skipping a peer without its venv, and the three-way report."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from attribid.models.onnx.runtime import load_model
from loadtest import bench, report
from loadtest.journeys import generate, model_inputs
from loadtest.peer import kserve, launch
from loadtest.peer.scoring import PeerScorer


def _fields(data: bytes) -> list[int]:
    """Top-level field numbers of a protobuf message, in wire order (varint and length only)."""
    out, pos = [], 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(data):
        key = varint()
        out.append(key >> 3)
        if key & 7 == 2:
            size = varint()
            pos += size
        else:
            varint()
    return out


def test_requests_carry_padded_rows_with_their_lengths_on_kserve_field_numbers():
    journeys = generate(6, seed=2)
    reqs = kserve.infer_requests(journeys)
    width = int(journeys.lengths().max())
    for j, data in enumerate(reqs):
        # model_name 1, id 3, inputs 5 (seven), raw_input_contents 7 (seven)
        assert _fields(data) == [1, 3] + [5] * 7 + [7] * 7
        sent = kserve.decode_request(data)
        assert sent["model_name"] == "attribid"
        n = int(journeys.lengths()[j])
        assert sent["inputs"]["length"].tolist() == [[n]]
        assert sent["inputs"]["channel"].shape == (1, width)
        start = journeys.offsets[j]
        assert sent["inputs"]["timestamp"][0, :n].tolist() == journeys.timestamp[start:start + n].tolist()
        assert not sent["inputs"]["cost"][0, n:].any()


def test_unpad_gives_back_the_featurizer_layout():
    journeys = generate(9, seed=4)
    offsets, flat = kserve.unpad(kserve.padded_columns(journeys))
    assert offsets.tolist() == journeys.offsets.tolist()
    for name in kserve.PER_TOUCH:
        assert flat[name].tolist() == getattr(journeys, name).astype(flat[name].dtype).tolist()
    with pytest.raises(ValueError, match="length"):
        kserve.unpad({"channel": np.zeros((1, 2)), "length": np.array([[3]])})


def test_peers_score_padded_rows_as_the_model_scores_the_journeys():
    journeys = generate(12, seed=5)
    served = load_model(None, prefer_int8=True)
    conversion, credit = PeerScorer(served.path)(kserve.padded_columns(journeys))
    features, mask = model_inputs(journeys)
    expected, expected_credit, _ = served.run(features, mask)
    np.testing.assert_allclose(conversion, expected, atol=1e-4)
    np.testing.assert_allclose(credit, expected_credit, atol=1e-4)


def test_a_peer_without_its_venv_is_skipped_and_the_page_says_so(tmp_path):
    assert not launch.peer_available(tmp_path) and not launch.triton_available(tmp_path)
    res: dict = {"meta": {}, "failures": [], "skipped": []}
    args = argparse.Namespace(skip_peer=True, skip_triton=True)
    bench.run_peers(args, tmp_path, tmp_path / "m.onnx", res, lambda name, step: step())
    assert [s.split(":")[0] for s in res["skipped"]] == ["MLServer 1.7.1", "PyTriton 0.7.0"]
    assert not (tmp_path / "logs").exists()


def _point(level: float, tput: float, p99: float, **extra: object) -> dict:
    return {"level": level, "throughput": tput, "p50": p99 / 2, "p90": p99, "p99": p99,
            "p999": p99, "errors": {}, "server_cpu": 1.0, "client_cpu": 0.5, "ok": 100,
            "fallback": 0, "dropped": 0, "target": "t", "duration_s": 5.0, "sent": 100, **extra}


def test_report_sets_attribid_beside_both_peers_on_both_mixes(tmp_path):
    mixes = {m: {"mean_touchpoints": 5.7, "max_touchpoints": 64, "min_touchpoints": 1,
                 "score_request_bytes": 200.0, "peer_request_bytes": 1900.0}
             for m in ("fixed", "mix")}
    res = {
        "meta": {"command": "python -m loadtest.bench", "started_utc": "x", "cores": 2,
                 "cpu": "cpu", "python": "3.11", "load_before": [0, 0, 0],
                 "load_after": [0, 0, 0], "steps": 32, "journeys": 8, "mixes": mixes,
                 "score_request_bytes": 900.0, "server_cores": "0", "client_cores": "1",
                 "open_deadline_ms": 100.0, "warmup_s": 1, "duration_s": 5, "threads": 1,
                 "model": {"path": "/m/attribid.int8.onnx", "version": "v-int8",
                           "precision": "int8", "float32_path": "/m/attribid.onnx"},
                 "triton_batcher": {"max_batch_size": 32, "max_queue_delay_us": 0}},
        "floor_a": [{"batch": 1, "median_ms": 0.5, "p99_ms": 0.6, "journeys_per_s": 2000.0},
                    {"batch": 32, "median_ms": 10.0, "p99_ms": 11.0, "journeys_per_s": 3200.0}],
        "floor_a_float32": [{"batch": 1, "median_ms": 1.0, "p99_ms": 1.2,
                             "journeys_per_s": 1000.0}],
        "floor_b": [_point(1, 2000, 0.9), _point(32, 4000, 9.0)],
        "floor_ab": [_point(1, 600, 2.0)],
        "attribid": [_point(1, 500, 3.2), _point(32, 2500, 40.0)],
        "attribid_mix": [_point(1, 700, 2.0), _point(32, 3000, 30.0)],
        "open": [_point(1750, 1750, 9.5, fraction=0.7)],
        "open_mix": [_point(2100, 2100, 12.0, fraction=0.7)],
        "peer": [_point(1, 100, 12.0), _point(32, 600, 30.0)],
        "peer_mix": [_point(1, 150, 10.0), _point(32, 700, 45.0)],
        "peer_open": [_point(420, 420, 20.0, fraction=0.7)],
        "triton": [_point(1, 200, 7.0), _point(32, 2000, 50.0, errors={"UNAVAILABLE": 2})],
        "triton_mix": [_point(1, 250, 6.0), _point(32, 3500, 25.0)],
        "triton_open": [_point(1400, 1400, 15.0, fraction=0.7)],
        "peer_checks": {"triton": {"conversion": 0.1, "in_process": 0.1, "abs_diff": 0.0}},
        "failures": [], "skipped": ["MLServer 1.7.1 with batching: example"],
    }
    fig = report.figures(res)
    assert fig["peers"]["triton"]["ratio"] == pytest.approx(2500 / 2000)
    # Locust mix: no attribid point at p99 <= 25 ms except c=1 (700/s < 3500/s)
    assert fig["peers"]["triton_mix"]["ratio"] == pytest.approx(700 / 3500)
    met = {asked: ok for asked, _, ok in report.checks(fig)}
    assert met[">= 1x PyTriton's saturation throughput at equal or lower p99, fixed"] is True
    assert met[">= 1x PyTriton's saturation throughput at equal or lower p99, Locust mix"] is False
    assert met[">= 3x MLServer's saturation throughput at equal or lower p99, Locust mix"] is True
    assert met["p99 < 10 ms at 70 % of saturation (open loop), Locust mix"] is False
    # c=1 p50 1.6 ms: over floor A+B's 1.0 ms + 0.3, over 1.5x the float32 pass's 1.0 ms
    assert met["concurrency 1 p50 <= 1.5x the float32 network's in-process forward pass "
               "at batch 1"] is False
    report.render(res, tmp_path / "p.md", tmp_path / "p.png")
    text = (tmp_path / "p.md").read_text()
    side = text.split("## Side by side", 1)[1].split("## Ratios", 1)[0]
    assert side.count("| PyTriton 0.7.0, dynamic batching |") == 2
    assert "UNAVAILABLE 2" in side and "Not measured in this run: MLServer" in side
    assert "## Peer: PyTriton 0.7.0, Triton's dynamic batcher, Locust mix journeys" in text
    assert "`attribid.int8.onnx` (int8" in text


def test_every_section_another_script_wrote_survives_a_new_report():
    page = ("# old\n<!-- loadtest.interference: begin -->\nI\n<!-- loadtest.interference: end -->"
            "\ntext\n<!-- loadtest.bench_state: begin -->\nS\n<!-- loadtest.bench_state: end -->")
    assert report.kept_sections(page) == [
        "<!-- loadtest.interference: begin -->\nI\n<!-- loadtest.interference: end -->",
        "<!-- loadtest.bench_state: begin -->\nS\n<!-- loadtest.bench_state: end -->"]
