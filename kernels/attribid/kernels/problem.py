"""An allocation problem: budget, per-channel bounds, values and response curves, validated."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attribid.kernels.response import check_curves


@dataclass(frozen=True)
class Problem:
    """One allocation problem over C channels (arrays are float64 [C] unless said)."""

    budget: float
    value_per_conversion: np.ndarray
    lo: np.ndarray
    #: per-channel ceiling, already resolved (no "0 = whole budget" here)
    hi: np.ndarray
    #: int64 [C] and float64 [C, 3]: conversion curves (see attribid.kernels.response)
    conv_kind: np.ndarray
    conv_params: np.ndarray
    imp_kind: np.ndarray
    imp_params: np.ndarray
    w_revenue: float = 1.0
    w_acquisitions: float = 0.0
    w_exposure: float = 0.0
    #: 0 = no ceiling
    max_cpa: float = 0.0

    def __post_init__(self) -> None:
        # Checked once here so that solving the same problem again costs only the kernel.
        check_problem(self)
        a = self.w_revenue * self.value_per_conversion + self.w_acquisitions
        object.__setattr__(self, "_a", a)
        object.__setattr__(self, "_e", np.full(a.shape[0], float(self.w_exposure)))
        object.__setattr__(self, "_hi", np.maximum(np.minimum(self.hi, self.budget), self.lo))

    @property
    def n(self) -> int:
        """Number of channels."""
        return int(self.lo.shape[0])

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel objective weight of a conversion and of an impression."""
        a = self.w_revenue * self.value_per_conversion + self.w_acquisitions
        return a, np.full(a.shape[0], float(self.w_exposure))


class Infeasible(ValueError):
    """No allocation satisfies the constraints; ``constraint`` names the one that cannot hold."""

    def __init__(self, constraint: str, message: str) -> None:
        super().__init__(f"{constraint}: {message}")
        self.constraint = constraint


def check_problem(p: Problem) -> int:
    """Validate shapes, dtypes and values (ValueError naming the field); return the channel count."""
    n = p.lo.shape[0]
    for name in ("value_per_conversion", "lo", "hi"):
        a = getattr(p, name)
        if a.dtype != np.float64 or a.shape != (n,) or not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"{name}: expected finite float64 [{n}] >= 0")
    check_curves(p.conv_kind, p.conv_params, n, "conversions")
    check_curves(p.imp_kind, p.imp_params, n, "impressions")
    for name in ("budget", "w_revenue", "w_acquisitions", "w_exposure", "max_cpa"):
        v = getattr(p, name)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}: must be finite and >= 0, got {v}")
    if np.any(p.lo > p.hi):
        raise ValueError(f"channels[{int(np.argmax(p.lo > p.hi))}]: min > max")
    return n
