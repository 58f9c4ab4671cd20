"""Core errors to gRPC status: the one table, and the status a refusal is sent with.

A refusal that names a field also carries a ``google.rpc.BadRequest`` with one
FieldViolation in the status details (``grpc-status-details-bin``), so a client in any
language reads the field without parsing the message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from attribid.models.errors import RequestError

#: every status a core error names (``RequestError.status``), as a gRPC code
CODES: Mapping[str, grpc.StatusCode] = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "DEADLINE_EXCEEDED": grpc.StatusCode.DEADLINE_EXCEEDED,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
}
#: longest message and description sent, in UTF-8 bytes: a refusal that quotes a huge name
#: from the request must still fit, message and details together, in a client's 8 KiB of
#: trailing metadata (a byte outside printable ASCII travels as three in grpc-message)
MAX_TEXT = 1000


def clip(text: str) -> str:
    """``text`` cut to MAX_TEXT bytes of UTF-8, marked where it was cut.

    >>> short = clip("x" * 5000)
    >>> len(short), short.endswith("x... (5000 chars)"), clip("fits") == "fits"
    (1000, True, True)
    >>> emoji = clip("\U0001F600" * 5000)
    >>> len(emoji.encode()) <= 1000, emoji.endswith("... (5000 chars)")
    (True, True)
    """
    # Four bytes at most per character: short texts are decided without encoding them.
    if len(text) * 4 <= MAX_TEXT:
        return text
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_TEXT:
        return text
    tail = f"... ({len(text)} chars)"
    # Cut on bytes; a character the cut splits is dropped whole.
    return data[: MAX_TEXT - len(tail)].decode("utf-8", "ignore") + tail


@dataclass(frozen=True, slots=True)
class Refusal:
    """How a refused call is answered: its code, message and the field it names ("" = none).

    >>> from attribid.models.errors import InvalidArgument
    >>> r = Refusal.of(InvalidArgument("journey[0].cost", "must be finite and >= 0"))
    >>> r.code.name, r.message, r.field
    ('INVALID_ARGUMENT', 'journey[0].cost: must be finite and >= 0', 'journey[0].cost')
    """

    code: grpc.StatusCode
    message: str
    field: str
    description: str

    @classmethod
    def of(cls, exc: RequestError) -> "Refusal":
        return cls(CODES[exc.status], clip(str(exc)), exc.field, clip(exc.message))

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        """The rich status (``grpc-status-details-bin``) when a field is named, else nothing.

        Shed load names no field, so its refusals stay as cheap as a bare status.
        """
        if not self.field:
            return ()
        detail = any_pb2.Any()
        detail.Pack(bad_request(self.field, self.description))
        status = status_pb2.Status(code=self.code.value[0], message=self.message, details=[detail])
        return rpc_status.to_status(status).trailing_metadata


def bad_request(field: str, description: str) -> error_details_pb2.BadRequest:
    """One FieldViolation, as every refusal naming a field carries it."""
    return error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field=field, description=description)])
