"""One pass over a journey's numbers to find the first invalid value (Score's validation).

Returns a code and an index instead of raising, so the caller can name the
field; a single compiled loop replaces several NumPy passes on the hot path.
"""
from __future__ import annotations

import math

import numpy as np

from attribid.kernels.config import jit

OK = 0
TIMESTAMP_NOT_POSITIVE = 1
TIMESTAMP_ORDER = 2
TIMESTAMP_FUTURE = 3
COST = 4
INTERACTION = 5
DEVICE = 6


@jit
def first_invalid_kernel(ts_ms, cost, interaction, device, latest_ms, max_device):
    """The compiled check itself, for arrays already shaped and typed: it checks nothing else.

    ``ts_ms`` int64 [n]; ``cost`` float64, ``interaction`` and ``device`` int32, all [n],
    contiguous; returns ``(code, index)`` as ``first_invalid`` (the wrapper that converts and
    checks shapes) does. The validator calls it on the arrays it has just built.

    It holds the GIL: it runs on the event loop's thread for about half a microsecond, and a
    GIL released there goes to the inference thread, for the loop to wait until that thread
    lets go of it again, on every call validated.

    >>> first_invalid_kernel(np.array([5, 6]), np.array([0.0, -1.0]), np.ones(2, np.int32),
    ...                      np.zeros(2, np.int32), 10.0, 3)
    (4, 1)
    """
    n = ts_ms.shape[0]
    for i in range(n):
        if ts_ms[i] <= 0:
            return TIMESTAMP_NOT_POSITIVE, i
        if i > 0 and ts_ms[i] < ts_ms[i - 1]:
            return TIMESTAMP_ORDER, i
        if ts_ms[i] > latest_ms:
            return TIMESTAMP_FUTURE, i
    for i in range(n):
        c = cost[i]
        if not (math.isfinite(c) and c >= 0.0):
            return COST, i
        if interaction[i] != 1 and interaction[i] != 2:
            return INTERACTION, i
        if device[i] < 0 or device[i] > max_device:
            return DEVICE, i
    return OK, -1


def first_invalid(ts_ms: np.ndarray, cost: np.ndarray, interaction: np.ndarray,
                  device: np.ndarray, latest_ms: float, max_device: int) -> tuple[int, int]:
    """(code, index) of the first invalid touchpoint value, or (OK, -1).

    Timestamps (int64 ms) must be positive, non-decreasing and at most
    ``latest_ms``; costs finite and >= 0; interactions 1 or 2; devices in
    [0, max_device]. Timestamp problems are reported before value problems.

    >>> first_invalid(np.array([5, 4]), np.zeros(2), np.ones(2, np.int32), np.zeros(2, np.int32), 10, 3)
    (2, 1)
    """
    n = ts_ms.shape[0]
    for name, arr in (("cost", cost), ("interaction", interaction), ("device", device)):
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},)")
    code, index = first_invalid_kernel(np.ascontiguousarray(ts_ms, np.int64),
                                       np.ascontiguousarray(cost, np.float64),
                                       np.ascontiguousarray(interaction, np.int32),
                                       np.ascontiguousarray(device, np.int32), float(latest_ms),
                                       max_device)
    return int(code), int(index)
