"""Numba compilation flags, defined once for every compiled kernel of attribid.

Two decorators, both ``njit`` (nopython mode) with ``cache=True``: compiled machine code is
kept on disk beside each module, so a server start or a batch command loads it instead of
compiling again. They differ only in who holds the GIL while a kernel runs.

>>> sorted(jit.keywords), sorted(jit_nogil.keywords)
(['cache'], ['cache', 'nogil'])
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from numba import njit

#: Flags shared by every kernel.
FLAGS: dict[str, bool] = {"cache": True}
# A compiled kernel is called like its Python function but is a Numba dispatcher: typed Any.

#: Holds the GIL while it runs: the bid kernel and the serving checks, on the event loop's own
#: thread (well under a microsecond a call, where releasing and taking back the GIL would cost
#: more than they run).
jit: Callable[[Callable[..., Any]], Any] = functools.partial(njit, **FLAGS)

#: Releases the GIL for the whole run: kernels that run beside other Python threads (the
#: server's inference thread, the allocation thread's fits and solves with the response
#: curves they compile in, the idle spinners, the fallback) and batch
#: kernels a caller may spread over threads, so those threads keep running meanwhile.
jit_nogil: Callable[[Callable[..., Any]], Any] = functools.partial(njit, nogil=True, **FLAGS)
