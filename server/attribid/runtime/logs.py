"""Structured logs: one JSON object per line on stderr (orjson)."""
from __future__ import annotations

import logging
import sys
import time
from typing import Any

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
