"""The gRPC servicer: converts messages, hands on to the core, maps errors to status codes."""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Callable

import grpc

from attribid.api import convert
from attribid.runtime import logs
from attribid.models.errors import InvalidArgument, RequestError
from attribid.runtime.metrics import Metrics
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc

#: ScoreStream messages in flight per stream before reading pauses (backpressure)
STREAM_WINDOW = 256


class _Call:
    """One call's outcome, recorded when its ``with`` block ends.

    A plain context manager, not ``contextlib.contextmanager``: that builds a
    generator and a wrapper object per call, on the event loop's thread.
    """

    __slots__ = ("code", "_servicer", "_method", "_start")

    def __init__(self, servicer: "AttributionServicer", method: str) -> None:
        self.code = grpc.StatusCode.OK
        self._servicer = servicer
        self._method = method

    def __enter__(self) -> "_Call":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._servicer._record(self._method, self.code, time.perf_counter() - self._start)


class AttributionServicer(pb_grpc.AttributionServicer):
    """``core()`` returns the ready core (a ``attribid.runtime.server.Core``) or None while warming up."""

    def __init__(self, core: Callable[[], object | None], metrics: Metrics, log_calls: bool) -> None:
        self._core = core
        self._metrics = metrics
        self._log = logs.get()
        self._log_calls = log_calls

    def _observe(self, method: str) -> _Call:
        return _Call(self, method)

    def _record(self, method: str, code: grpc.StatusCode, elapsed: float) -> None:
        # labels() caches each child itself: one dict lookup, no lock.
        self._metrics.calls.labels(method, code.name).inc()
        self._metrics.latency.labels(method).observe(elapsed)
        if self._log_calls and code is grpc.StatusCode.OK:
            self._log.info("call", extra={"method": method, "seconds": round(elapsed, 6)})

    async def _fail(self, context: grpc.aio.ServicerContext, call: _Call, method: str,
                    exc: BaseException) -> None:
        if isinstance(exc, RequestError):
            call.code = grpc.StatusCode[exc.status]
            message = str(exc)
            if exc.logged:
                self._log.warning("refused", extra={"method": method, "code": call.code.name,
                                                    "detail": message})
        else:
            call.code = grpc.StatusCode.INTERNAL
            message = f"internal error: {type(exc).__name__}"
            self._log.error("internal error", exc_info=exc, extra={"method": method})
        await context.abort(call.code, message)

    def _ready(self, call: _Call):  # -> Core
        core = self._core()
        if core is None:
            call.code = grpc.StatusCode.UNAVAILABLE
        return core

    async def _unary(self, method: str, context: grpc.aio.ServicerContext, handler):
        with self._observe(method) as call:
            core = self._ready(call)
            if core is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up: not serving yet")
            try:
                return await handler(core)
            except Exception as exc:
                await self._fail(context, call, method, exc)

    async def Score(self, request: pb.ScoreRequest, context: grpc.aio.ServicerContext) -> pb.ScoreResponse:
        async def handle(core) -> pb.ScoreResponse:
            scored = await core.service.score(request, context.time_remaining())
            return convert.score_response(scored, core.channels, core.model_version)
        return await self._unary("Score", context, handle)

    async def ScoreStream(self, request_iterator: AsyncIterator[pb.ScoreRequest],
                          context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ScoreResponse]:
        with self._observe("ScoreStream") as call:
            core = self._ready(call)
            if core is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up: not serving yet")
            # Messages are scored concurrently (so they can share batches) and
            # answered in order; the bounded queue applies backpressure.
            pending: asyncio.Queue = asyncio.Queue(STREAM_WINDOW)

            async def read() -> None:
                async for request in request_iterator:
                    task = asyncio.ensure_future(self._score_one(core, request))
                    await pending.put(task)
                await pending.put(None)

            reader = asyncio.ensure_future(read())
            try:
                while True:
                    task = await pending.get()
                    if task is None:
                        break
                    yield await task
                await reader
            finally:
                if not reader.done():
                    reader.cancel()
                while not pending.empty():
                    task = pending.get_nowait()
                    if task is not None:
                        task.cancel()

    async def _score_one(self, core, request: pb.ScoreRequest) -> pb.ScoreResponse:
        with self._observe("ScoreStream.message") as call:
            try:
                scored = await core.service.score(request, None)
            except RequestError as exc:
                call.code = grpc.StatusCode[exc.status]
                if exc.logged:
                    self._log.warning("refused", extra={"method": "ScoreStream",
                                                        "code": exc.status, "detail": str(exc)})
                return pb.ScoreResponse(request_id=request.request_id, error=pb.ScoreError(
                    code=call.code.value[0], message=str(exc)))
            return convert.score_response(scored, core.channels, core.model_version)

    async def ReportOutcomes(self, request: pb.ReportOutcomesRequest,
                             context: grpc.aio.ServicerContext) -> pb.ReportOutcomesResponse:
        async def handle(core) -> pb.ReportOutcomesResponse:
            if not request.batch_id:
                raise InvalidArgument("batch_id", "required (the idempotency key)")
            rows = convert.outcome_rows(request)
            period_end = request.period_end_ms / 1000.0 if request.period_end_ms else None
            duplicate, accepted, version = core.book.report(
                request.campaign_id, request.batch_id, rows, period_end)
            if not duplicate:
                self._metrics.outcomes.inc(accepted)
            return pb.ReportOutcomesResponse(duplicate=duplicate, accepted=accepted,
                                             allocation_version=version)
        return await self._unary("ReportOutcomes", context, handle)

    async def GetAllocation(self, request: pb.GetAllocationRequest,
                            context: grpc.aio.ServicerContext) -> pb.Allocation:
        async def handle(core) -> pb.Allocation:
            return convert.allocation_message(core.book.allocation(request.campaign_id))
        return await self._unary("GetAllocation", context, handle)

    async def ConfigureCampaign(self, request: pb.ConfigureCampaignRequest,
                                context: grpc.aio.ServicerContext) -> pb.Allocation:
        async def handle(core) -> pb.Allocation:
            spec = convert.campaign_spec(request, time.time())
            return convert.allocation_message(core.book.configure(spec))
        return await self._unary("ConfigureCampaign", context, handle)
