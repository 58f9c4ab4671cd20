"""The server: lifecycle, health, reflection, signals (`attribid serve` runs it).

Start order: open the state store; bind and answer health NOT_SERVING at once; load the
model, compile and warm every kernel and replay the store's campaigns in a thread; only
then report SERVING.
Stop order: NOT_SERVING, stop accepting, drain in-flight calls within the
grace period, flush the batcher, stop the allocation loop, release the model.
Reload (SIGHUP, ``AttribidServer.reload``): the reload callbacks, then the model, swapped
in between batches while health stays SERVING.
"""
from __future__ import annotations

import asyncio
import gc
import inspect
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from attribid.runtime import group, logs
from attribid.campaigns.loop import book_limits, run_allocation_loop
from attribid.runtime.metrics import Metrics
from attribid.api import auth, reflection
from attribid.api import handlers
from attribid.api.servicer import AttributionServicer
from attribid.runtime.settings import Settings
from attribid.runtime.spin import IdleSpinners
from attribid.state.store import Store, StoreError, open_store
from attribid.v1 import attribution_pb2 as pb

if TYPE_CHECKING:  # imported lazily at run time: the server binds before loading them
    from attribid.models.campaign.tenants import TenantBooks
    from attribid.core.service import ModelReload, ScoringService
    from attribid.state.replica import CampaignState

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Attribution"].full_name
#: the health service that tells whether the campaign state store is reachable
STATE_SERVICE = "attribid.state"


@dataclass
class Core:
    """Everything a call needs once the server is warm."""

    service: "ScoringService"
    #: every tenant's campaigns (one tenant without tokens)
    books: "TenantBooks"
    channels: tuple[str, ...]
    #: the books kept in step with the state store: every campaign write goes through it
    state: "CampaignState"

    @property
    def model_version(self) -> str:
        """The model serving now (a reload changes it; each response names its own)."""
        return self.service.scorer.model.info.version


def new_start_id() -> str:
    """A fresh id for one start of a server or a group of workers (12 hex digits).

    >>> len(new_start_id()), new_start_id() != new_start_id()
    (12, True)
    """
    return uuid.uuid4().hex[:12]


class AttribidServer:
    """``await start()`` returns once bound; ``await wait_ready()``; ``await stop()``."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 start_id: str = "") -> None:
        self.settings = settings
        #: names this start in the "listening" and "serving" lines; workers share their group's
        self.start_id = start_id or new_start_id()
        #: monotonic seconds; ``stop()`` measures its one deadline on it
        self.clock = clock
        self.port: int | None = None
        self.metrics_port: int | None = None
        self.metrics = Metrics.create()
        self.core: Core | None = None
        self._server: grpc.aio.Server | None = None
        self._servicer: AttributionServicer | None = None
        self._health = health.aio.HealthServicer()
        self._warm_task: asyncio.Task[None] | None = None
        self._book_task: asyncio.Task[None] | None = None
        #: the token file's table (None = no tokens) and the task that re-reads it on change
        self.tokens: auth.TokenTable | None = None
        self._tokens_task: asyncio.Task[None] | None = None
        self._stop_metrics: Callable[[], None] | None = None
        self._spinners: IdleSpinners | None = None
        self._reload_callbacks: list[Callable[[], object]] = []
        self._reloads: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._store: Store | None = None
        self._state_health: str | None = None
        self._log = logs.get()

    async def start(self) -> None:
        s = self.settings
        # Refused before anything binds: exposing the API unprotected, an unusable token
        # file or certificate (StartupError, naming the setting).
        auth.check_binding(s)
        credentials = auth.server_credentials(s)
        self.tokens = auth.TokenTable(s.auth_tokens) if s.auth_tokens else None
        # A store that cannot be opened (bad URL, unreachable, newer schema) stops the start
        # here, before anything binds; its contents are read while warming up.
        self._store = open_store(s.state)
        options = [
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            # shared by a group's workers, and by a group started beside another (--take-over)
            ("grpc.so_reuseport", 1 if s.workers > 1 or s.take_over else 0),
            # Receive windows stay at HTTP/2's 64 KiB: probing would grow them by megabytes
            # for a stream the server has stopped reading (attribid.api.servicer.STREAM_WINDOW).
            ("grpc.http2.bdp_probe", 0),
        ]
        if s.max_pending:
            # gRPC refuses calls past these in its own threads, before Python reads them:
            # the only refusal cheap enough to keep up with twice the calls we can serve.
            options += [("grpc.server.max_pending_requests", s.max_pending),
                        ("grpc.server.max_pending_requests_hard_limit", 4 * s.max_pending)]
        # Health and reflection check tokens in an interceptor; Attribution methods themselves.
        interceptors = None if self.tokens is None else [
            auth.AuthInterceptor(self.tokens, self._count_refusal)]
        server = grpc.aio.server(options=options, interceptors=interceptors)
        self._servicer = AttributionServicer(self, self.metrics, s.log_calls, self.tokens,
                                             refusal_log_per_s=s.refusal_log_per_s,
                                             max_id_bytes=s.max_id_bytes,
                                             writer_niceness=s.writer_niceness)
        # Undecodable request bytes are INVALID_ARGUMENT, never UNKNOWN (attribid.api.handlers).
        handlers.register(self._servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable(server, (SERVICE_NAME,
                                   health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
        await self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        try:
            self.port = (server.add_insecure_port(s.address) if credentials is None
                         else server.add_secure_port(s.address, credentials))
        except RuntimeError:  # what grpc raises when the bind fails (older versions return 0)
            self.port = 0
        if self.port == 0:
            raise OSError(f"address: could not bind {s.address}")
        await server.start()
        self._server = server
        if self.tokens is not None:
            tokens = self.tokens
            self._tokens_task = asyncio.get_running_loop().create_task(
                tokens.watch(), name="attribid-tokens")
            self.add_reload_callback(tokens.reread)  # SIGHUP: the tokens, then the model
        if s.metrics_port >= 0:
            self.metrics_port, self._stop_metrics = self.metrics.serve(s.host, s.metrics_port)
        self._log.info("listening", extra={"address": f"{s.host}:{self.port}",
                                           "port": self.port, "metrics_port": self.metrics_port,
                                           "pid": os.getpid(), "start_id": self.start_id,
                                           "tls": credentials is not None,
                                           "mutual_tls": bool(s.tls_client_ca),
                                           "tokens": self.tokens is not None})
        self._warm_task = asyncio.get_running_loop().create_task(self._warm(), name="attribid-warm")

    async def _warm(self) -> None:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        core = await loop.run_in_executor(None, _build_core, self.settings, self.metrics,
                                          self._store)
        if self.settings.spin_idle:
            spinners = IdleSpinners()
            await loop.run_in_executor(None, spinners.calibrate)
            spinners.start()
            self._spinners = spinners
        # What start-up built (model, kernels, gRPC: a hundred thousand objects) lives as long
        # as the server: kept out of the collector's scans, a full collection stops every
        # thread for well under a millisecond instead of a hundred.
        gc.freeze()
        core.service.start()
        self._book_task = loop.create_task(
            run_allocation_loop(core.state, self.metrics, on_pass=self._state_passed),
            name="attribid-allocation")
        self.core = core
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        await self._state_passed()
        self._log.info("serving", extra={"model_version": core.model_version,
                                         "channels": list(core.channels),
                                         "pid": os.getpid(), "start_id": self.start_id,
                                         "warm_seconds": round(time.perf_counter() - started, 3)})

    async def _state_passed(self) -> None:
        """After each allocation pass: the state store's standing in metrics and in health
        (service ``STATE_SERVICE``: NOT_SERVING while the store is unreachable, when Score
        answers from the local copy and campaign writes get UNAVAILABLE)."""
        core = self.core
        if core is None:
            return
        status = core.state.status
        self.metrics.state_available.set(1.0 if status.available else 0.0)
        self.metrics.state_leader.set(1.0 if status.leader else 0.0)
        self.metrics.state_applied.set(float(status.applied))
        self.metrics.state_apply_failures.set(float(status.apply_failures))
        want = "SERVING" if status.available else "NOT_SERVING"
        if want != self._state_health:
            self._state_health = want
            await self._health.set(STATE_SERVICE,
                                   health_pb2.HealthCheckResponse.ServingStatus.Value(want))

    @property
    def ready_task(self) -> "asyncio.Task[None]":
        if self._warm_task is None:
            raise RuntimeError("start() first")
        return self._warm_task

    async def wait_ready(self) -> None:
        if self._warm_task is None:
            raise RuntimeError("start() first")
        await asyncio.shield(self._warm_task)

    def _count_refusal(self, method: str, code: grpc.StatusCode) -> None:
        self.metrics.calls.labels(method, code.name).inc()

    def add_reload_callback(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` (awaited when it returns an awaitable) on every ``reload``."""
        self._reload_callbacks.append(callback)

    async def reload(self, model_path: str = "") -> "ModelReload | None":
        """Run the reload callbacks, then reload the model (``ScoringService.reload``).

        Callbacks come first: they are quick, and none waits on a model's warm-up. Returns
        None when no model is serving yet (the one loading is read from its file as it is).
        """
        for callback in list(self._reload_callbacks):
            try:
                out = callback()
                if inspect.isawaitable(out):
                    await out
            except Exception as exc:  # one failing callback keeps neither the rest nor the model
                self._log.error("reload callback failed", extra={
                    "callback": getattr(callback, "__qualname__", repr(callback)),
                    "detail": f"{type(exc).__name__}: {exc}"[:500]})
        core = self.core
        if core is None:
            self._log.warning("model reload skipped", extra={"detail": "not serving yet"})
            return None
        return await core.service.reload(model_path)

    def reload_soon(self) -> None:
        """Start ``reload()`` in the background (what SIGHUP does); ignored while stopping."""
        if self._stopping:
            self._log.warning("reload skipped", extra={"detail": "stopping"})
            return
        task = asyncio.get_running_loop().create_task(self._reload_logged(), name="attribid-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception as exc:  # nothing awaits this task: its failure must not pass unseen
            self._log.error("reload failed", exc_info=exc)

    async def stop(self, grace: float | None = None) -> None:
        """Drain and stop within ``grace`` seconds in all (default ``settings.grace_s``).

        One deadline bounds every step: each gets the time the steps before it left.
        """
        grace = self.settings.grace_s if grace is None else grace
        started = self.clock()
        deadline = started + grace

        def remaining() -> float:
            return max(0.0, deadline - self.clock())

        self._stopping = True
        await self._health.enter_graceful_shutdown()
        for task in list(self._reloads):  # a model not yet swapped in is not worth waiting for
            task.cancel()
        await asyncio.gather(*self._reloads, return_exceptions=True)
        if self._server is not None:
            await self._server.stop(remaining())
        if self._servicer is not None:
            self._servicer.close()
        if self._warm_task is not None and not self._warm_task.done():
            self._warm_task.cancel()
        cancelled = 0
        if self.core is not None:
            cancelled = await self.core.service.batcher.close(timeout=remaining())
        if self._tokens_task is not None:
            self._tokens_task.cancel()
            await asyncio.gather(self._tokens_task, return_exceptions=True)
        if self._book_task is not None:
            self._book_task.cancel()
            await asyncio.gather(self._book_task, return_exceptions=True)
        if self.core is not None:
            # The lease goes at once (another process re-solves without waiting it out).
            await asyncio.get_running_loop().run_in_executor(None, self.core.state.close)
        elif self._store is not None:
            self._store.close()
        if self._stop_metrics is not None:
            self._stop_metrics()
        if self._spinners is not None:
            self._spinners.stop(timeout=remaining())
        self.core = None
        self._log.info("stopped", extra={"seconds": round(self.clock() - started, 3),
                                         "cancelled": cancelled})

    async def __aenter__(self) -> "AttribidServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _build_core(settings: Settings, metrics: Metrics, store: "Store | None" = None) -> Core:
    """Load the model, build the pipeline, warm every kernel, and recover the campaigns
    from the state store (``settings.state`` unless given): runs in a thread."""
    from attribid.models.campaign.tenants import TenantBooks
    from attribid.state.replica import CampaignState
    from attribid.models.onnx.runtime import load_model
    from attribid.core.scoring import Scorer
    from attribid.core.service import ScoringService

    model = load_model(settings.model_path, settings.intra_op_threads,
                       prefer_int8=not settings.model_float32)
    scorer = Scorer(model, settings.max_batch, settings.max_journey)
    scorer.warm(time.time())
    # One book per tenant, each with the same options (and so the same limits).
    books = TenantBooks(model.info.channels, resolve_period_s=settings.resolve_period_s,
                        limits=book_limits(settings))
    books.warm()
    service = ScoringService(settings, scorer, books, metrics)
    service.warm()
    state = CampaignState(store or open_store(settings.state), books,
                          batch_id_retention_s=settings.batch_id_retention_s,
                          max_batch_ids=settings.max_batch_ids, lease_s=settings.state_lease_s)
    started = time.perf_counter()
    events = state.recover()
    logs.get().info("state recovered", extra={
        "state": state.store.url, "events": events, "tenants": len(books.tenants),
        "campaigns": sum(len(books.of(t).campaign_ids()) for t in books.tenants),
        "seconds": round(time.perf_counter() - started, 3)})
    return Core(service=service, books=books, channels=model.info.channels, state=state)


async def serve(settings: Settings, start_id: str = "") -> int:
    """Run until SIGTERM/SIGINT: the first drains within the grace period, a second forces exit.

    SIGHUP reloads (``AttribidServer.reload``) and goes on serving.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    log = logs.get()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second signal: exiting now", extra={"signal": signal.Signals(signum).name})
            # Prompt: no waiting on the drain or on gRPC's threads; but every log line is out.
            logs.flush()
            os._exit(1)
        log.info("draining", extra={"signal": signal.Signals(signum).name})
        stop.set()

    server = AttribidServer(settings, start_id=start_id)

    def on_reload() -> None:
        log.info("reloading", extra={"signal": "SIGHUP"})
        server.reload_soon()

    # Handlers set with signal.signal (Python's or a caller's) come back when serving ends.
    previous = {sig: signal.getsignal(sig) for sig in (*signals, signal.SIGHUP)}
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, on_reload)
    try:
        try:
            await server.start()
        except (OSError, auth.StartupError, StoreError) as exc:
            log.error("cannot start", extra={"detail": str(exc)})
            return 1
        stopping = loop.create_task(stop.wait())
        await asyncio.wait([stopping, server.ready_task], return_when=asyncio.FIRST_COMPLETED)
        failure = None
        if server.ready_task.done() and not server.ready_task.cancelled():
            failure = server.ready_task.exception()
        if failure is None:
            await stopping
        else:
            stopping.cancel()
            log.error("cannot serve", extra={"detail": f"{type(failure).__name__}: {failure}"})
        await server.stop()
        return 0 if failure is None else 1
    finally:
        for sig in previous:
            loop.remove_signal_handler(sig)
            handler = previous[sig]
            if handler is not None:  # None: set outside Python, nothing to give back
                signal.signal(sig, handler)


def run_one(settings: Settings, start_id: str = "") -> int:
    """Serve in this process on uvloop until a signal; returns the exit code."""
    import uvloop

    logs.configure(settings.log_level)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(settings, start_id))


def _worker(settings: Settings, index: int, start_id: str, parent: int) -> None:
    # A SIGHUP forwarded before serve() takes it over must not end the worker.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log = logs.configure(settings.log_level)
    try:
        # No orphan keeps the port: a worker drains and exits when its parent dies.
        how = group.die_with_parent(parent, settings.grace_s)
    except group.ParentGone as exc:
        log.error("cannot start", extra={"detail": str(exc), "pid": os.getpid()})
        sys.exit(1)
    log.info("worker started", extra={"index": index, "pid": os.getpid(), "parent_pid": parent,
                                      "start_id": start_id, "dies_with_parent": how})
    if settings.metrics_port > 0:
        settings = settings.replace(metrics_port=settings.metrics_port + index)
    sys.exit(run_one(settings, start_id))


def run_workers(settings: Settings) -> int:
    """Several processes on one port (SO_REUSEPORT), started before any gRPC object exists.

    Refused (exit 1, one "cannot start" line naming the address) when a process already
    listens on the address, unless ``settings.take_over`` starts this group beside it.
    """
    import multiprocessing

    log = logs.get()
    held = None if settings.take_over else group.holder(settings.host, settings.port)
    if held is not None:
        log.error("cannot start", extra={
            "address": held, "detail": f"address: {held} is already in use by another "
            "process (another attribid group?); --take-over starts a group beside it "
            "(a rolling restart)"})
        return 1
    ctx = multiprocessing.get_context("spawn")
    start_id = new_start_id()  # one for the group: a rolling restart tells groups apart by it
    procs = [ctx.Process(target=_worker, args=(settings, i, start_id, os.getpid()),
                         name=f"attribid-{i}")
             for i in range(settings.workers)]
    with group.spawning():
        for p in procs:
            p.start()

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signum)

    previous = {sig: signal.signal(sig, forward)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        for p in procs:
            p.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max((p.exitcode or 0) for p in procs)
