"""The status contract under garbage: undecodable bytes, corrupt stream messages, streams
refused at start, oversized ids, and a log that stays JSON whatever a caller sends."""
from __future__ import annotations

import asyncio
import itertools
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from attribid.api.auth import TokenTable
from attribid.api.handlers import SERVICE, register
from attribid.api.servicer import STREAM_DRAIN_MESSAGES, WARMING_UP, AttributionServicer
from attribid.runtime.metrics import Metrics
from attribid.v1 import attribution_pb2 as pb
from tests.serverproc import ServerProcess, wait_serving

UNARY = [m for m in SERVICE.methods if not (m.client_streaming or m.server_streaming)]
#: bytes no message of this API decodes from: a truncated varint, a bad wire type, a length
#: past the end, a group that never ends, and a string field holding invalid UTF-8
GARBAGE = (b"\xff", b"\x0f\x01", b"\x0a\xff\xff\x7f", b"\x0b\x0b\x0b", b"\x0a\x02\xc3\x28")


def path(name: str) -> str:
    return f"/{SERVICE.full_name}/{name}"


def touch() -> pb.Touchpoint:
    return pb.Touchpoint(channel="search", timestamp_ms=int((time.time() - 600) * 1000),
                         interaction=pb.INTERACTION_CLICK, cost=0.5)


def scrape(server) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics",
                                timeout=5) as reply:
        return reply.read().decode()


def undecodable_total(server, method: str) -> float:
    prefix = f'attribid_undecodable_requests_total{{method="{method}"}} '
    for line in scrape(server).splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


@pytest.mark.parametrize("method", UNARY, ids=lambda m: m.name)
def test_undecodable_bytes_are_invalid_argument_naming_the_message(server, method):
    """Was UNKNOWN with a Python class name in the message."""
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(path(method.name), request_serializer=None,
                                   response_deserializer=None)
        for data in GARBAGE:
            with pytest.raises(grpc.RpcError) as info:
                call(data, timeout=10)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, data
            assert info.value.details() == f"request: not a valid {method.input_type.name} message"
            status = rpc_status.from_call(info.value)
            assert status is not None
            bad = error_details_pb2.BadRequest()
            status.details[0].Unpack(bad)
            assert [v.field for v in bad.field_violations] == ["request"]


def test_undecodable_requests_are_counted_and_logged_once_a_window(server):
    """30 garbage calls: 30 counted; one line, the rest summarised, none echoing the bytes."""
    before = undecodable_total(server, "GetAllocation")
    first_line = len(server.lines)
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(path("GetAllocation"), request_serializer=None,
                                   response_deserializer=None)
        for _ in range(30):
            with pytest.raises(grpc.RpcError):
                call(b"\xff" * 10, timeout=10)
    assert undecodable_total(server, "GetAllocation") == before + 30

    def logged() -> tuple[int, int]:
        lines = server.lines[first_line:]
        one = [x for x in lines if x.get("event") == "undecodable request"
               and x.get("method") == "GetAllocation"]
        held = sum(x["suppressed"].get("GetAllocation", 0) for x in lines
                   if x.get("event") == "undecodable requests suppressed")
        return len(one), held

    deadline = time.monotonic() + 10
    while sum(logged()) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)  # the summary is written when its window ends
    lines, held = logged()
    # (a summary may also count calls of an earlier test that fell in the same window)
    assert lines + held >= 30 and lines <= 3
    assert not [x for x in server.lines[first_line:] if x.get("event") == "refused"
                and x.get("method") == "GetAllocation"]


def test_a_corrupt_stream_message_ends_the_stream_while_the_caller_still_sends(server):
    """Was: the stream hung until the caller's deadline, and a traceback reached the log."""
    ended = threading.Event()
    valid = pb.ScoreRequest(request_id="ok", journey=[touch()]).SerializeToString()

    def requests():
        yield valid
        yield valid
        yield b"\x0a\xff\xff\x7f"  # journey: a length past the end
        while not ended.is_set():  # a caller that goes on sending regardless
            yield valid
            time.sleep(0.002)

    replies = []
    with grpc.insecure_channel(server.address) as channel:
        call = channel.stream_stream(path("ScoreStream"), request_serializer=None,
                                     response_deserializer=pb.ScoreResponse.FromString)
        with pytest.raises(grpc.RpcError) as info:
            # the deadline is the bound: a stream left hanging fails with DEADLINE_EXCEEDED
            for reply in call(requests(), timeout=3.0):
                replies.append(reply)
        ended.set()
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "request: not a valid ScoreRequest message"
    assert [r.request_id for r in replies] == ["ok", "ok"] and not replies[0].error.message


def test_a_corrupt_stream_message_from_an_asyncio_client_gets_its_status(server):
    valid = pb.ScoreRequest(request_id="ok", journey=[touch()]).SerializeToString()

    async def one(after: int) -> grpc.StatusCode:
        async with grpc.aio.insecure_channel(server.address) as channel:
            call = channel.stream_stream(path("ScoreStream"), request_serializer=None,
                                         response_deserializer=None)

            async def requests():
                yield valid
                yield b"\xff"
                for _ in range(after):
                    yield valid

            try:
                async for _ in call(requests(), timeout=10):
                    pass
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

    async def main() -> list[grpc.StatusCode]:
        return await asyncio.gather(*(one(n) for n in (0, 1, 10, 40) for _ in range(4)))

    assert set(asyncio.run(main())) == {grpc.StatusCode.INVALID_ARGUMENT}


class WarmingServer:
    """The real servicer and handlers on a real server whose model is still warming up."""

    def __init__(self, tokens: TokenTable | None = None) -> None:
        self.tokens = tokens
        self.address = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = grpc.aio.server()
        servicer = AttributionServicer(SimpleNamespace(core=None), Metrics.create(), False,
                                       self.tokens)
        register(servicer, server)
        self.address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
        await server.start()
        self._ready.set()
        await self._stop.wait()
        await server.stop(1.0)
        servicer.close()

    def __enter__(self) -> "WarmingServer":
        self._thread.start()
        assert self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def stream_codes(address: str, sizes: list[int], metadata=()) -> list[tuple[str, str]]:
    """(code, details) of an asyncio client's ScoreStream per size, all at once."""
    request = pb.ScoreRequest(journey=[touch()] * 20).SerializeToString()

    async def one(n: int) -> tuple[str, str]:
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.stream_stream(path("ScoreStream"), request_serializer=None,
                                         response_deserializer=None)

            async def requests():
                for _ in range(n):
                    yield request

            try:
                async for _ in call(requests(), timeout=10, metadata=metadata):
                    pass
            except grpc.aio.AioRpcError as exc:
                return exc.code().name, exc.details() or ""
            return "OK", ""

    async def main() -> list[tuple[str, str]]:
        return await asyncio.gather(*(one(n) for n in sizes))

    return asyncio.run(main())


SIZES = [n for n in (0, 1, 5, 100, STREAM_DRAIN_MESSAGES // 50) for _ in range(8)]


def test_streams_refused_while_warming_up_end_unavailable_never_internal():
    """Was: "INTERNAL: Internal error from Core" for most streams that were still sending."""
    with WarmingServer() as warming:
        codes = stream_codes(warming.address, SIZES)
    assert set(codes) == {("UNAVAILABLE", WARMING_UP)}


def test_streams_refused_for_their_token_end_with_that_status_never_internal(tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_text("admin-token-0123456789 shop-a admin\nops-token-0123456789ab shop-a ops\n")
    with WarmingServer(TokenTable(tokens)) as warming:
        missing = stream_codes(warming.address, SIZES)
        wrong_role = stream_codes(warming.address, SIZES,
                                  metadata=(("authorization", "Bearer ops-token-0123456789ab"),))
    assert {code for code, _ in missing} == {"UNAUTHENTICATED"}
    assert {code for code, _ in wrong_role} == {"PERMISSION_DENIED"}


ECHOED = {
    "ascii": "x" * 16384,
    "emoji": "\U0001F600" * 16384,
    "nul": "\x00" * 16384,
    "accents": "é" * 5000,
}


@pytest.mark.parametrize("kind", ECHOED)
def test_huge_ids_and_names_are_refused_never_resource_exhausted(server, kind):
    """Was RESOURCE_EXHAUSTED: the echoed id overflowed the client's status metadata."""
    text = ECHOED[kind]
    channel = grpc.insecure_channel(server.address)
    calls = {
        "GetAllocation": (pb.GetAllocationRequest(campaign_id=text), pb.Allocation),
        "Score": (pb.ScoreRequest(campaign_id=text, journey=[touch()]), pb.ScoreResponse),
        "Score.channel": (pb.ScoreRequest(journey=[pb.Touchpoint(
            channel=text, timestamp_ms=touch().timestamp_ms, interaction=pb.INTERACTION_CLICK)]),
            pb.ScoreResponse),
        "ReportOutcomes": (pb.ReportOutcomesRequest(campaign_id=text, batch_id="b"),
                           pb.ReportOutcomesResponse),
        "ReportOutcomes.batch": (pb.ReportOutcomesRequest(batch_id=text), pb.ReportOutcomesResponse),
        "ReportConversions": (pb.ReportConversionsRequest(campaign_id=text, batch_id="b"),
                              pb.ReportConversionsResponse),
        "ReportConversions.batch": (pb.ReportConversionsRequest(batch_id=text),
                                    pb.ReportConversionsResponse),
        "ConfigureCampaign": (pb.ConfigureCampaignRequest(campaign_id=text, budget=10.0),
                              pb.Allocation),
        "ConfigureCampaign.channel": (pb.ConfigureCampaignRequest(
            campaign_id="c", budget=10.0, channels=[pb.ChannelConstraint(name=text)]),
            pb.Allocation),
    }
    with channel:
        for name, (request, reply) in calls.items():
            call = channel.unary_unary(path(name.split(".")[0]),
                                       request_serializer=type(request).SerializeToString,
                                       response_deserializer=reply.FromString)
            with pytest.raises(grpc.RpcError) as info:
                call(request, timeout=10)
            assert info.value.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                         grpc.StatusCode.NOT_FOUND), (name, info.value)
            status = rpc_status.from_call(info.value)  # the details arrive, and agree
            assert status is not None and status.details, name
        stream = channel.stream_stream(path("ScoreStream"),
                                       request_serializer=pb.ScoreRequest.SerializeToString,
                                       response_deserializer=pb.ScoreResponse.FromString)
        (answer,) = stream(iter([calls["Score"][0]]), timeout=10)
        assert answer.error.code in (grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                     grpc.StatusCode.NOT_FOUND.value[0])
        assert len(answer.error.message.encode()) <= 4000


def test_a_server_fed_garbage_logs_only_json_lines():
    """Every stderr line of a real ``attribid serve`` stays one JSON object."""
    with ServerProcess() as proc:
        wait_serving(proc.address)
        valid = pb.ScoreRequest(request_id="ok", journey=[touch()]).SerializeToString()
        with grpc.insecure_channel(proc.address) as channel:
            for method, data in itertools.product(UNARY, GARBAGE):
                call = channel.unary_unary(path(method.name), request_serializer=None,
                                           response_deserializer=None)
                with pytest.raises(grpc.RpcError):
                    call(data, timeout=10)
            stream = channel.stream_stream(path("ScoreStream"), request_serializer=None,
                                           response_deserializer=None)
            with pytest.raises(grpc.RpcError) as info:
                list(stream(iter([valid, b"\xff", valid]), timeout=10))
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            # and a stream its caller gives up on halfway
            pending = stream(iter([valid] * 50), timeout=10)
            next(pending)
            pending.cancel()
        proc.signal()
        assert proc.wait(30) == 0
    assert [line for line in proc.lines if line.get("event") == "raw"] == []
    assert proc.events("undecodable request")
