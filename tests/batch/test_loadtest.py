"""The load-test tools: request generator, histogram, driver, and a headless Locust run.

The Locust and driver tests send real traffic to a real server on a free
loopback port (the ``server`` fixture, in this process), bounded in time.
"""
from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import uvloop

from attribid.kernels.taxonomy import DEFAULT_CHANNELS, PRODUCT_CATEGORIES
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from loadtest import driver
from loadtest.echo_server import typical_response
from loadtest.histogram import LatencyHistogram
from loadtest.journeys import (MAX_TOUCHPOINTS, _TRANSITION, generate, model_inputs,
                               outcome_request, score_requests)
from tests.serverproc import InProcessServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server():
    """A real server of this module's own: the load reports outcomes, which changes state."""
    with InProcessServer() as srv:
        yield srv


def test_generator_shapes_and_values_are_valid():
    now = time.time()
    j = generate(3000, seed=11, now=now)
    lens = j.lengths()
    assert j.n_journeys == 3000 and int(lens.sum()) == j.n_touchpoints
    assert lens.min() >= 1 and lens.max() <= MAX_TOUCHPOINTS
    assert 2 <= np.median(lens) <= 8            # most journeys are short ...
    assert lens.max() >= 20                     # ... with a long tail
    assert j.channel.min() >= 0 and j.channel.max() < len(DEFAULT_CHANNELS)
    assert set(np.unique(j.interaction)) <= {1, 2}
    assert set(np.unique(j.device)) <= {0, 1, 2, 3}
    assert np.all(np.isfinite(j.cost)) and j.cost.min() >= 0.0
    within = np.diff(j.timestamp)[np.diff(np.repeat(np.arange(3000), lens)) == 0]
    assert within.min() >= 0.0                  # oldest first inside each journey
    assert j.timestamp.max() < now              # nothing in the future
    assert j.category.min() >= 0 and j.category.max() <= len(PRODUCT_CATEGORIES)


def test_generator_is_seeded_and_fixed_length_works():
    a, b = generate(50, seed=3, now=1.7e9), generate(50, seed=3, now=1.7e9)
    c = generate(50, seed=4, now=1.7e9)
    assert np.array_equal(a.channel, b.channel) and np.array_equal(a.cost, b.cost)
    assert not np.array_equal(a.offsets, c.offsets) or not np.array_equal(a.channel, c.channel)
    fixed = generate(10, seed=0, length=32)
    assert fixed.lengths().tolist() == [32] * 10
    with pytest.raises(ValueError, match="length"):
        generate(1, seed=0, length=65)
    with pytest.raises(ValueError, match="n_journeys"):
        generate(0, seed=0)


def test_channel_transitions_follow_the_markov_chain():
    j = generate(20000, seed=5, length=16)
    prev = j.channel.reshape(-1, 16)[:, :-1].ravel()
    nxt = j.channel.reshape(-1, 16)[:, 1:].ravel()
    counts = np.zeros((7, 7))
    np.add.at(counts, (prev, nxt), 1.0)
    observed = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(observed - _TRANSITION).max() < 0.03


def test_score_requests_carry_the_journeys():
    j = generate(200, seed=9)
    reqs = score_requests(j)
    assert len(reqs) == 200
    for k in (0, 57, 199):
        req, lo, hi = reqs[k], j.offsets[k], j.offsets[k + 1]
        assert len(req.journey) == hi - lo
        assert [t.channel for t in req.journey] == [DEFAULT_CHANNELS[c] for c in j.channel[lo:hi]]
        assert [t.timestamp_ms for t in req.journey] == sorted(t.timestamp_ms for t in req.journey)
        assert req.impression.channel in DEFAULT_CHANNELS
        assert req.impression.floor_price >= 0.0
        assert pb.ScoreRequest.FromString(req.SerializeToString()) == req
    out = outcome_request(np.random.default_rng(0), "b-1")
    assert out.batch_id == "b-1" and {o.channel for o in out.outcomes} == set(DEFAULT_CHANNELS)
    assert all(o.spend >= 0 and o.conversions >= 0 and o.revenue >= 0 for o in out.outcomes)


def test_model_inputs_match_the_contract():
    feats, mask = model_inputs(generate(5, seed=1, length=32))
    assert feats.shape == (5, 32, 64) and feats.dtype == np.float32
    assert mask.shape == (5, 32) and mask.sum() == 5 * 32
    assert np.array_equal(feats[:, :, :16].sum(axis=2), np.ones((5, 32)))  # one channel each


def test_histogram_percentiles_are_nearest_rank_in_microseconds():
    rng = np.random.default_rng(0)
    ms = rng.lognormal(0.0, 1.0, 5001)
    hist = LatencyHistogram()
    for v in ms:
        hist.record("Score", float(v))
    us = np.sort(np.round(ms * 1000.0))
    for q, got in hist.percentiles("Score").items():
        want = us[int(np.ceil(q / 100.0 * us.size)) - 1] / 1000.0
        assert got == pytest.approx(want, abs=1e-9)
    assert hist.count() == 5001 and np.isnan(hist.percentiles("missing")[50])


def test_histogram_csv_counts_every_sample(tmp_path):
    hist = LatencyHistogram()
    for v in (0.2501, 0.2504, 0.3, 1.0):
        hist.record("Score", v)
    hist.write_csv(tmp_path / "h.csv")
    rows = list(csv.DictReader((tmp_path / "h.csv").read_text().splitlines()))
    assert {(r["latency_us"], r["count"]) for r in rows} == {("250", "2"), ("300", "1"),
                                                           ("1000", "1")}


def test_request_file_roundtrip(tmp_path):
    msgs = [b"", b"x" * 70000, typical_response().SerializeToString()]
    driver.write_requests(tmp_path / "r.bin", msgs)
    assert driver.read_requests(tmp_path / "r.bin") == msgs


def test_generated_requests_are_all_accepted_by_the_server(server):
    reqs = score_requests(generate(60, seed=21))
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.AttributionStub(channel)
        replies = [stub.Score(r, timeout=10.0) for r in reqs]
    assert [r.request_id for r in replies] == [r.request_id for r in reqs]
    assert all(sum(r.credit.values()) == pytest.approx(1.0, abs=1e-4) for r in replies)


@pytest.mark.slow
def test_driver_closed_and_open_loop_against_the_server(server, tmp_path):
    reqs = [r.SerializeToString() for r in score_requests(generate(64, seed=2, length=32))]

    async def both() -> tuple[driver.Result, driver.Result]:
        closed = await driver.run(server.address, driver.SCORE_METHOD, reqs, concurrency=4,
                                  duration=1.0, warmup=0.3, parse_fallback=True)
        opened = await driver.run(server.address, driver.SCORE_METHOD, reqs, rate=100.0,
                                  duration=1.0, warmup=0.3, parse_fallback=True)
        return closed, opened

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        closed, opened = runner.run(both())
    assert closed.ok > 10 and closed.errors == {} and closed.p50 <= closed.p99
    assert opened.errors == {} and opened.dropped == 0
    assert 50 <= opened.ok <= 160          # ~100 Poisson arrivals in one second
    with pytest.raises(ValueError, match="exactly one"):
        asyncio.run(driver.run(server.address, driver.SCORE_METHOD, reqs))


@pytest.mark.slow
def test_locust_headless_run_against_a_real_server(server, tmp_path):
    prefix = tmp_path / "locust"
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"),
           "--headless", "--host", server.address, "-u", "4", "-r", "4", "-t", "4s",
           "--rate", "60", "--journeys", "200", "--stream-messages", "4",
           "--csv", str(prefix), "--html", str(tmp_path / "locust.html")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    stats = {row["Name"]: row for row in
             csv.DictReader(Path(f"{prefix}_stats.csv").read_text().splitlines())}
    assert int(stats["Score"]["Request Count"]) > 20
    assert int(stats["Aggregated"]["Failure Count"]) == 0
    assert "ScoreStream" in stats and "ReportOutcomes" in stats
    assert "ScoreStream" in (tmp_path / "locust.html").read_text()
    assert "p99.9" in done.stdout + done.stderr
    hist = list(csv.DictReader(Path(f"{prefix}_us_histogram.csv").read_text().splitlines()))
    # The histogram also counts calls that finish while users stop, after the CSV is written.
    assert sum(int(r["count"]) for r in hist if r["name"] == "Score") >= \
        int(stats["Score"]["Request Count"])


def test_h2load_summary_reads_rate_status_and_latencies():
    from loadtest import h2load
    out = ("finished in 5.00s, 2235.50 req/s, 834.06KB/s\n"
           "status codes: 10 2xx, 0 3xx, 1 4xx, 2 5xx\n")
    log = "".join(f"{1_700_000_000_000_000 + k}\t200\t{(k + 1) * 100}\n" for k in range(10))
    row = h2load.summarize(out, log + "1700000000000010\t500\t99\n", 32)
    assert row["throughput"] == 2235.5 and row["non_2xx"] == 3 and row["ok"] == 10
    assert row["p50"] == pytest.approx(np.percentile(np.arange(1, 11) * 0.1, 50))
    assert h2load.grpc_frame(b"xyz") == b"\x00\x00\x00\x00\x03xyz"


def _point(level: float, tput: float, p50: float, p99: float, **extra: object) -> dict:
    return {"level": level, "throughput": tput, "p50": p50, "p90": p99, "p99": p99,
            "p999": p99, "errors": {}, "server_cpu": 1.0, "client_cpu": 0.5, "ok": 100,
            "fallback": 0, "dropped": 0, "target": "t", "duration_s": 5.0, "sent": 100,
            **extra}


def test_report_checks_follow_the_capability_targets(tmp_path):
    from loadtest import report
    res = {
        "meta": {"command": "python -m loadtest.bench", "started_utc": "x", "cores": 2,
                 "cpu": "cpu", "python": "3.11", "load_before": [0, 0, 0], "load_after": [0, 0, 0],
                 "steps": 32, "journeys": 8, "score_request_bytes": 900.0, "server_cores": "0",
                 "client_cores": "1", "open_deadline_ms": 100.0, "warmup_s": 1, "duration_s": 5,
                 "threads": 1},
        "floor_a": [{"batch": 1, "median_ms": 1.0, "p99_ms": 1.2, "journeys_per_s": 1000.0},
                    {"batch": 32, "median_ms": 10.0, "p99_ms": 11.0, "journeys_per_s": 3200.0}],
        "floor_b": [_point(1, 2000, 0.5, 0.9), _point(32, 4000, 8.0, 9.0)],
        # c=1: 1.9 <= 1.0 + 0.5 + 0.5 (met); saturation 2500 >= 0.7 * min(3200, 4000) (met);
        # at the peer's p99 (30 ms) only c=1 qualifies: 500/s < 2 x 600/s (not met)
        "attribid": [_point(1, 500, 1.9, 2.5), _point(32, 2500, 12.0, 40.0)],
        "open": [_point(1750, 1750, 3.0, 9.5, fraction=0.7),
                 _point(5000, 2400, 40.0, 120.0, fraction=2.0, p99_from_send=101.0,
                        admitted=50, p99_admitted=120.0, p99_admitted_from_send=101.0)],
        "floor_ab": [_point(1, 600, 1.6, 2.0), _point(32, 900, 30.0, 40.0)],
        "peer": [_point(1, 100, 9.0, 12.0), _point(32, 600, 50.0, 30.0)],
        "failures": ["2 workers: boom"],
    }
    met = {asked: ok for asked, _, ok in report.checks(report.figures(res))}
    assert [met[k] for k in met] == [True, True, True, False, False]
    res["attribid"][1]["p99"] = 25.0
    assert report.figures(res)["peer_ratio"] == pytest.approx(2500 / 600)
    res["attribid"][0]["p50"] = 2.1
    assert report.checks(report.figures(res))[0][2] is False
    # Admitted calls bounded under at least one shedding mode counts as bounded.
    res["open_reject"] = [_point(5000, 2000, 40.0, 80.0, fraction=2.0, admitted=9000,
                                 p99_admitted=106.0, p99_admitted_from_send=104.0)]
    fig = report.figures(res)
    assert report.checks(fig)[3][2] is True and fig["reject2x_admitted_per_s"] == 1800.0
    res["open_reject"][0]["p99_admitted_from_send"] = 106.0  # past the deadline's slack
    assert report.checks(report.figures(res))[3][2] is False
    res["open_reject"][0].update(p99_admitted_from_send=90.0, admitted=1000)  # goodput too low
    assert report.checks(report.figures(res))[3][2] is False
    assert fig["serial_ceiling"] == pytest.approx(1 / (1 / 3200 + 1 / 4000))
    lines = report.render(res, tmp_path / "p.md", tmp_path / "p.png")
    text = (tmp_path / "p.md").read_text()
    assert text.startswith("# Performance") and "python -m loadtest.bench" in text
    assert "2 workers: boom" in text and (tmp_path / "p.png").stat().st_size > 10000
    assert "Floor A+B" in text and "--shed-with reject" in text
    assert len(lines) == 5
