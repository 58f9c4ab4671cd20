"""``loadtest.bench_conversions`` run as a user runs it: real servers on memory:// and SQLite.

Nothing here asserts a speed or a ratio (the machine is shared): only that every measurement
was taken, counted conversions and found no error.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest import bench_conversions as bc

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_conversions_measures_every_attribution_batch_and_store(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.bench_conversions", "--seconds", "0.15",
         "--score-seconds", "0.6", "--rate", "100", "--trickle-per-s", "10",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["stores"]) == {"memory", "sqlite"}
    expected = {f"{a}/{j}/b{b}/c{c}" for a in ("network", "last-click") for j in ("mix", "32")
                for b in (1, 50, 500) for c in (1, 4)}
    for kind, store in results["stores"].items():
        assert store["server_exit"] is None, kind  # still running when the load ended
        assert set(store["conversions"]) == expected, kind
        for name, run in store["conversions"].items():
            assert run["conversions_per_s"] > 0 and run["calls"] > 0, (kind, name)
            assert run["errors"] == {} and run["duplicates"] == 0 and run["short"] == 0, (
                kind, name, run)
            assert run["p99_ms"] >= run["p50_ms"] > 0, (kind, name)
        score = store["score"]
        assert score["alone"]["calls"] > 0 and score["trickle"]["calls"] > 0, kind
        assert score["trickle"]["batches_ok"] > 0, kind
        assert score["p99_ratio"] is not None and score["p99_ratio"] > 0, kind
    meta = results["meta"]
    assert meta["cores"] and meta["cpu"] and len(meta["load_before"]) == 3
    assert len(meta["load_after"]) == 3
    table = (tmp_path / "table.md").read_text()
    assert table.startswith(bc.BEGIN) and table.rstrip().endswith(bc.END)
    assert "python -m loadtest.bench_conversions --seconds 0.15" in table
    for kind in ("memory", "sqlite"):
        rows = [line for line in table.splitlines() if line.startswith(f"| {kind}:// |")]
        # 12 closed-loop rows (both attributions side by side) and one Score row
        assert len(rows) == 12 + 1, (kind, len(rows))


def test_batch_ids_are_prepended_to_one_body_and_parse_as_the_request():
    from attribid.v1 import attribution_pb2 as pb

    pool = bc.conversion_pool("mix", seed=3)[:4]
    body = bc.bodies(pool, "camp", 3)
    make = bc.Batches(body, "x" * 200)  # an id longer than one varint byte
    first, second = (pb.ReportConversionsRequest.FromString(make()) for _ in range(2))
    assert first.batch_id == "x" * 200 + "-1" and second.batch_id == "x" * 200 + "-2"
    assert first.campaign_id == "camp" and len(first.conversions) == 3
    assert first.conversions[0].timestamp_ms == first.conversions[0].journey[-1].timestamp_ms + 1000


def test_a_section_replaces_only_its_own(tmp_path):
    from loadtest import bench_state

    doc = tmp_path / "performance.md"
    doc.write_text(f"# top\n\n{bench_state.BEGIN}\nstate\n{bench_state.END}\n")
    bench_state.write_section(doc, f"{bc.BEGIN}\none\n{bc.END}", bc.BEGIN, bc.END)
    bench_state.write_section(doc, f"{bc.BEGIN}\ntwo\n{bc.END}", bc.BEGIN, bc.END)
    text = doc.read_text()
    assert "state" in text and "two" in text and "one" not in text
    assert text.count(bc.BEGIN) == 1
