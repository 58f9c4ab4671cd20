"""Structured logs: one JSON object per line on stderr (orjson).

Lines that a caller can cause (one per refused call) go through ``RateLimitedLog``: at most
a set number a second per method, the rest counted and summarised in one line a second, so
a client sending garbage cannot flood the log. Text echoed from a request is cut (``clip``).
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any, Callable, Hashable

Logger = logging.Logger

import orjson

LOGGER_NAME = "attribid"

# LogRecord attributes that are not user-supplied fields
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "info") -> logging.Logger:
    """Send the attribid logger to stderr as JSON lines; idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.propagate = False
    return logger


def flush() -> None:
    """Flush and close the attribid logger's handlers: for an exit that skips the usual cleanup."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        handler.flush()
        handler.close()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()


def get() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def now_ms() -> int:
    return int(time.time() * 1000)


#: longest text field of a log line that may echo a request (a refusal's detail)
MAX_LOG_TEXT = 400
#: refused calls logged per second and method by default; the rest are only counted
REFUSAL_LOG_PER_S = 20


def clip(text: str, limit: int = MAX_LOG_TEXT) -> str:
    """``text`` cut to ``limit`` characters, marked where it was cut.

    >>> clip("x" * 1000, 24), clip("short")
    ('xxxxxxxx... (1000 chars)', 'short')
    """
    if len(text) <= limit:
        return text
    tail = f"... ({len(text)} chars)"
    return text[: max(limit - len(tail), 0)] + tail


class RateLimitedLog:
    """Lets through at most ``per_second`` lines a second for each key (a method, say); the
    lines held back are counted by key and reported in one ``summary`` line at the end of
    the second they fell in (on the running event loop, or at the next line without one).

    >>> t = [0.0]
    >>> limit = RateLimitedLog(get(), 2, clock=lambda: t[0])
    >>> [limit.allow("Score") for _ in range(4)], limit.allow("GetAllocation")
    ([True, True, False, False], True)
    >>> limit.suppressed
    {'Score': 2}
    >>> t[0] = 1.5; limit.allow("Score"), limit.suppressed
    (True, {})
    """

    def __init__(self, logger: logging.Logger, per_second: int, *,
                 summary: str = "refusals suppressed",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self.per_second = int(per_second)
        self._summary = summary
        self._clock = clock
        self._window = -float("inf")
        self._counts: dict[Hashable, int] = {}
        #: lines held back in the current second, by key
        self.suppressed: dict[Hashable, int] = {}
        self._armed = False

    def allow(self, key: Hashable) -> bool:
        """True when a line for ``key`` may be written now; else it is counted as held back."""
        now = self._clock()
        if now - self._window >= 1.0:
            self._roll(now)
        n = self._counts.get(key, 0)
        if n < self.per_second:
            self._counts[key] = n + 1
            return True
        self.suppressed[key] = self.suppressed.get(key, 0) + 1
        if not self._armed:
            self._arm(1.0 - (now - self._window))
        return False

    def flush(self) -> None:
        """Write the summary of the lines held back so far, if any, and start a new second."""
        self._armed = False
        self._roll(self._clock())

    def _roll(self, now: float) -> None:
        if self.suppressed:
            self._log.warning(self._summary, extra={
                "suppressed": {str(k): n for k, n in self.suppressed.items()},
                "total": sum(self.suppressed.values()),
                "window_s": round(now - self._window, 3)})
        self.suppressed = {}
        self._counts = {}
        self._window = now

    def _arm(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop: the next line after the second reports it
        self._armed = True
        loop.call_later(max(delay, 0.0), self.flush)
