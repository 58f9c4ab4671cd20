"""Progress bars for the long batch commands, on stderr and only on a terminal.

stdout carries a command's result, so a bar never goes there; when stderr is not a
terminal (a pipe, a log file, a test) the bar is off and the commands' own progress
lines are all that is written.
"""
from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def bar(iterable: Iterable[T], total: int | None = None, desc: str = "",
        unit: str = "it") -> Iterator[T]:
    """``iterable`` with a progress bar on stderr (off when stderr is not a terminal).

    >>> list(bar(range(3), desc="resamples"))
    [0, 1, 2]
    """
    # disable=None: tqdm turns itself off when the stream is not a terminal
    yield from tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                    disable=None, dynamic_ncols=True, mininterval=0.5)


def counter(total: int, desc: str = "", unit: str = "it") -> tqdm:
    """A bar to ``update(n)`` by hand, for work that is not one loop (a context manager).

    >>> with counter(10, desc="steps") as c:
    ...     _ = c.update(10)
    """
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=None,
                dynamic_ncols=True, mininterval=0.5)
