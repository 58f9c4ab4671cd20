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


class Unavailable(RequestError):
    """A write the campaign store could not take now (it is unreachable or did not answer
    in time); a retry with the same batch id is harmless, whether or not it landed."""

    status = "UNAVAILABLE"


class LoadShed(ResourceExhausted):
    """Refused unread because the server cannot start it in time (``--shed-with reject``)."""

    logged = False


class TooLate(DeadlineExceeded):
    """The caller's deadline passed before the call was read."""

    logged = False


#: longest echo of a caller's value (an id, a channel name) in a message or a log line
MAX_ECHO = 200
#: longest id accepted by default (campaign, batch, request ids), in UTF-8 bytes
MAX_ID_BYTES = 128


def quote(value: object, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` cut to ``limit`` characters, marked where it was cut: the form in which a
    refusal or a log line echoes what a caller sent.

    >>> quote("c1"), quote("x" * 1000, limit=20)
    ("'c1'", "'xxx... (1000 chars)")
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, (str, bytes)) else len(text)
    tail = f"... ({size} chars)"
    return text[: max(limit - len(tail), 1)] + tail


def check_id(field: str, value: str, max_bytes: int = MAX_ID_BYTES) -> str:
    """``value`` when its UTF-8 form is at most ``max_bytes`` long, else InvalidArgument naming
    ``field`` and the limit.

    >>> check_id("batch_id", "b-1")
    'b-1'
    >>> check_id("batch_id", "é" * 100)
    Traceback (most recent call last):
    attribid.models.errors.InvalidArgument: batch_id: 200 bytes (UTF-8), at most 128
    """
    # UTF-8 takes 1 to 4 bytes a character (1 for ASCII, which str knows without a scan):
    # most ids are decided without encoding them.
    if len(value) * 4 > max_bytes and (len(value) > max_bytes or not value.isascii()):
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise InvalidArgument(field, f"{size} bytes (UTF-8), at most {max_bytes}")
    return value
