"""Conversions credited to each channel, by any attribution method (the network included)."""
from __future__ import annotations

import numpy as np

from attribid.models.attribution.classic import METHODS, attribute_journeys
from attribid.models.data.journeys import Journeys

#: every method `attribid attribute` offers: the classic models and the network
ALL_METHODS: tuple[str, ...] = (*METHODS, "network")


def channel_credit(journeys: Journeys, method: str, model: str | None = None,
                   **options: float | int) -> dict[str, float]:
    """Conversions credited to each channel by ``method``; ``model`` is the network's
    ONNX file or directory (None: the shipped model) for ``method="network"``.

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 300, seed=1)
    >>> round(sum(channel_credit(j, "linear").values())) == int(j.converted.sum())
    True
    """
    if method == "network":
        # imported here: onnxruntime loads only when the network is asked for
        from attribid.models.attribution.network_credit import network_credit

        credit = network_credit(journeys, model)
    else:
        credit = attribute_journeys(journeys, method, **options)
    totals = np.asarray(credit, dtype=np.float64)[journeys.converted].sum(axis=0)
    return dict(zip(journeys.channels, totals.tolist()))
