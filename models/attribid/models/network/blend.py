"""The served credit's blend of the network with data-driven Shapley, chosen without truth.

Shapley values are linear in the game, so the Shapley credit of the mixed value function
``w * p_net(S) + (1 - w) * v(S)`` is ``w`` times the network's plus ``1 - w`` times
data-driven Shapley's (v(S): the conversion rate of the journeys whose channel set is S,
attribution.classic.shapley_set_values). The weight ``w`` is the one under which that
mixture best predicts the held-out journeys' conversions (log-likelihood): a choice made on
the user's own journeys, so ``attribid train`` on real data does what it does in an
evaluation.

Served, the blend costs one table lookup: every channel set's data-driven Shapley values
sit in a ``[2 ** C, C]`` table inside the ONNX graph (architecture.AttributionNet), indexed
by the journey's channel bitmask. Needs no PyTorch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribid.kernels.shapley import set_shapley

#: the weights tried, network's share of the served credit
WEIGHT_GRID = tuple(round(0.1 * k, 1) for k in range(11))
#: predictions are clipped to [EPS, 1 - EPS] in the log-likelihood (a set rate can be 0 or 1)
EPS = 1e-6
#: added to every present channel's blended credit: a journey whose credit is all 0 is
#: split evenly instead of credited to nothing
CREDIT_FLOOR = 1e-9


@dataclass(frozen=True)
class BlendChoice:
    """The chosen weight and the held-out log-likelihood per weight tried."""

    weight: float
    log_likelihood: dict[float, float]

    def summary(self) -> dict[str, object]:
        """For the model's metadata."""
        return {"weight": self.weight, "chosen_by": "held-out log-likelihood of the mixture",
                "log_likelihood": {f"{w:.1f}": round(ll, 6)
                                   for w, ll in self.log_likelihood.items()}}


def choose_weight(p_network: np.ndarray, v_set: np.ndarray, converted: np.ndarray,
                  grid: tuple[float, ...] = WEIGHT_GRID) -> BlendChoice:
    """The weight in ``grid`` whose mixture predicts ``converted`` best (ties: the larger).

    ``p_network`` and ``v_set`` are the two predictions of the same held-out journeys.

    >>> y = np.array([1.0, 0.0, 0.0, 1.0])
    >>> choose_weight(np.array([0.9, 0.1, 0.1, 0.9]), np.full(4, 0.5), y).weight
    1.0
    >>> choose_weight(np.full(4, 0.5), np.array([0.9, 0.1, 0.1, 0.9]), y).weight
    0.0
    """
    y = np.asarray(converted, dtype=np.float64)
    scores: dict[float, float] = {}
    for w in grid:
        q = np.clip(w * p_network + (1.0 - w) * v_set, EPS, 1.0 - EPS)
        scores[w] = float(np.mean(y * np.log(q) + (1.0 - y) * np.log1p(-q)))
    best = max(scores.values())
    return BlendChoice(weight=max(w for w, s in scores.items() if s >= best - 1e-12),
                       log_likelihood=scores)


def set_credit_table(v_set: np.ndarray, n_channels: int) -> np.ndarray:
    """Every channel set's data-driven Shapley values, negatives cut to 0: float32 [2 ** C, C].

    Row S holds absolute credit (conversion probability), so it mixes with the network's
    credit scaled by its own gain over the empty journey.

    >>> set_credit_table(np.array([0.0, 0.1, 0.2, 0.5]), 2).astype(float).round(3).tolist()
    [[0.0, 0.0], [0.1, 0.0], [0.0, 0.2], [0.2, 0.3]]
    """
    phi = set_shapley(np.arange(1 << n_channels), v_set, n_channels)
    return np.maximum(phi, 0.0).astype(np.float32)


def blended_credit(credit: np.ndarray, conversion: np.ndarray, masks: np.ndarray,
                   table: np.ndarray, weight: float, baseline: float) -> np.ndarray:
    """The served blend in NumPy (the graph computes the same): rows sum to 1 over present
    channels. ``credit`` [B, C] is the network's own shares, ``conversion`` [B] its output.

    >>> table = set_credit_table(np.array([0.0, 0.1, 0.2, 0.5]), 2)
    >>> blended_credit(np.array([[0.5, 0.5]]), np.array([0.5]), np.array([3]), table,
    ...                0.0, 0.1).round(3).tolist()
    [[0.4, 0.6]]
    """
    present = ((masks[:, None] >> np.arange(table.shape[1])) & 1).astype(np.float64)
    gain = np.maximum(conversion - baseline, 0.0)[:, None]
    phi = weight * credit * gain + (1.0 - weight) * table[masks] + CREDIT_FLOOR * present
    phi *= present
    return phi / np.maximum(phi.sum(axis=1, keepdims=True), 1e-12)

