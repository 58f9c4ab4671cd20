"""Bids per impression and the pacing controller.

A channel's bid is the impression's expected objective value priced at the channel's marginal
return under the current allocation, times the pacing multiplier:
``bid_i = pacing * (p_conv * credit_i * per_conv_i + per_imp_i)`` with
``per_conv_i = (w_revenue * value_i + w_acquisitions) / h_i`` and ``per_imp_i = w_exposure / h_i``
(``h_i`` the channel's weighted marginal return per unit of spend at its planned spend). A channel
the allocation funds more is one whose marginal return is lower at its spend; pricing by ``h_i``
makes each channel bid what its next unit of spend is worth under the plan.
Bids are then floored (only when bidding at all) and capped.
"""
from __future__ import annotations

import numpy as np

from attribid.kernels.config import jit

#: layout of the per-campaign ``params`` array read by the bid kernel
PACING, FLOOR, CAP = 0, 1, 2


@jit
def bids_kernel(p_conv, credit, per_conv, per_imp, params, out):
    """The compiled bid kernel itself, for validated input: it checks nothing.

    Arrays as for ``bids_into`` (the checked wrapper): float64 [C] and ``params`` float64 [3];
    ``p_conv`` in [0, 1]. The campaign book calls it per impression with arrays it built and
    checked when the campaign was last solved.

    >>> out = np.zeros(2)
    >>> bids_kernel(0.5, np.array([1.0, 0.0]), np.array([4.0, 4.0]), np.zeros(2),
    ...             np.array([1.0, 0.0, 0.0]), out)
    >>> out.tolist()
    [2.0, 0.0]
    """
    pacing = params[PACING]
    floor = params[FLOOR]
    cap = params[CAP]
    for i in range(out.shape[0]):
        v = pacing * (p_conv * credit[i] * per_conv[i] + per_imp[i])
        if v > 0.0:
            if v < floor:
                v = floor
            if cap > 0.0 and v > cap:
                v = cap
        else:
            v = 0.0
        out[i] = v


def bids_into(p_conv: float, credit: np.ndarray, per_conv: np.ndarray, per_imp: np.ndarray,
              params: np.ndarray, out: np.ndarray) -> None:
    """Write each channel's bid into ``out`` (all float64 [C]; ``params`` float64 [3]).

    Checks only what the kernel cannot survive; the per-campaign arrays are checked once
    when they are built.

    >>> out = np.zeros(2)
    >>> bids_into(0.5, np.array([1.0, 0.0]), np.array([4.0, 4.0]), np.zeros(2),
    ...           np.array([1.0, 0.0, 0.0]), out)
    >>> out.tolist()
    [2.0, 0.0]
    """
    if not (0.0 <= p_conv <= 1.0):
        raise ValueError(f"conversion_probability: must be in [0, 1], got {p_conv}")
    n = out.shape[0]
    if credit.shape != (n,) or credit.dtype != np.float64 or out.dtype != np.float64:
        raise ValueError(f"credit/out: expected float64 [{n}], got {credit.dtype} {credit.shape}")
    bids_kernel(float(p_conv), credit, per_conv, per_imp, params, out)


def pacing_multiplier(now: float, start: float, end: float, budget: float, spent: float,
                      *, delivery: float = 1.0, limit: float = 10.0) -> float:
    """Bid multiplier: the spend rate still needed over the budget's nominal rate, divided by
    ``delivery`` (spend delivered per unit of multiplier, relative to the nominal rate), in
    [0, limit].

    Under-spending raises it above 1, over-spending lowers it; it is 0 outside the flight and
    once the budget is spent, so a daily budget is neither exhausted early nor left unspent.

    >>> pacing_multiplier(50.0, 0.0, 100.0, 100.0, 25.0)   # half the time, a quarter spent
    1.5
    >>> pacing_multiplier(50.0, 0.0, 100.0, 100.0, 25.0, delivery=0.5)   # a quiet period
    3.0
    """
    if now < start or now >= end or spent >= budget or budget <= 0.0:
        return 0.0
    nominal = budget / (end - start)
    needed = (budget - spent) / (end - now)
    return float(min(max(needed / nominal / max(delivery, 1e-9), 0.0), limit))
