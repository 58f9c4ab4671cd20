"""Turn the network's channel credit into shares over the channels each journey has."""
from __future__ import annotations

import math

import numpy as np

from attribid.kernels.config import jit_nogil


@jit_nogil
def shares_over_present_kernel(credit, offsets, channel, out):
    """The compiled share kernel itself, for validated input: it checks nothing.

    Writes ``out`` (float64 [B, C]) from ``credit`` [B, C] for the CSR journeys ``offsets``
    (int64 [B + 1]) / ``channel`` (codes in [0, C)). ``shares_over_present`` is the checked
    wrapper; the server's hot path calls this on the network's output for validated journeys.

    >>> out = np.empty((1, 3))
    >>> shares_over_present_kernel(np.array([[0.2, 0.5, 0.3]], np.float32), np.array([0, 2]),
    ...                            np.array([0, 2], np.int32), out)
    >>> out.round(2).tolist()
    [[0.4, 0.0, 0.6]]
    """
    n_channels = credit.shape[1]
    present = np.zeros(n_channels, np.bool_)
    for b in range(offsets.shape[0] - 1):
        present[:] = False
        for i in range(offsets[b], offsets[b + 1]):
            present[channel[i]] = True
        total = 0.0
        count = 0
        for c in range(n_channels):
            v = np.float64(credit[b, c])
            if present[c]:
                count += 1
            if present[c] and math.isfinite(v) and v > 0.0:
                out[b, c] = v
                total += v
            else:
                out[b, c] = 0.0
        # No usable credit from the network: split evenly over the present channels.
        for c in range(n_channels):
            if total > 0.0:
                out[b, c] /= total
            elif present[c]:
                out[b, c] = 1.0 / count


def shares_over_present(credit: np.ndarray, offsets: np.ndarray, channel: np.ndarray,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Zero each journey's absent channels and renormalise its credit to sum 1 (checked).

    A row with no positive, finite credit on its present channels is split
    evenly over them. ``offsets``/``channel`` are the CSR journeys of the batch.

    >>> shares_over_present(np.array([[0.2, 0.5, 0.3]], np.float32), np.array([0, 2]),
    ...                     np.array([0, 2], np.int32)).round(2).tolist()
    [[0.4, 0.0, 0.6]]
    """
    if credit.ndim != 2 or offsets.shape != (credit.shape[0] + 1,):
        raise ValueError("credit must be [batch, channels] with offsets [batch + 1]")
    channel = np.ascontiguousarray(channel, np.int32)
    if channel.size and (channel.min() < 0 or channel.max() >= credit.shape[1]):
        raise ValueError("channel codes must index credit's columns")
    if out is None:
        out = np.empty(credit.shape, np.float64)
    shares_over_present_kernel(np.ascontiguousarray(credit),
                               np.ascontiguousarray(offsets, np.int64), channel, out)
    return out
