"""loadtest.bench_batching runs as documented and reports both journey mixes."""
from __future__ import annotations

import orjson

from loadtest import bench_batching


def test_bench_batching_reports_both_mixes(tmp_path) -> None:
    assert bench_batching.main(["--batches", "6", "--out", str(tmp_path), "--cores", "0"]) == 0
    report = orjson.loads((tmp_path / "results.json").read_bytes())
    assert set(report["results"]) == {"Locust mix (1-64)", "all 32 touches"}
    for r in report["results"].values():
        assert r["batches"] == 6 and r["one_run_ms"] > 0 and r["planned_ms"] > 0
    assert report["results"]["all 32 touches"]["runs_per_batch"] == 1.0  # nothing to split
    assert "| Locust mix (1-64) |" in (tmp_path / "table.md").read_text()
