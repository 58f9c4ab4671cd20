"""Errors the core raises; the servicer maps them to gRPC status codes.

The core knows nothing of gRPC: it names a status by its string and the
offending field, and the servicer turns that into ``context.abort``.
"""
from __future__ import annotations


class RequestError(Exception):
    """A request the server refuses. ``status`` is a grpc.StatusCode name."""

    status = "INVALID_ARGUMENT"
    #: logged one line per call; shed load is only counted, since logging each shed
    #: call would spend the CPU that shedding is meant to save
    logged = True

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class InvalidArgument(RequestError):
    status = "INVALID_ARGUMENT"


class FailedPrecondition(RequestError):
    status = "FAILED_PRECONDITION"


class NotFound(RequestError):
    status = "NOT_FOUND"


class ResourceExhausted(RequestError):
    status = "RESOURCE_EXHAUSTED"


class DeadlineExceeded(RequestError):
    status = "DEADLINE_EXCEEDED"


class LoadShed(ResourceExhausted):
    """Refused unread because the server cannot start it in time (``--shed-with reject``)."""

    logged = False


class TooLate(DeadlineExceeded):
    """The caller's deadline passed before the call was read."""

    logged = False
