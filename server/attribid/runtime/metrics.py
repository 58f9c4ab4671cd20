"""Prometheus metrics, served over HTTP on their own port.

Each server owns a registry (no globals), so tests and several servers in
one process do not collide.

The metrics are updated on the hot path (once or twice per call), so they are
not prometheus_client's Counter/Histogram/Gauge, whose every ``inc``/``observe``
takes a lock and goes through several layers of Python. Ours are plain slotted
objects whose updates are one or two Python operations; one collector, registered
on the registry, turns their raw values into prometheus_client metric families at
scrape time. The exposition text is the same as prometheus_client's own classes
would print for the same updates (names, help, label names, bucket bounds and the
``_total``/``_created``/``_bucket``/``_count``/``_sum`` series).

Why no locks. Every update runs on the asyncio event loop's thread (the servicer,
the service and the batcher's ``on_batch`` callback, which the batcher calls on
the loop), so there is a single writer and a read-modify-write such as
``self.value += amount`` can never lose an update to another writer. The only
other thread is the HTTP exporter's, which only reads. Under CPython's GIL each
attribute or list-element store is whole: a reader sees the old or the new value,
never a torn one. It may see a histogram whose ``_sum`` is one observation behind
or ahead of its buckets, or a counter one update old; Prometheus tolerates that
(the next scrape is consistent again, and counters only need to be monotonic,
which they are). Buckets are copied in one C-level ``list(...)`` call, so within
one scrape they are cumulative-consistent and ``+Inf`` equals ``_count``; the
children dict is copied the same way, so a child added during a scrape cannot
break the iteration. Updating a metric from another thread *concurrently* with
the loop could lose an increment (never crash); do not.
"""
from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Protocol, TypeVar

import prometheus_client.metrics
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import INF, floatToGoString

# prometheus_client's own formatting of an `le` bound ("0.001", "1.0", "+Inf"); typed here
# because the library leaves it unannotated.
_format_bound: Callable[[float], str] = floatToGoString

# Buckets from 100 us to 1 s: Score answers in about a millisecond, so the
# default buckets (5 ms and up) would put every call in the first one.
_LATENCY_BUCKETS = (1e-4, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 7.5e-3,
                    1e-2, 2e-2, 5e-2, 0.1, 0.25, 0.5, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: longest campaign label value: with campaign ids at most --max-id-bytes long and at most
#: --max-campaigns campaigns a book, the label set of a per-campaign metric stays bounded
CAMPAIGN_LABEL_CHARS = 64


def campaign_label(campaign_id: str) -> str:
    """A campaign id as a label value: its first CAMPAIGN_LABEL_CHARS characters.

    >>> campaign_label("c1"), len(campaign_label("x" * 500))
    ('c1', 64)
    """
    return campaign_id[:CAMPAIGN_LABEL_CHARS]


def _use_created() -> bool:
    """Whether to export ``_created`` series, as prometheus_client's own metrics decide.

    It reads PROMETHEUS_DISABLE_CREATED_SERIES at import and keeps the answer in a
    module global that ``disable_created_metrics()`` flips; we follow that global so
    our output keeps matching theirs (default: exported).
    """
    return bool(getattr(prometheus_client.metrics, "_use_created", True))


class _Inc(Protocol):
    def __call__(self, amount: float = 1.0) -> None: ...


class _Observe(Protocol):
    def __call__(self, amount: float) -> None: ...


class _Set(Protocol):
    def __call__(self, value: float) -> None: ...


# ---------------------------------------------------------------- children
# One time series (one set of label values). Updates are a couple of bytecodes
# on slots; see the module docstring for why they need no lock.

class CounterChild:
    __slots__ = ("value", "created")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild:
    """Per-bucket (not cumulative) counts; ``bounds`` ends with +Inf, so every value has a bucket.

    Prometheus buckets are ``le``: a value counts in the first bucket whose bound is
    >= the value, which is exactly ``bisect_left`` on the sorted bounds (a value equal
    to a bound lands in that bound's bucket, as with prometheus_client's ``amount <=
    bound`` scan). One difference, for NaN only: prometheus_client counts it in no
    bucket, we count it in the first (bisect compares False both ways). Latencies and
    batch sizes are never NaN.
    """
    __slots__ = ("bounds", "counts", "sum", "created")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


# ---------------------------------------------------------------- families

C = TypeVar("C", CounterChild, GaugeChild, HistogramChild)


class _Family(Generic[C]):
    """A metric name with its label names and children, one per set of label values.

    A family without labels has exactly one child, created up front, whose update
    methods the subclasses bind onto the family itself (``metric.inc`` *is* the
    child's bound ``inc``), so ``metric.inc()`` costs no extra call.
    """

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames: tuple[str, ...] = tuple(labelnames)
        self._lookup: dict[tuple[object, ...], C] = {}  # as passed to labels(), for the fast path
        self._children: dict[tuple[str, ...], C] = {}  # by label values as strings, in creation order
        if not self.labelnames:
            self._children[()] = self._new_child()

    def _new_child(self) -> C:
        raise NotImplementedError

    def labels(self, *values: object) -> C:
        """The child for these label values (positional, in ``labelnames`` order), cached."""
        try:
            return self._lookup[values]
        except KeyError:
            return self._add(values)

    def _add(self, values: tuple[object, ...]) -> C:
        if not self.labelnames:
            raise ValueError(f"No label names were set when constructing {self.name}")
        if len(values) != len(self.labelnames):
            raise ValueError(f"Incorrect label count for {self.name}: "
                             f"expected {self.labelnames}, got {values!r}")
        key = tuple(str(v) for v in values)  # labels(1) and labels("1") are one series
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        self._lookup[values] = child
        return child

    def _unlabelled(self) -> C:
        return self._children[()]

    def _no_labels(self, *_args: object, **_kwargs: object) -> None:
        raise ValueError(f"{self.name} has labels {self.labelnames}: update it through .labels(...)")

    def _snapshot(self) -> list[tuple[dict[str, str], C]]:
        children = self._children.copy()  # one C call: safe against a concurrent insert
        return [(dict(zip(self.labelnames, key)), child) for key, child in children.items()]

    def describe(self) -> Metric:
        """The metric family without samples (lets the registry check names at registration)."""
        raise NotImplementedError

    def collect(self) -> Metric:
        raise NotImplementedError


class FastCounter(_Family[CounterChild]):
    inc: _Inc

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = ()) -> None:
        if name.endswith("_total"):  # as prometheus_client: the family name has no suffix
            name = name[:-len("_total")]
        super().__init__(name, documentation, labelnames)
        self.inc = self._no_labels if self.labelnames else self._unlabelled().inc

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def describe(self) -> Metric:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        created = _use_created()
        for labels, child in self._snapshot():
            family.add_sample(self.name + "_total", labels, child.value)
            if created:
                family.add_sample(self.name + "_created", labels, child.created)
        return family


class FastGauge(_Family[GaugeChild]):
    set: _Set
    inc: _Inc
    dec: _Inc

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = ()) -> None:
        super().__init__(name, documentation, labelnames)
        if self.labelnames:
            self.set = self.inc = self.dec = self._no_labels
        else:
            child = self._unlabelled()
            self.set, self.inc, self.dec = child.set, child.inc, child.dec

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def describe(self) -> Metric:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Metric:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, child in self._snapshot():
            family.add_sample(self.name, labels, child.value)
        return family


class FastHistogram(_Family[HistogramChild]):
    observe: _Observe

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (), *,
                 buckets: Iterable[float]) -> None:
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError("Buckets not in sorted order")
        if not bounds or bounds[-1] != INF:
            bounds.append(INF)
        if len(bounds) < 2:
            raise ValueError("Must have at least two buckets")
        self.bounds = tuple(bounds)
        self._le = tuple(_format_bound(b) for b in bounds)  # the `le` label values
        labelnames = tuple(labelnames)
        if "le" in labelnames:
            raise ValueError("'le' is reserved for histogram buckets")
        super().__init__(name, documentation, labelnames)
        self.observe = self._no_labels if self.labelnames else self._unlabelled().observe

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def describe(self) -> Metric:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Metric:
        # Sample order per child as prometheus_client: buckets, _count, _sum, _created.
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        created = _use_created()
        positive = self.bounds[0] >= 0  # prometheus_client drops _sum with negative buckets
        for labels, child in self._snapshot():
            counts = list(child.counts)  # one C call: a consistent copy of the buckets
            total = 0.0
            for le, n in zip(self._le, counts):
                total += n
                family.add_sample(self.name + "_bucket", {**labels, "le": le}, total)
            family.add_sample(self.name + "_count", labels, total)
            if positive:
                family.add_sample(self.name + "_sum", labels, child.sum)
            if created:
                family.add_sample(self.name + "_created", labels, child.created)
        return family


Family = FastCounter | FastGauge | FastHistogram


class FastCollector:
    """Exports a fixed list of our metrics through a prometheus_client registry, in order."""

    def __init__(self, metrics: Iterable[Family]) -> None:
        self.metrics = tuple(metrics)

    def describe(self) -> Iterable[Metric]:
        return [m.describe() for m in self.metrics]

    def collect(self) -> Iterable[Metric]:
        return [m.collect() for m in self.metrics]


@dataclass
class Metrics:
    registry: CollectorRegistry
    calls: FastCounter
    latency: FastHistogram
    inference: FastHistogram
    batch_size: FastHistogram
    fallbacks: FastCounter
    queue_depth: FastGauge
    outcomes: FastCounter
    conversions: FastCounter
    #: requests whose bytes are not a valid message of their method, by method
    undecodable: FastCounter
    #: refused calls by method and code, logged or not (the log keeps a few a second)
    refusals: FastCounter
    #: failed re-solves by campaign (campaign_label)
    resolve_failures: FastCounter
    #: allocation passes that failed as a whole, and restarts of the allocation loop
    loop_errors: FastCounter
    #: the campaign state store: reachable (1/0), this process holds the re-solve lease
    #: (1/0), the last log entry applied, and log entries that could not be applied
    state_available: FastGauge
    state_leader: FastGauge
    state_applied: FastGauge
    state_apply_failures: FastGauge

    @classmethod
    def create(cls) -> "Metrics":
        r = CollectorRegistry()
        m = cls(
            registry=r,
            calls=FastCounter("attribid_rpc_calls", "RPC calls by method and status code",
                              ["method", "code"]),
            latency=FastHistogram("attribid_rpc_latency_seconds", "RPC handling time by method",
                                  ["method"], buckets=_LATENCY_BUCKETS),
            inference=FastHistogram("attribid_inference_seconds",
                                    "featurize + onnxruntime + credit time per batch",
                                    buckets=_LATENCY_BUCKETS),
            batch_size=FastHistogram("attribid_batch_size", "journeys per onnxruntime run",
                                     buckets=_BATCH_BUCKETS),
            fallbacks=FastCounter("attribid_fallbacks", "responses from the heuristic fallback",
                                  ["reason"]),
            queue_depth=FastGauge("attribid_queue_depth", "calls waiting for inference"),
            outcomes=FastCounter("attribid_outcome_rows", "outcome rows counted"),
            conversions=FastCounter("attribid_conversions", "reported conversions counted"),
            undecodable=FastCounter("attribid_undecodable_requests",
                                    "requests whose bytes are not a valid message", ["method"]),
            refusals=FastCounter("attribid_refusals", "refused calls by method and status code, "
                                 "logged or not", ["method", "code"]),
            resolve_failures=FastCounter("attribid_resolve_failures",
                                         "failed campaign re-solves (the allocation is stale)",
                                         ["campaign"]),
            loop_errors=FastCounter("attribid_allocation_loop_errors",
                                    "allocation passes that failed whole, and loop restarts"),
            state_available=FastGauge("attribid_state_available",
                                      "1 while the campaign state store is reachable"),
            state_leader=FastGauge("attribid_state_leader",
                                   "1 while this process holds the re-solve lease"),
            state_applied=FastGauge("attribid_state_applied_seq",
                                    "sequence number of the last state log entry applied"),
            state_apply_failures=FastGauge("attribid_state_apply_failures",
                                           "state log entries that could not be applied"),
        )
        r.register(FastCollector([m.calls, m.latency, m.inference, m.batch_size,
                                  m.fallbacks, m.queue_depth, m.outcomes, m.conversions, m.undecodable,
                                  m.refusals, m.resolve_failures, m.loop_errors,
                                  m.state_available, m.state_leader, m.state_applied,
                                  m.state_apply_failures]))
        return m

    def serve(self, host: str, port: int) -> tuple[int, Callable[[], None]]:
        """Start the HTTP exporter; returns the bound port (0 picks one) and its stop function."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()

        return int(server.server_address[1]), stop
