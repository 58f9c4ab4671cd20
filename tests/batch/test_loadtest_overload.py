"""The streaming and overload benchmarks, run as a user runs them against a real server.

Nothing here asserts a speed or a ratio (the machine is shared): only that each way was
measured and what must hold whatever the speed: a burst smaller than ``--max-pending`` is
answered whole, and a stream's messages are all answered.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_module(*args: str, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_bench_stream_measures_both_ways_per_core(tmp_path):
    done = run_module("loadtest.bench_stream", "--seconds", "1", "--rounds", "1",
                      "--in-flight", "8", "--streams", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    res = json.loads((tmp_path / "results.json").read_text())
    for way in ("unary", "stream"):
        (only,) = res["rounds"][way]
        assert only["answers_per_s"] > 0 and only["server_cores"] > 0
    # 8 in flight is well under the pending bound: nothing is refused either way
    assert res["rounds"]["stream"][0]["errors"] == 0
    assert res["rounds"]["unary"][0]["errors"] == 0
    assert "ScoreStream / unary" in (tmp_path / "table.md").read_text()


def test_bench_overload_answers_a_burst_under_the_pending_bound(tmp_path):
    done = run_module("loadtest.bench_overload", "--pending", "32", "--burst", "24",
                      "--bursts", "2", "--seconds", "1", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert row["max_pending"] == 32
    assert row["bursts"] == [{"OK": 24}, {"OK": 24}]
    assert row["saturation"]["throughput"] > 0
    twice = row["twice"]
    # every call of the window ended somehow, and none with INTERNAL or UNKNOWN
    assert twice["ok"] + sum(twice["errors"].values()) == twice["sent"]
    assert not {"INTERNAL", "UNKNOWN"} & set(twice["errors"])
