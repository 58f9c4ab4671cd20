"""The `attribid` command (attribid.cli.main) and what its commands share: how they fail.

A command reports a failure by raising :class:`CommandError`; ``attribid.cli.main``
prints it as ``attribid COMMAND: message`` on stderr and exits with its code.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

#: the command did what it was asked
OK = 0
#: the command ran and failed: e.g. the server is unreachable, refused the call, or cannot start
FAILED = 1
#: a usage error or bad input (a flag, a file, a spec); the message names the input
BAD_INPUT = 2
#: a well-formed allocation spec that no allocation satisfies; the message names the constraint
INFEASIBLE = 3


class CommandError(Exception):
    """A failure to report as ``attribid COMMAND: message``, exiting with ``code``.

    >>> err = CommandError("--journeys: must be >= 1, got 0")
    >>> str(err), err.code
    ('--journeys: must be >= 1, got 0', 2)
    """

    def __init__(self, message: str, code: int = BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def errors_as(code: int, *kinds: type[Exception], prefix: str = "") -> Iterator[None]:
    """Report the library's errors of the given kinds as a CommandError with ``code``.

    The library's messages already name the input (a file, line and column; a spec field).

    >>> try:
    ...     with errors_as(BAD_INPUT, ValueError):
    ...         int("seven")
    ... except CommandError as err:
    ...     print(err.code, err)
    2 invalid literal for int() with base 10: 'seven'
    """
    try:
        yield
    except kinds as exc:
        raise CommandError(prefix + str(exc), code) from exc


def progress(message: str) -> None:
    """A progress line on stderr, so that stdout carries only a command's result."""
    print(message, file=sys.stderr, flush=True)
