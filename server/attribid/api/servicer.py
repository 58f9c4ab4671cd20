"""The gRPC servicer: converts messages, hands on to the core, maps errors to status codes."""
from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable, NoReturn, Protocol, TypeVar

import grpc

from attribid.api import convert
from attribid.api.handlers import Undecoded
from attribid.api.streams import Pipe, StreamShare
from attribid.api.auth import OPEN_TENANT, AuthRefusal, TokenTable
from attribid.api.status import Refusal
from attribid.campaigns.writer import CampaignWriter
from attribid.runtime import logs
from attribid.core.conversions import credit_conversions
from attribid.models.errors import MAX_ID_BYTES, NotFound, RequestError
from attribid.runtime.metrics import Metrics
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc

if TYPE_CHECKING:  # the core is built after the server binds (attribid.runtime.server)
    from attribid.core.service import ScoringService, Ticket
    from attribid.models.campaign.tenants import TenantBooks
    from attribid.state.replica import CampaignState

#: ScoreStream messages read and not yet answered, per stream: a stream whose caller does not
#: read its answers stops being read past this (and HTTP/2 flow control stops its sender)
STREAM_WINDOW = 16
#: ScoreStream messages being scored at once over all streams, in batches of max_batch: Score
#: calls never queue behind more stream messages than this (and the rate they are let in at
#: leaves the event loop to other calls: attribid.api.streams)
STREAM_SHARE_BATCHES = 2
#: a stream refused or ended early reads what its caller still sends, for at most this many
#: messages and seconds, before the status: an asyncio client whose write is cut short by the
#: status reports INTERNAL instead of the status it was sent (grpcio's aio client)
STREAM_DRAIN_MESSAGES = 10_000
STREAM_DRAIN_S = 1.0
WARMING_UP = "warming up: not serving yet"

Reply = TypeVar("Reply")


class Core(Protocol):
    """What a call needs once the server is warm (``attribid.runtime.server.Core``)."""

    @property
    def service(self) -> ScoringService: ...
    @property
    def books(self) -> TenantBooks: ...
    @property
    def channels(self) -> tuple[str, ...]: ...
    @property
    def state(self) -> CampaignState: ...
    @property
    def model_version(self) -> str: ...


class Serving(Protocol):
    """The server as the servicer sees it: its core once warm, None while warming up."""

    @property
    def core(self) -> Core | None: ...


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


class _Message:
    """A ScoreStream message between its reader and its writer: its ticket (None when
    refused in band) and when it was read."""

    __slots__ = ("request_id", "started", "ticket", "future", "refusal")

    def __init__(self, request_id: str, started: float, ticket: Ticket | None,
                 refusal: Refusal | None) -> None:
        self.request_id = request_id
        self.started = started
        self.ticket = ticket
        self.future = None if ticket is None else ticket.future
        self.refusal = refusal


class AttributionServicer(pb_grpc.AttributionServicer):
    """Serves ``server.core``; answers UNAVAILABLE while it is None (warming up)."""

    def __init__(self, server: Serving, metrics: Metrics, log_calls: bool,
                 tokens: TokenTable | None = None, *,
                 refusal_log_per_s: int = logs.REFUSAL_LOG_PER_S,
                 max_id_bytes: int = MAX_ID_BYTES, writer_niceness: int = 0) -> None:
        self._server = server
        self._max_id_bytes = max_id_bytes
        #: None: no tokens, every caller is OPEN_TENANT
        self._tokens = tokens
        self._metrics = metrics
        self._log = logs.get()
        self._log_calls = log_calls
        self._writes = CampaignWriter(niceness=writer_niceness)
        #: undecodable requests: one log line a second per method, the rest counted
        self._garbage_log = logs.RateLimitedLog(self._log, 1,
                                                summary="undecodable requests suppressed")
        self._stream_share: StreamShare | None = None
        #: each (method, code)'s call counter and latency histogram, as bound updates (a
        #: code's name and two label lookups per call cost more than the updates themselves)
        self._recorders: dict[tuple[str, grpc.StatusCode],
                              tuple[Callable[[], None], Callable[[float], None]]] = {}
        self._refusal_log = logs.RateLimitedLog(self._log, refusal_log_per_s)

    def close(self) -> None:
        """Drop campaign writes not yet started (the server has stopped taking calls)."""
        self._writes.close()
        if self._stream_share is not None:
            self._stream_share.close()

    def _observe(self, method: str) -> _Call:
        return _Call(self, method)

    def _record(self, method: str, code: grpc.StatusCode, elapsed: float) -> None:
        try:
            count, observe = self._recorders[method, code]
        except KeyError:
            count = self._metrics.calls.labels(method, code.name).inc
            observe = self._metrics.latency.labels(method).observe
            self._recorders[method, code] = count, observe
        count()
        observe(elapsed)
        if self._log_calls and code is grpc.StatusCode.OK:
            self._log.info("call", extra={"method": method, "seconds": round(elapsed, 6)})

    def _refuse(self, call: _Call, method: str, exc: RequestError) -> Refusal:
        """``_refusal``, as the outcome of ``call``."""
        refusal = self._refusal(method, exc)
        call.code = refusal.code
        return refusal

    def _refusal(self, method: str, exc: RequestError) -> Refusal:
        """The one place a core error becomes a status: counted, logged unless shed."""
        refusal = Refusal.of(exc)
        self._metrics.refusals.labels(method, refusal.code.name).inc()
        # A few lines a second per method: the rest are counted and summarised (logs).
        if exc.logged and self._refusal_log.allow(method):
            self._log.warning("refused", extra={"method": method, "code": refusal.code.name,
                                                "detail": logs.clip(refusal.message)})
        return refusal

    async def _fail(self, context: grpc.aio.ServicerContext, call: _Call, method: str,
                    exc: Exception) -> NoReturn:
        if isinstance(exc, RequestError):
            refusal = self._refuse(call, method, exc)
            await context.abort(refusal.code, refusal.message, refusal.trailing_metadata())
        else:
            call.code = grpc.StatusCode.INTERNAL
            self._log.error("internal error", exc_info=exc, extra={"method": method})
            await context.abort(call.code, f"internal error: {type(exc).__name__}")
        raise AssertionError("context.abort returns by raising")

    async def _authorize(self, context: grpc.aio.ServicerContext, method: str) -> str:
        """The caller's tenant, once its token allows ``method``; else the call is refused
        (UNAUTHENTICATED or PERMISSION_DENIED), counted, and logged at most once a second."""
        try:
            return self._caller(context, method)
        except AuthRefusal as refusal:
            await context.abort(refusal.code, refusal.message)
            raise AssertionError("context.abort returns by raising")

    def _caller(self, context: grpc.aio.ServicerContext, method: str) -> str:
        """``_authorize`` without the abort: raises AuthRefusal, counted and logged."""
        tokens = self._tokens
        if tokens is None:
            return OPEN_TENANT
        try:
            return tokens.check(context.invocation_metadata(), method).tenant
        except AuthRefusal as refusal:
            self._metrics.calls.labels(method, refusal.code.name).inc()
            tokens.log_refusal(method, refusal, context.peer() or "")
            raise

    def _undecoded(self, call: _Call, method: str, request: Undecoded) -> Refusal:
        """INVALID_ARGUMENT for bytes that are not a message: counted per method, logged at
        most once a second per method (the rest summarised), never echoed."""
        self._metrics.undecodable.labels(method).inc()
        if self._garbage_log.allow(method):
            self._log.warning("undecodable request", extra={
                "method": method, "request_type": request.message, "bytes": request.size})
        return self._refuse(call, method, request.refusal())

    async def refuse_undecoded(self, method: str, request: Undecoded,
                               context: grpc.aio.ServicerContext) -> NoReturn:
        """Answer a unary call whose bytes did not decode (``attribid.api.handlers``)."""
        await self._authorize(context, method)
        with self._observe(method) as call:
            refusal = self._undecoded(call, method, request)
            await context.abort(refusal.code, refusal.message, refusal.trailing_metadata())
        raise AssertionError("context.abort returns by raising")

    async def _end_stream(self, requests: AsyncIterator[object],
                          context: grpc.aio.ServicerContext, code: grpc.StatusCode,
                          message: str, metadata: tuple[tuple[str, bytes], ...] = ()) -> NoReturn:
        """End a stream with ``code`` after reading, within bounds, what its caller still sends."""
        await self._drain(requests)
        await context.abort(code, message, metadata)
        raise AssertionError("context.abort returns by raising")

    async def _ready(self, context: grpc.aio.ServicerContext, call: _Call) -> Core:
        core = self._server.core
        if core is None:
            call.code = grpc.StatusCode.UNAVAILABLE
            await context.abort(call.code, WARMING_UP)
            raise AssertionError("context.abort returns by raising")
        return core

    async def _unary(self, method: str, context: grpc.aio.ServicerContext,
                     handler: Callable[[Core], Awaitable[Reply]]) -> Reply:
        with self._observe(method) as call:
            core = await self._ready(context, call)
            try:
                return await handler(core)
            except Exception as exc:
                await self._fail(context, call, method, exc)

    async def Score(self, request: pb.ScoreRequest, context: grpc.aio.ServicerContext) -> pb.ScoreResponse:
        # ``_unary`` written out: a coroutine and a closure fewer per call, the busiest method
        try:
            tenant = self._caller(context, "Score")
        except AuthRefusal as refusal:
            await context.abort(refusal.code, refusal.message)
            raise AssertionError("context.abort returns by raising")
        with self._observe("Score") as call:
            core = self._server.core
            if core is None:
                core = await self._ready(context, call)
            service = core.service
            try:
                # Admitted before the request is converted: a shed call costs no conversion.
                admission = service.admit(context.time_remaining())
                scored = await service.score_admitted(convert.score_input(request), admission,
                                                      tenant)
                return convert.score_response(scored, core.channels, scored.model_version)
            except Exception as exc:
                await self._fail(context, call, "Score", exc)

    async def ScoreStream(self, request_iterator: AsyncIterator[pb.ScoreRequest | Undecoded],
                          context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ScoreResponse]:
        try:
            tenant = self._caller(context, "ScoreStream")
        except AuthRefusal as refusal:
            await self._end_stream(request_iterator, context, refusal.code, refusal.message)
        with self._observe("ScoreStream") as call:
            core = self._server.core
            if core is None:
                call.code = grpc.StatusCode.UNAVAILABLE
                await self._end_stream(request_iterator, context, call.code, WARMING_UP)
            if self._stream_share is None:
                self._stream_share = StreamShare(
                    STREAM_SHARE_BATCHES * core.service.settings.max_batch)
            share = self._stream_share
            service, channels = core.service, core.channels
            # Messages are scored concurrently (so they can share batches) and answered in
            # order. A message holds a place in the window from before it is read until its
            # answer is written: when the caller stops reading, writes wait, the window fills
            # and this stream (only this one) stops being read. The reader does all of a
            # message's work up to the batch without awaiting; the writer waits only for a
            # batch (the answers after the first of a batch are ready when it gets to them).
            pipe: Pipe[_Message | Refusal | BaseException | None] = Pipe(STREAM_WINDOW)

            async def read() -> None:
                try:
                    iterator = request_iterator.__aiter__()
                    while True:
                        await pipe.room()
                        try:
                            request = await iterator.__anext__()
                        except StopAsyncIteration:
                            pipe.put(None)
                            return
                        if request.__class__ is Undecoded:
                            assert isinstance(request, Undecoded)
                            refusal = self._undecoded(call, "ScoreStream", request)
                            await self._drain(request_iterator)
                            pipe.put(refusal)
                            return
                        assert isinstance(request, pb.ScoreRequest)
                        if not share.admit():
                            await share.wait()
                        pipe.put(self._stream_start(service, request, tenant, share))
                except BaseException as exc:  # ends the answers too, instead of leaving them waiting
                    pipe.put(exc)
                    raise

            reader = asyncio.ensure_future(read())
            try:
                while True:
                    item = await pipe.get()
                    if item.__class__ is _Message:
                        assert isinstance(item, _Message)
                        future = item.future
                        if future is not None and not future.done():
                            try:
                                await future
                            except Exception:
                                pass  # _stream_answer reads it
                        yield self._stream_answer(service, channels, item)
                        pipe.answered()
                        continue
                    if item is None:
                        break
                    if isinstance(item, Refusal):
                        await context.abort(item.code, item.message, item.trailing_metadata())
                        raise AssertionError("context.abort returns by raising")
                    assert isinstance(item, BaseException)
                    raise item
                await reader
            finally:
                if not reader.done():
                    reader.cancel()
                for item in pipe.items:
                    if isinstance(item, _Message) and item.future is not None:
                        item.future.cancel()

    @staticmethod
    async def _drain(requests: AsyncIterator[object]) -> None:
        """Read and drop what a stream's caller still sends, within STREAM_DRAIN_* bounds."""
        async def drain() -> None:
            read = 0
            async for _ in requests:
                read += 1
                if read >= STREAM_DRAIN_MESSAGES:
                    return

        draining = asyncio.ensure_future(drain())
        try:
            await asyncio.wait({draining}, timeout=STREAM_DRAIN_S)
        finally:
            if not draining.done():
                draining.cancel()
            # The caller may have gone, or sent what cannot be read: the status goes out anyway.
            await asyncio.gather(draining, return_exceptions=True)

    def _stream_start(self, service: ScoringService, request: pb.ScoreRequest, tenant: str,
                      share: StreamShare) -> _Message:
        """A stream message let in by ``share``: converted, validated and queued for the
        network (its slot held until scored), or refused in band."""
        started = time.perf_counter()
        try:
            ticket = service.begin(convert.score_input(request), tenant=tenant)
        except RequestError as exc:
            share.hold(None)
            return _Message(request.request_id, started, None,
                            self._refusal("ScoreStream", exc))
        except BaseException:
            share.hold(None)
            raise
        share.hold(ticket.future)
        return _Message(request.request_id, started, ticket, None)

    def _stream_answer(self, service: ScoringService, channels: tuple[str, ...],
                       message: _Message) -> pb.ScoreResponse:
        """A stream message's answer once scored; its ``ScoreStream.message`` metrics are
        taken from when it was read to when its answer is ready to be written."""
        refusal = message.refusal
        code = grpc.StatusCode.OK
        try:
            if refusal is None:
                assert message.ticket is not None
                try:
                    scored = service.finish(message.ticket)
                except RequestError as exc:
                    refusal = self._refusal("ScoreStream", exc)
                else:
                    return convert.score_response(scored, channels, scored.model_version)
            code = refusal.code
            return pb.ScoreResponse(request_id=message.request_id, error=pb.ScoreError(
                code=code.value[0], message=refusal.message))
        finally:
            self._record("ScoreStream.message", code, time.perf_counter() - message.started)

    async def ReportOutcomes(self, request: pb.ReportOutcomesRequest,
                             context: grpc.aio.ServicerContext) -> pb.ReportOutcomesResponse:
        tenant = await self._authorize(context, "ReportOutcomes")

        def write(core: Core) -> tuple[bool, int, int]:
            # The batch id and the row count are checked before any row is converted.
            core.books.of(tenant).check_report(request.batch_id, len(request.outcomes))
            return core.state.report(tenant, request.campaign_id, request.batch_id,
                                     convert.outcome_columns(request), convert.period_end(request))

        async def handle(core: Core) -> pb.ReportOutcomesResponse:
            # Conversion, validation and the model update run in the writer thread.
            duplicate, accepted, version = await self._writes.run(write, core)
            if not duplicate:
                self._metrics.outcomes.inc(accepted)
            return pb.ReportOutcomesResponse(duplicate=duplicate, accepted=accepted,
                                             allocation_version=version)
        return await self._unary("ReportOutcomes", context, handle)

    async def ReportConversions(self, request: pb.ReportConversionsRequest,
                                context: grpc.aio.ServicerContext) -> pb.ReportConversionsResponse:
        tenant = await self._authorize(context, "ReportConversions")

        def write(core: Core) -> pb.ReportConversionsResponse:
            # Checked before a conversion is converted or credited: batch id, count, and
            # that the campaign takes credited conversions (its attribution says by what).
            method = core.state.check_conversions(
                tenant, request.campaign_id, request.batch_id,
                len(request.conversions) + len(request.non_converting))
            # markov and shapley are fitted on the campaign's window of recent journeys
            window = functools.partial(core.books.of(tenant).window_credit, request.campaign_id)
            credited = credit_conversions(method, core.service.scorer, core.service.validator,
                                          convert.conversions_input(request), time.time(),
                                          self._max_id_bytes, convert.idle_input(request),
                                          window)
            duplicate, accepted, version = core.state.conversions(
                tenant, request.campaign_id, request.batch_id, credited.at, credited.value,
                credited.credit, credited.paths, credited.idle)
            return convert.conversions_response(duplicate, accepted, version, method, credited,
                                                core.channels)

        async def handle(core: Core) -> pb.ReportConversionsResponse:
            # Validation and the network's forward passes run in the writer thread, off the
            # event loop (one writer: campaign writes apply in the order they are taken).
            reply = await self._writes.run(write, core)
            if not reply.duplicate:
                self._metrics.conversions.inc(reply.accepted)
            return reply
        return await self._unary("ReportConversions", context, handle)

    async def GetAllocation(self, request: pb.GetAllocationRequest,
                            context: grpc.aio.ServicerContext) -> pb.Allocation:
        tenant = await self._authorize(context, "GetAllocation")

        async def handle(core: Core) -> pb.Allocation:
            try:
                snapshot = core.books.of(tenant).allocation(request.campaign_id)
            except NotFound:
                # Configured through another process moments ago? The store has it: read it
                # off the event loop, in the writer thread.
                snapshot = await self._writes.run(core.state.allocation, tenant,
                                                  request.campaign_id)
            return convert.allocation_message(snapshot)
        return await self._unary("GetAllocation", context, handle)

    async def ConfigureCampaign(self, request: pb.ConfigureCampaignRequest,
                                context: grpc.aio.ServicerContext) -> pb.Allocation:
        tenant = await self._authorize(context, "ConfigureCampaign")

        def write(core: Core) -> pb.Allocation:
            spec = convert.campaign_spec(request, time.time())
            return convert.allocation_message(core.state.configure(tenant, spec))

        async def handle(core: Core) -> pb.Allocation:
            # The spec's checks and the first solve run in the writer thread.
            return await self._writes.run(write, core)
        return await self._unary("ConfigureCampaign", context, handle)

    async def ReloadModel(self, request: pb.ReloadModelRequest,
                          context: grpc.aio.ServicerContext) -> pb.ReloadModelResponse:
        await self._authorize(context, "ReloadModel")

        async def handle(core: Core) -> pb.ReloadModelResponse:
            # A model that fails to load is answered in-band (reloaded false), not as an
            # error status: the call worked, and the old model keeps serving.
            done = await core.service.reload(request.model_path)
            return pb.ReloadModelResponse(old_version=done.old_version,
                                          new_version=done.new_version,
                                          reloaded=done.reloaded, detail=done.detail)
        return await self._unary("ReloadModel", context, handle)
