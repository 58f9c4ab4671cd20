"""The Attribution service's method handlers, with request decoding that cannot fail a call.

gRPC answers a request its deserializer cannot decode with UNKNOWN and the exception's class
name, and a stream whose message fails to decode is left hanging. Here every method decodes
with ``safe_deserializer``: bytes that are not a valid message become an ``Undecoded`` value
instead of an exception, and the servicer refuses it as INVALID_ARGUMENT
("request: not a valid ScoreRequest message"), counted per method and logged at most once
per rate window. Handlers are built from the service descriptor, so every method of the
proto is covered, one added later included.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

import grpc
from google.protobuf.message import DecodeError, Message

from attribid.models.errors import InvalidArgument
from attribid.v1 import attribution_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["Attribution"]


class Undecoded:
    """What a request's bytes became when they are not a valid ``message`` message.

    >>> bad = safe_deserializer(pb.ScoreRequest)(b"\\xff\\xff")
    >>> bad.message, bad.size, str(bad.refusal())
    ('ScoreRequest', 2, 'request: not a valid ScoreRequest message')
    """

    __slots__ = ("message", "size")

    def __init__(self, message: str, size: int) -> None:
        self.message = message
        self.size = size

    def refusal(self) -> "UndecodableRequest":
        return UndecodableRequest("request", f"not a valid {self.message} message")


class UndecodableRequest(InvalidArgument):
    """INVALID_ARGUMENT for bytes that are not a message; counted and logged by the servicer
    at most once per rate window, never one log line per call."""

    logged = False


def safe_deserializer(cls: type[Message]) -> Callable[[bytes], Any]:
    """``cls.FromString``, returning an ``Undecoded`` where it would raise.

    >>> decode = safe_deserializer(pb.GetAllocationRequest)
    >>> decode(pb.GetAllocationRequest(campaign_id="c1").SerializeToString()).campaign_id
    'c1'
    """
    from_string = cls.FromString
    name = cls.DESCRIPTOR.name

    def deserialize(data: bytes) -> Any:
        try:
            return from_string(data)
        except DecodeError:  # wire format, invalid UTF-8 in a string, nesting too deep
            return Undecoded(name, len(data))

    return deserialize


class Refuser(Protocol):
    """How a unary call with undecodable bytes is answered (``AttributionServicer.refuse_undecoded``)."""

    def __call__(self, method: str, request: Undecoded,
                 context: grpc.aio.ServicerContext) -> Awaitable[Any]: ...


def _screened(method: str, behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
              refuse: Refuser) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """A unary behaviour that hands undecodable requests to ``refuse`` instead."""

    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.__class__ is Undecoded:
            return await refuse(method, request, context)
        return await behavior(request, context)

    return handle


def method_handlers(servicer: Any, refuse: Refuser) -> dict[str, grpc.RpcMethodHandler]:
    """One handler per method of the service, by method name, each with a safe deserializer.

    Unary methods are screened here; a streaming method receives ``Undecoded`` values
    (in its request iterator) and refuses them itself (``AttributionServicer.ScoreStream``).
    """
    kinds = {(False, False): grpc.unary_unary_rpc_method_handler,
             (False, True): grpc.unary_stream_rpc_method_handler,
             (True, False): grpc.stream_unary_rpc_method_handler,
             (True, True): grpc.stream_stream_rpc_method_handler}
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in SERVICE.methods:
        request_cls = getattr(pb, method.input_type.name)
        response_cls = getattr(pb, method.output_type.name)
        behavior = getattr(servicer, method.name)
        if not (method.client_streaming or method.server_streaming):
            behavior = _screened(method.name, behavior, refuse)
        make = kinds[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(behavior, request_deserializer=safe_deserializer(request_cls),
                                     response_serializer=response_cls.SerializeToString)
    return handlers


def register(servicer: Any, server: grpc.aio.Server, refuse: Refuser | None = None) -> None:
    """Serve ``servicer`` on ``server`` (what the generated ``add_AttributionServicer_to_server``
    does, with safe deserializers); ``refuse`` defaults to ``servicer.refuse_undecoded``."""
    handlers = method_handlers(servicer, refuse or servicer.refuse_undecoded)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name,
                                                                          handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)
