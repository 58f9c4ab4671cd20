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
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below
            a = self.w_revenue * self.value_per_conversion + self.w_acquisitions
        if not np.all(np.isfinite(a)):
            raise InvalidProblem("value_per_conversion", "w_revenue * value_per_conversion + "
                                 "w_acquisitions is not finite")
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


class InvalidProblem(ValueError):
    """A problem the solver cannot take (a wrong shape, a negative or non-finite number);
    ``parameter`` names it.

    >>> str(InvalidProblem("budget", "must be finite and >= 0, got inf"))
    'budget: must be finite and >= 0, got inf'
    """

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class Infeasible(ValueError):
    """No allocation satisfies the constraints; ``constraint`` names the one that cannot hold."""

    def __init__(self, constraint: str, message: str) -> None:
        super().__init__(f"{constraint}: {message}")
        self.constraint = constraint


def check_problem(p: Problem) -> int:
    """Validate shapes, dtypes and values (InvalidProblem naming the parameter); return the
    channel count.

    >>> k = np.full(1, 2); c = np.array([[1.0, 1.0, 0.0]])
    >>> Problem(float("inf"), np.ones(1), np.zeros(1), np.ones(1), k, c, np.zeros(1, np.int64),
    ...         np.zeros((1, 3)))
    Traceback (most recent call last):
    attribid.kernels.problem.InvalidProblem: budget: must be finite and >= 0, got inf
    """
    n = p.lo.shape[0]
    for name in ("value_per_conversion", "lo", "hi"):
        a = getattr(p, name)
        if a.dtype != np.float64 or a.shape != (n,) or not np.all(np.isfinite(a)) or np.any(a < 0):
            raise InvalidProblem(name, f"expected finite float64 [{n}] >= 0")
    for kind, params, what in ((p.conv_kind, p.conv_params, "conversions"),
                               (p.imp_kind, p.imp_params, "impressions")):
        try:
            check_curves(kind, params, n, what)
        except ValueError as exc:
            parameter, _, message = str(exc).partition(": ")
            raise InvalidProblem(parameter, message) from None
    for name in ("budget", "w_revenue", "w_acquisitions", "w_exposure", "max_cpa"):
        v = getattr(p, name)
        if not math.isfinite(v) or v < 0:
            raise InvalidProblem(name, f"must be finite and >= 0, got {v}")
    if np.any(p.lo > p.hi):
        raise InvalidProblem(f"channels[{int(np.argmax(p.lo > p.hi))}]", "min > max")
    return n
