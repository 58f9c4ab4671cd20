"""Prometheus metrics, served over HTTP on their own port.

Each server owns a registry (no globals), so tests and several servers in
one process do not collide.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Buckets from 100 us to 1 s: Score answers in about a millisecond, so the
# default buckets (5 ms and up) would put every call in the first one.
_LATENCY_BUCKETS = (1e-4, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 7.5e-3,
                    1e-2, 2e-2, 5e-2, 0.1, 0.25, 0.5, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class Metrics:
    registry: CollectorRegistry
    calls: Counter
    latency: Histogram
    inference: Histogram
    batch_size: Histogram
    fallbacks: Counter
    queue_depth: Gauge
    outcomes: Counter

    @classmethod
    def create(cls) -> "Metrics":
        r = CollectorRegistry()
        return cls(
            registry=r,
            calls=Counter("attribid_rpc_calls", "RPC calls by method and status code",
                          ["method", "code"], registry=r),
            latency=Histogram("attribid_rpc_latency_seconds", "RPC handling time by method",
                              ["method"], buckets=_LATENCY_BUCKETS, registry=r),
            inference=Histogram("attribid_inference_seconds",
                                "featurize + onnxruntime + credit time per batch",
                                buckets=_LATENCY_BUCKETS, registry=r),
            batch_size=Histogram("attribid_batch_size", "journeys per onnxruntime run",
                                 buckets=_BATCH_BUCKETS, registry=r),
            fallbacks=Counter("attribid_fallbacks", "responses from the heuristic fallback",
                              ["reason"], registry=r),
            queue_depth=Gauge("attribid_queue_depth", "calls waiting for inference", registry=r),
            outcomes=Counter("attribid_outcome_rows", "outcome rows counted", registry=r),
        )

    def serve(self, host: str, port: int) -> tuple[int, Callable[[], None]]:
        """Start the HTTP exporter; returns the bound port (0 picks one) and its stop function."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()

        return int(server.server_address[1]), stop
