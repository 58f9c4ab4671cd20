"""Conversions credited to each channel, by any attribution method (the network included)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from attribid.models.attribution.classic import (
    METHODS, TIMED_METHODS, Totals, totals_for_weights,
)
from attribid.models.data.journeys import Journeys

#: every method `attribid attribute` offers: the classic models and the network
ALL_METHODS: tuple[str, ...] = (*METHODS, "network")
#: what each method does, in one line (as reports name them)
DESCRIPTIONS: dict[str, str] = {
    "last-click": "all credit to the last touch",
    "first-click": "all credit to the first touch",
    "linear": "each touch an equal part",
    "time-decay": "touches weighted by age, halving every half-life",
    "position-based": "40 % first touch, 40 % last, 20 % the middle",
    "markov": "standard Markov: removal effect RE_c / sum(RE) of all conversions "
              "(as ChannelAttribution's markov_model)",
    "markov-per-journey": "each journey split over its own channels by their removal effects",
    "shapley": "data-driven Shapley values over channel sets",
    "network": "the attribution network's credit, one pass per journey",
}
#: methods that need each touch's time, or the touches' features (not in aggregated paths)
TIMED: tuple[str, ...] = (*TIMED_METHODS, "network")


def method_totals(journeys: Journeys, method: str, model: str | None = None,
                  **options: float | int) -> Callable[[np.ndarray | None], Totals]:
    """A function from journey weights (None: one each) to ``method``'s ``Totals``.

    ``model`` is the network's ONNX file or directory (None: the shipped model) for
    ``method="network"``.

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 300, seed=1)
    >>> totals = method_totals(j, "linear")(None)
    >>> round(float(totals.conversions.sum())) == int(j.converted.sum())
    True
    """
    if method != "network":
        return totals_for_weights(journeys, method, **options)
    if options:
        raise ValueError(f"method 'network' takes no option {', '.join(sorted(options))}")
    # imported here: onnxruntime loads only when the network is asked for
    from attribid.models.attribution.network_credit import network_credit

    rows = network_credit(journeys, model)
    counted = journeys.converted.astype(np.float64)

    def totals(weight: np.ndarray | None) -> Totals:
        w = counted if weight is None else counted * np.asarray(weight, dtype=np.float64)
        return Totals(w @ rows, (w * journeys.value) @ rows)
    return totals


def channel_credit(journeys: Journeys, method: str, model: str | None = None,
                   **options: float | int) -> dict[str, float]:
    """Conversions credited to each channel by ``method``; ``model`` is the network's
    ONNX file or directory (None: the shipped model) for ``method="network"``.

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 300, seed=1)
    >>> round(sum(channel_credit(j, "linear").values())) == int(j.converted.sum())
    True
    """
    totals = method_totals(journeys, method, model, **options)(None)
    return dict(zip(journeys.channels, totals.conversions.tolist()))
