"""The campaign-store load tests, run as a user runs them: real servers, SQLite files, Redis.

``loadtest.durability`` kill -9's a real ``attribid serve`` mid-stream and restarts it on the
same store; ``loadtest.bench_state`` drives a server per store. Nothing here asserts a speed
or a ratio (the machine is shared): only what the runs found and that they measured at all.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redisproc import require_redis

ROOT = Path(__file__).resolve().parents[2]


def run_module(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("state", ["sqlite", "redis"])
def test_durability_keeps_every_acknowledged_report_once_across_kill_9(state):
    if state == "redis":
        require_redis()
    done = run_module("loadtest.durability", "--state", state, "--reports", "40",
                      "--format", "json")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["ok"] and result["state"] == state
    assert all(check["ok"] for check in result["checks"]), result["checks"]
    acked, landed = result["acknowledged"], result["landed_unacknowledged"]
    assert acked >= result["kill_after_acknowledged"] > 0
    # every acknowledged batch, sent again after the restart, was recognised
    assert result["all_acknowledged_duplicate"]
    assert result["acknowledged_duplicate_on_retry"] == acked
    # the unacknowledged ones had either landed or were counted on their retry, none lost
    assert landed + result["counted_on_retry"] == result["sent_unacknowledged"]
    assert acked + result["sent_unacknowledged"] + result["never_sent"] == result["reports"]
    # the store holds each landed batch once, and the server's total agrees to the row
    assert result["counts_match"]
    assert result["store_outcome_events"] == acked + landed
    assert result["server_total_spend"] == result["rows_per_report"] * (
        acked + landed + result["counted_on_retry"])
    assert result["allocation_after_restart"]["version"] == result["store_version"]
    assert result["store_version"] >= result["allocation_before_kill"]["version"]
    assert "killed (SIGKILL)" in done.stderr and "restarting on the same store" in done.stderr


def test_durability_refuses_a_store_that_keeps_nothing():
    done = run_module("loadtest.durability", "--state", "memory://", timeout=60)
    assert done.returncode == 2
    assert "memory:// keeps nothing across a restart" in done.stderr


@pytest.mark.slow
def test_bench_state_measures_every_store(tmp_path):
    require_redis()
    done = run_module("loadtest.bench_state", "--seconds", "0.3", "--rate", "100",
                      "--trickle-per-s", "10", "--out", str(tmp_path), timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["stores"]) == {"memory", "sqlite", "redis"}
    for kind, store in results["stores"].items():
        for c in (1, 8):
            assert store[f"reports_c{c}"]["rows_per_s"] > 0, (kind, c)
            assert store[f"reports_c{c}"]["duplicates"] == 0, (kind, c)
        assert store["score"]["calls"] > 0, kind
    table = (tmp_path / "table.md").read_text()
    assert "python -m loadtest.bench_state --seconds 0.3" in table
    assert "<!-- loadtest.bench_state: begin -->" in table
    for kind in ("memory", "sqlite", "redis"):
        rows = [line for line in table.splitlines() if line.startswith(f"| {kind}:// |")]
        assert len(rows) == 2, (kind, rows)  # one in the ReportOutcomes table, one in Score's
        assert float(rows[0].split("|")[2]) > 0 and float(rows[0].split("|")[5]) > 0
