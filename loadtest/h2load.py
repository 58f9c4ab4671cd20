"""A second load generator, in C: nghttp2's h2load sending one gRPC Score message over and over.

It checks that the Python generator (``driver.py``) is not what limits a server:
h2load spends a few microseconds per call where grpc.aio spends hundreds. It
cannot read gRPC trailers, so a call counts as done on HTTP 200; the benchmark
reads the server's own per-status call counters to confirm the calls succeeded.
Optional: ``apt-get install nghttp2-client``.

>>> grpc_frame(b"ab")
b'\\x00\\x00\\x00\\x00\\x02ab'
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np


def available() -> bool:
    """Whether h2load is on PATH."""
    return shutil.which("h2load") is not None


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC length-prefixed message."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def run(address: str, method: str, message: bytes, workdir: Path, *, clients: int,
        streams: int, duration: float, warmup: float, cores: str | None) -> dict[str, Any]:
    """Closed loop with ``clients`` connections x ``streams`` calls in flight each."""
    # h2load takes whole seconds.
    duration, warmup = max(round(duration), 1), max(round(warmup), 1)
    body, log = workdir / "h2load-body.bin", workdir / "h2load.log"
    body.write_bytes(grpc_frame(message))
    log.unlink(missing_ok=True)  # h2load appends to an existing log
    cmd = ["h2load", "-c", str(clients), "-m", str(streams), "-D", str(duration),
           f"--warm-up-time={warmup}", "-d", str(body), "-H", "content-type: application/grpc",
           "-H", "te: trailers", f"--log-file={log}", f"http://{address}{method}"]
    if cores:
        cmd = ["taskset", "-c", cores, *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + warmup + 60)
    if done.returncode != 0:
        raise RuntimeError(f"h2load failed: {done.stderr[-1000:] or done.stdout[-1000:]}")
    return summarize(done.stdout, log.read_text(), clients * streams)


def summarize(stdout: str, log: str, level: int) -> dict[str, Any]:
    """Throughput from h2load's summary; percentiles from its per-request log.

    The log holds the measured period only (h2load does not log warm-up calls).

    >>> out = "finished in 1.00s, 100.50 req/s, 1KB/s\\nstatus codes: 2 2xx, 0 3xx, 0 4xx, 1 5xx"
    >>> r = summarize(out, "1000000\\t200\\t500\\n3000000\\t200\\t700\\n", 1)
    >>> r["throughput"], r["p50"], r["ok"], r["non_2xx"]
    (100.5, 0.6, 2, 1)
    """
    rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", stdout)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", stdout)
    rows = np.array([[int(x) for x in line.split()[:3]] for line in log.splitlines() if line],
                    dtype=np.int64).reshape(-1, 3)
    lat = np.sort(rows[rows[:, 1] == 200, 2]) / 1000.0
    pct = (np.percentile(lat, [50, 90, 99, 99.9]).tolist() if lat.size
           else [float("nan")] * 4)
    return {"mode": "closed", "level": float(level), "generator": "h2load",
            "throughput": float(rate.group(1)) if rate else 0.0, "ok": int(lat.size),
            "non_2xx": sum(int(c) for c in codes.groups()[1:]) if codes else 0,
            "p50": pct[0], "p90": pct[1], "p99": pct[2], "p999": pct[3]}
