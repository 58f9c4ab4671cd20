"""Spend -> outcome response curves: value, marginal and curvature, in Numba.

A channel's curve is a kind code and three parameters ``(top, shape, slope)``:

* ``HILL``: ``top * x**slope / (shape**slope + x**slope)`` (``shape`` is the half-saturation spend);
* ``EXPONENTIAL``: ``top * (1 - exp(-x / shape))`` (``slope`` unused);
* ``NONE``: the zero curve (a channel with no impressions curve, say).

The scalar functions are compiled (``attribid.kernels.config``) so the allocation, DP and bidding
kernels inline them.
Fitting curves to reported outcomes lives in ``attribid.kernels.fitting``.
"""
from __future__ import annotations

import math

import numpy as np

from attribid.kernels.config import jit_nogil

NONE = 0
HILL = 1
EXPONENTIAL = 2
#: curve name in a spec -> kind code
KINDS: dict[str, int] = {"hill": HILL, "exponential": EXPONENTIAL}


@jit_nogil
def curve_value(kind: int, top: float, shape: float, slope: float, x: float) -> float:
    """Outcome at spend ``x`` (0 for x <= 0)."""
    if x <= 0.0 or kind == NONE:
        return 0.0
    if kind == HILL:
        r = (x / shape) ** slope
        return top * r / (1.0 + r)
    return -top * math.expm1(-x / shape)


@jit_nogil
def curve_marginal(kind: int, top: float, shape: float, slope: float, x: float) -> float:
    """d outcome / d spend at ``x``; +inf at 0 for a Hill slope below 1."""
    if kind == NONE:
        return 0.0
    if kind == HILL:
        if x <= 0.0:
            if slope < 1.0:
                return np.inf
            return top / shape if slope == 1.0 else 0.0
        r = (x / shape) ** slope
        return top * slope * r / (x * (1.0 + r) * (1.0 + r))
    return top / shape * math.exp(-max(x, 0.0) / shape)


@jit_nogil
def curve_curvature(kind: int, top: float, shape: float, slope: float, x: float) -> float:
    """Second derivative at ``x`` (used by Newton steps; -inf near 0 for slope < 1)."""
    if kind == NONE:
        return 0.0
    if kind == HILL:
        if x <= 0.0:
            return -np.inf if slope <= 1.0 else 0.0
        r = (x / shape) ** slope
        first = curve_marginal(kind, top, shape, slope, x)
        return first / x * ((slope - 1.0) - 2.0 * slope * r / (1.0 + r))
    return -top / (shape * shape) * math.exp(-max(x, 0.0) / shape)


@jit_nogil
def curve_derivatives(kind: int, top: float, shape: float, slope: float, x: float) -> tuple[float, float]:
    """(marginal, curvature) at ``x`` sharing one power or exponential (Newton's hot path)."""
    if kind == HILL and x > 0.0:
        r = (x / shape) ** slope
        first = top * slope * r / (x * (1.0 + r) * (1.0 + r))
        return first, first / x * ((slope - 1.0) - 2.0 * slope * r / (1.0 + r))
    if kind == EXPONENTIAL:
        first = top / shape * math.exp(-max(x, 0.0) / shape)
        return first, -first / shape
    return (curve_marginal(kind, top, shape, slope, x), curve_curvature(kind, top, shape, slope, x))


@jit_nogil
def _values(kind, params, x, out):
    for i in range(x.shape[0]):
        out[i] = curve_value(kind[i], params[i, 0], params[i, 1], params[i, 2], x[i])


@jit_nogil
def _marginals(kind, params, x, out):
    for i in range(x.shape[0]):
        out[i] = curve_marginal(kind[i], params[i, 0], params[i, 1], params[i, 2], x[i])


def check_curves(kind: np.ndarray, params: np.ndarray, n: int, what: str = "curves") -> None:
    """Raise ValueError unless ``kind`` is int64 [n] and ``params`` float64 [n, 3] with valid values."""
    if kind.dtype != np.int64 or kind.shape != (n,):
        raise ValueError(f"{what}.kind: expected int64 [{n}], got {kind.dtype} {kind.shape}")
    if params.dtype != np.float64 or params.shape != (n, 3):
        raise ValueError(f"{what}.params: expected float64 [{n}, 3], got {params.dtype} {params.shape}")
    used = kind != NONE
    if not bool(((kind >= NONE) & (kind <= EXPONENTIAL)).all()):
        raise ValueError(f"{what}.kind: codes must be {NONE}, {HILL} or {EXPONENTIAL}")
    p = params[used]
    if not np.all(np.isfinite(p)) or np.any(p[:, 0] < 0) or np.any(p[:, 1] <= 0):
        raise ValueError(f"{what}.params: top must be >= 0 and shape > 0, all finite")
    if np.any(p[kind[used] == HILL][:, 2] <= 0):
        raise ValueError(f"{what}.params: a Hill slope must be > 0")


def values(kind: np.ndarray, params: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each channel's outcome at its spend.

    >>> values(np.array([2]), np.array([[10.0, 5.0, 0.0]]), np.array([5.0])).round(3)
    array([6.321])
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    check_curves(kind, params, x.shape[0])
    out = np.empty_like(x)
    _values(kind, params, x, out)
    return out


def marginals(kind: np.ndarray, params: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each channel's marginal outcome per unit of spend at its spend.

    >>> marginals(np.array([1]), np.array([[10.0, 5.0, 1.0]]), np.array([5.0]))
    array([0.5])
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    check_curves(kind, params, x.shape[0])
    out = np.empty_like(x)
    _marginals(kind, params, x, out)
    return out


def is_concave(kind: np.ndarray, params: np.ndarray) -> bool:
    """True when every curve is concave on x >= 0 (Hill slopes <= 1 or exponential).

    >>> is_concave(np.array([1, 2]), np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 0.0]]))
    False
    """
    return not bool(np.any((kind == HILL) & (params[:, 2] > 1.0)))
