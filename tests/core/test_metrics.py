"""The lock-free metrics and their exposition, against a real prometheus_client registry.

The reference for "same output as before" is prometheus_client's own
Counter/Histogram/Gauge, built here with the names, help and buckets
server/metrics.py used before it had its own classes.
"""
from __future__ import annotations

import math
import random
import re
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from attribid.runtime.metrics import (_BATCH_BUCKETS, _LATENCY_BUCKETS, FastCounter, FastGauge,
                              FastHistogram, Metrics)


@dataclass
class Reference:
    """The metrics as prometheus_client's classes, on their own registry."""
    registry: CollectorRegistry
    calls: Counter
    latency: Histogram
    inference: Histogram
    batch_size: Histogram
    fallbacks: Counter
    queue_depth: Gauge
    outcomes: Counter
    conversions: Counter
    undecodable: Counter
    refusals: Counter
    resolve_failures: Counter
    loop_errors: Counter
    state_available: Gauge
    state_leader: Gauge
    state_applied: Gauge
    state_apply_failures: Gauge

    @classmethod
    def create(cls) -> "Reference":
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
            conversions=Counter("attribid_conversions", "reported conversions counted",
                                registry=r),
            undecodable=Counter("attribid_undecodable_requests",
                                "requests whose bytes are not a valid message", ["method"],
                                registry=r),
            refusals=Counter("attribid_refusals", "refused calls by method and status code, "
                             "logged or not", ["method", "code"], registry=r),
            resolve_failures=Counter("attribid_resolve_failures",
                                     "failed campaign re-solves (the allocation is stale)",
                                     ["campaign"], registry=r),
            loop_errors=Counter("attribid_allocation_loop_errors",
                                "allocation passes that failed whole, and loop restarts",
                                registry=r),
            state_available=Gauge("attribid_state_available",
                                  "1 while the campaign state store is reachable", registry=r),
            state_leader=Gauge("attribid_state_leader",
                               "1 while this process holds the re-solve lease", registry=r),
            state_applied=Gauge("attribid_state_applied_seq",
                                "sequence number of the last state log entry applied", registry=r),
            state_apply_failures=Gauge("attribid_state_apply_failures",
                                       "state log entries that could not be applied", registry=r),
        )


def text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def value(body: str, series: str) -> float:
    """The value of the one line for ``series`` (name with its labels, as printed)."""
    found = [line.rsplit(" ", 1)[1] for line in body.splitlines() if line.split(" ")[0] == series]
    assert len(found) == 1, (series, found)
    return float(found[0])


_CREATED = re.compile(r"^(\S+_created(?:\{.*\})?) \S+$")


def without_created_values(body: str) -> list[str]:
    """The exposition lines with each ``_created`` sample's value (a timestamp) blanked.

    ``_created`` series are kept (name and labels must match), and so are all
    ``# HELP``/``# TYPE`` lines: none of them is allowed to differ.
    """
    return [_CREATED.sub(r"\1 <created>", line) for line in body.splitlines()]


def apply_updates(m: Any, rng: random.Random) -> None:
    """One sequence of updates, through the call-site API both implementations share."""
    methods = ["Score", "RecordOutcomes", "Health"]
    codes = ["OK", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"]
    reasons = ["deadline", "overloaded", 'odd "quoted" \\ reason\nwith newline', "ünïcode"]
    latency_points = list(_LATENCY_BUCKETS) + [0.0, 2.0, 1e-5, 0.0012345, 0.33]
    for i in range(400):
        method = rng.choice(methods)
        m.calls.labels(method, rng.choice(codes)).inc()
        m.latency.labels(method).observe(rng.choice(latency_points) if i % 3 else rng.expovariate(800.0))
        if i % 4 == 0:
            m.inference.observe(rng.choice(latency_points))
            m.batch_size.observe(rng.choice([1, 2, 3, 4, 7, 8, 64, 256, 257, 1000]))
        if i % 7 == 0:
            m.fallbacks.labels(rng.choice(reasons)).inc()
        if i % 5 == 0:
            m.queue_depth.set(rng.randrange(0, 50))
        if i % 11 == 0:
            m.outcomes.inc(rng.randrange(0, 30))
            m.conversions.inc(rng.randrange(0, 30))
        if i % 13 == 0:
            m.refusals.labels(method, rng.choice(codes)).inc()
            m.resolve_failures.labels(rng.choice(["", "c1", "ünïcode"])).inc()
            m.loop_errors.inc()
            m.state_available.set(i % 2)
            m.state_leader.set(1 - i % 2)
            m.state_applied.set(i * 1000)
            m.state_apply_failures.set(i // 13)
    m.calls.labels("Score", "OK").inc(2.5)  # a fractional amount keeps float sums comparable


# ---------------------------------------------------------------- counters and gauges

def test_counter_children_and_unlabelled_counter_values() -> None:
    m = Metrics.create()
    for _ in range(3):
        m.calls.labels("Score", "OK").inc()
    m.calls.labels("Score", "INVALID_ARGUMENT").inc()
    m.calls.labels("RecordOutcomes", "OK").inc(4)
    m.fallbacks.labels("deadline").inc()
    m.outcomes.inc(7)
    m.outcomes.inc()
    body = text(m.registry)
    assert 'attribid_rpc_calls_total{code="OK",method="Score"} 3.0' in body.splitlines()
    assert value(body, 'attribid_rpc_calls_total{code="INVALID_ARGUMENT",method="Score"}') == 1.0
    assert value(body, 'attribid_rpc_calls_total{code="OK",method="RecordOutcomes"}') == 4.0
    assert value(body, 'attribid_fallbacks_total{reason="deadline"}') == 1.0
    assert value(body, "attribid_outcome_rows_total") == 8.0
    created = value(body, 'attribid_rpc_calls_created{code="OK",method="Score"}')
    assert abs(created - time.time()) < 60


def test_gauge_set_inc_dec() -> None:
    m = Metrics.create()
    assert value(text(m.registry), "attribid_queue_depth") == 0.0
    m.queue_depth.set(12)
    assert value(text(m.registry), "attribid_queue_depth") == 12.0
    m.queue_depth.inc(3)
    m.queue_depth.dec()
    assert value(text(m.registry), "attribid_queue_depth") == 14.0
    labelled = FastGauge("g", "labelled gauge", ["pool"])
    labelled.labels("a").set(2.5)
    assert labelled.labels("a").value == 2.5


def test_labels_returns_one_cached_child_per_series() -> None:
    c = FastCounter("c", "help", ["a", "b"])
    child = c.labels("x", "y")
    assert c.labels("x", "y") is child
    assert c.labels("x", 1) is c.labels("x", "1")  # label values are strings, as in prometheus_client
    with pytest.raises(ValueError):
        c.labels("x")
    with pytest.raises(ValueError):
        c.inc()  # a labelled counter is updated through its children
    with pytest.raises(ValueError):
        FastCounter("u", "help").labels("x")
    with pytest.raises(ValueError):
        child.inc(-1)
    h = FastHistogram("h", "help", ["m"], buckets=(1, 2))
    with pytest.raises(ValueError):
        h.observe(1.0)
    with pytest.raises(ValueError):
        FastHistogram("h", "help", buckets=(2, 1))


def test_registry_knows_the_names_so_a_clash_is_refused() -> None:
    m = Metrics.create()
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Counter("attribid_rpc_calls", "again", registry=m.registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Gauge("attribid_batch_size_bucket", "clashes with a histogram series", registry=m.registry)


# ---------------------------------------------------------------- histograms

def test_histogram_value_on_a_bound_counts_in_that_bucket() -> None:
    """Buckets are `le`: a value equal to a bound is in that bound's bucket, not the next."""
    m = Metrics.create()
    for bound in _BATCH_BUCKETS:
        m.batch_size.observe(bound)
    body = text(m.registry)
    for i, bound in enumerate(_BATCH_BUCKETS):
        assert value(body, f'attribid_batch_size_bucket{{le="{float(bound)}"}}') == i + 1
    assert value(body, 'attribid_batch_size_bucket{le="+Inf"}') == len(_BATCH_BUCKETS)

    m.latency.labels("Score").observe(1e-3)
    m.latency.labels("Score").observe(math.nextafter(1e-3, 1.0))  # just above: the next bucket
    body = text(m.registry)
    assert value(body, 'attribid_rpc_latency_seconds_bucket{le="0.00075",method="Score"}') == 0.0
    assert value(body, 'attribid_rpc_latency_seconds_bucket{le="0.001",method="Score"}') == 1.0
    assert value(body, 'attribid_rpc_latency_seconds_bucket{le="0.0015",method="Score"}') == 2.0


def test_histogram_above_the_top_bound_is_only_in_inf() -> None:
    m = Metrics.create()
    m.inference.observe(1.5)
    m.inference.observe(math.inf)
    body = text(m.registry)
    for bound in _LATENCY_BUCKETS:
        assert value(body, f'attribid_inference_seconds_bucket{{le="{bound}"}}') == 0.0
    assert value(body, 'attribid_inference_seconds_bucket{le="+Inf"}') == 2.0
    assert value(body, "attribid_inference_seconds_count") == 2.0


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    m = Metrics.create()
    observed = [3e-4, 3e-4, 0.004, 0.04, 0.9, 7.0, 0.0]
    for s in observed:
        m.latency.labels("Score").observe(s)
    m.latency.labels("Health").observe(0.2)
    body = text(m.registry)
    previous = -1.0
    for bound in (*_LATENCY_BUCKETS, math.inf):
        le = "+Inf" if bound == math.inf else str(bound)
        got = value(body, f'attribid_rpc_latency_seconds_bucket{{le="{le}",method="Score"}}')
        assert got == sum(1 for s in observed if s <= bound)
        assert got >= previous
        previous = got
    assert value(body, 'attribid_rpc_latency_seconds_count{method="Score"}') == len(observed)
    assert value(body, 'attribid_rpc_latency_seconds_sum{method="Score"}') == pytest.approx(sum(observed))
    assert value(body, 'attribid_rpc_latency_seconds_count{method="Health"}') == 1.0
    assert value(body, 'attribid_rpc_latency_seconds_sum{method="Health"}') == 0.2


# ---------------------------------------------------------------- same text as prometheus_client

def test_exposition_is_the_same_as_prometheus_clients_for_the_same_updates() -> None:
    ours, theirs = Metrics.create(), Reference.create()
    # Before any update: HELP/TYPE of labelled metrics with no series, zeroed unlabelled ones.
    assert without_created_values(text(ours.registry)) == without_created_values(text(theirs.registry))
    apply_updates(ours, random.Random(7))
    apply_updates(theirs, random.Random(7))
    mine, reference = text(ours.registry), text(theirs.registry)
    assert "_created" in reference  # the comparison covers those series too (values aside)
    assert without_created_values(mine) == without_created_values(reference)


def test_exposition_is_the_same_with_created_series_disabled() -> None:
    prometheus_client.disable_created_metrics()
    try:
        ours, theirs = Metrics.create(), Reference.create()
        apply_updates(ours, random.Random(11))
        apply_updates(theirs, random.Random(11))
        mine, reference = text(ours.registry), text(theirs.registry)
    finally:
        prometheus_client.enable_created_metrics()
    assert "_created" not in reference
    assert mine.splitlines() == reference.splitlines()


# ---------------------------------------------------------------- scraping while updating

def test_scrapes_stay_consistent_while_the_writer_runs() -> None:
    """A scrape on another thread while the writer adds series and observations: no error,
    buckets cumulative, +Inf equal to _count (the buckets are copied in one step)."""
    m = Metrics.create()
    stop = threading.Event()
    errors: list[BaseException] = []
    scrapes = 0

    def scrape() -> None:
        nonlocal scrapes
        try:
            while not stop.is_set():
                body = text(m.registry)
                scrapes += 1
                inf = [float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                       if line.startswith('attribid_rpc_latency_seconds_bucket{le="+Inf"')]
                count = [float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                         if line.startswith("attribid_rpc_latency_seconds_count")]
                assert inf == count
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    reader = threading.Thread(target=scrape)
    reader.start()
    try:
        deadline = time.monotonic() + 0.3
        i = 0
        while time.monotonic() < deadline or scrapes < 3:
            m.latency.labels(f"m{i % 200}").observe((i % 50) * 1e-4)
            m.calls.labels(f"m{i % 200}", "OK").inc()
            i += 1
    finally:
        stop.set()
        reader.join(5)
    assert not errors, errors[0]


# ---------------------------------------------------------------- HTTP exporter

def test_http_exporter_serves_the_text_and_stops() -> None:
    m = Metrics.create()
    m.calls.labels("Score", "OK").inc()
    m.batch_size.observe(4)
    port, stop = m.serve("127.0.0.1", 0)
    try:
        assert port > 0
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        stop()
    assert value(body, 'attribid_rpc_calls_total{code="OK",method="Score"}') == 1.0
    assert value(body, 'attribid_batch_size_bucket{le="4.0"}') == 1.0
    assert "attribid_inference_seconds_bucket" in body
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
