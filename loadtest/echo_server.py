"""Floor B: a bare grpc.aio + uvloop server answering Score with a canned response.

It parses each ScoreRequest and answers a ScoreResponse of the size a real one
has (seven channels of credit and bids), echoing the request id, and does
nothing else: whatever attribid spends above this is its own work.

With ``--model``, it also runs that ONNX model once per call (batch 1, on the
event loop, on features prepared at start, exactly floor A's input): floor A+B,
the least a Python gRPC server of this model can do per call on one core, with
no validation, featurization, attribution, bids or batching. ``--spin-idle``
gives it attribid's idle spinners, so their effect can be told apart.

    python -m loadtest.echo_server --address 127.0.0.1:0 [--model m.onnx] [--spin-idle]
    {"event": "serving", "address": "127.0.0.1:40123"}
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Callable

import grpc
import orjson
import uvloop

from attribid.kernels.taxonomy import DEFAULT_CHANNELS
from attribid.v1 import attribution_pb2 as pb

SERVICE = "attribid.v1.Attribution"


def typical_response() -> pb.ScoreResponse:
    """A ScoreResponse shaped like attribid's answer for a seven-channel journey.

    >>> len(typical_response().credit)
    7
    """
    share = 1.0 / len(DEFAULT_CHANNELS)
    return pb.ScoreResponse(
        request_id="lt-0-0", conversion_probability=0.0731,
        credit={name: share for name in DEFAULT_CHANNELS},
        bid={name: 0.00123 * (k + 1) for k, name in enumerate(DEFAULT_CHANNELS)},
        impression_bid=0.00246, model_version="attribid-net-1+sim-seed7",
        touchpoints_used=32,
    )


def forward_pass(model: str, steps: int = 32) -> Callable[[], object]:
    """One run of ``model`` at batch 1 on a ``steps``-touchpoint journey (floor A's call)."""
    from attribid.models.onnx.runtime import load_model
    from loadtest.floors import feed

    onnx, (features, mask) = load_model(model, 1), feed(1, steps)
    return lambda: onnx.run(features, mask)


def handler(work: Callable[[], object] | None = None) -> grpc.GenericRpcHandler:
    """The generic handler serving Score (and nothing else) for ``attribid.v1``."""
    canned = typical_response()

    async def score(request: pb.ScoreRequest, context: grpc.aio.ServicerContext) -> pb.ScoreResponse:
        if work is not None:
            work()
        reply = pb.ScoreResponse()
        reply.CopyFrom(canned)
        reply.request_id = request.request_id
        return reply

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Score": grpc.unary_unary_rpc_method_handler(
            score, request_deserializer=pb.ScoreRequest.FromString,
            response_serializer=pb.ScoreResponse.SerializeToString),
    })


async def serve(address: str, work: Callable[[], object] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; print one JSON line with the bound address."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler(work),))
    host = address.rsplit(":", 1)[0]
    port = server.add_insecure_port(address)
    await server.start()
    sys.stdout.write(orjson.dumps({"event": "serving", "address": f"{host}:{port}"}).decode() + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:0", help="host:port; port 0 picks one")
    parser.add_argument("--model", default="", help="also run this ONNX model per call")
    parser.add_argument("--spin-idle", action="store_true", help="start attribid's idle spinners")
    args = parser.parse_args(argv)
    work = forward_pass(args.model) if args.model else None
    if work is not None:
        for _ in range(20):
            work()
    spinners = None
    if args.spin_idle:
        from attribid.runtime.spin import IdleSpinners
        spinners = IdleSpinners()
        spinners.start()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(args.address, work))
    finally:
        if spinners is not None:
            spinners.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
