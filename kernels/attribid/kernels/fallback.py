"""The fallback credit: position-based (40/20/40) over a journey's channels.

Used when the network cannot answer in time. It needs no model and costs a
microsecond, so a caller always gets an answer it can bid on.
"""
from __future__ import annotations

import numpy as np

from .config import jit_nogil
from .classic import position_based_into


@jit_nogil
def _position_based(channel, out):
    out[:] = 0.0
    position_based_into(channel, 0, channel.shape[0], out)


def position_based_credit(channel: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write each channel's position-based share of the credit into ``out``.

    First and last touches get 40 % each, the middle ones share 20 %; one touch
    gets 100 %, two get 50 % each. Shares sum to 1 (0 for an empty journey).

    >>> position_based_credit(np.array([0, 1, 2], np.int32), np.zeros(3)).tolist()
    [0.4, 0.2, 0.4]
    """
    if channel.dtype != np.int32 or channel.ndim != 1:
        raise ValueError("channel must be a 1-D int32 array")
    if out.dtype != np.float64 or out.ndim != 1:
        raise ValueError("out must be a 1-D float64 array")
    if channel.size and (channel.min() < 0 or channel.max() >= out.shape[0]):
        raise ValueError("channel codes must index out")
    _position_based(channel, out)
    return out
