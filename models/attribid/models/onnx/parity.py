"""The parity gate an int8 variant must pass before it may be served instead of float32.

Both models score the same evaluation journeys. The gate compares what serving and the
batch commands use: each converting journey's channel credit (total-variation distance,
mean over journeys and on the aggregate shares) and the conversion ranking (AUC).
NumPy and onnxruntime only.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from attribid.models.attribution.network_credit import predict_journeys, to_model_channels
from attribid.models.data.journeys import Journeys
from attribid.models.evaluation.metrics import auc
from attribid.models.onnx.runtime import OnnxModel


@dataclass(frozen=True)
class ParityBounds:
    """How far the int8 variant may move from float32 and still be served.

    >>> ParityBounds().max_credit_tvd, ParityBounds().max_auc_difference
    (0.005, 0.002)
    """

    #: largest total-variation distance of channel credit, per journey (mean) and aggregate
    max_credit_tvd: float = 0.005
    #: largest difference in conversion AUC
    max_auc_difference: float = 0.002

    def __post_init__(self) -> None:
        for name in ("max_credit_tvd", "max_auc_difference"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be finite and >= 0, got {value}")


def journey_tvd(credit: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Total-variation distance between matching rows of two credit arrays [J, C].

    >>> journey_tvd(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([[0.5, 0.5], [0.5, 0.5]]))
    array([0.5, 0. ])
    """
    return 0.5 * np.abs(np.asarray(credit, np.float64) - np.asarray(other, np.float64)).sum(axis=1)


def aggregate_tvd(credit: np.ndarray, other: np.ndarray) -> float:
    """Total-variation distance between the channel shares of two credit arrays' column sums.

    >>> aggregate_tvd(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    0.5
    """
    a = np.asarray(credit, np.float64).sum(axis=0)
    b = np.asarray(other, np.float64).sum(axis=0)
    if a.sum() <= 0 or b.sum() <= 0:
        return float("nan")
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def parity_figures(labels: np.ndarray, conversion: np.ndarray, credit: np.ndarray,
                   candidate_conversion: np.ndarray, candidate_credit: np.ndarray,
                   bounds: ParityBounds = ParityBounds()) -> dict[str, Any]:
    """The gate on predictions already made: figures, bounds and ``passed``.

    Credit is compared on the converting journeys (``labels`` true), AUC on all of them.
    A figure that cannot be computed (no conversions, one class only) fails the gate.

    >>> y = np.array([True, False, True, False])
    >>> p = np.array([0.9, 0.1, 0.8, 0.3]); c = np.array([[1.0, 0], [1, 0], [0.5, 0.5], [1, 0]])
    >>> parity_figures(y, p, c, p, c)["passed"]
    True
    """
    labels = np.asarray(labels, dtype=bool)
    per_journey = journey_tvd(credit[labels], candidate_credit[labels])
    auc_reference = auc(labels, conversion)
    auc_candidate = auc(labels, candidate_conversion)
    figures: dict[str, Any] = {
        "journeys": int(labels.shape[0]),
        "converting": int(labels.sum()),
        "credit_tvd_mean": float(per_journey.mean()) if per_journey.size else float("nan"),
        "credit_tvd_max": float(per_journey.max()) if per_journey.size else float("nan"),
        "credit_tvd_aggregate": aggregate_tvd(credit[labels], candidate_credit[labels]),
        "auc_float32": auc_reference,
        "auc_int8": auc_candidate,
        "auc_difference": abs(auc_candidate - auc_reference),
        "conversion_max_difference": float(np.max(np.abs(
            np.asarray(candidate_conversion, np.float64) - conversion), initial=0.0)),
    }
    checked = {"credit_tvd_mean": bounds.max_credit_tvd,
               "credit_tvd_aggregate": bounds.max_credit_tvd,
               "auc_difference": bounds.max_auc_difference}
    # NaN compares False, so a figure that could not be computed fails here
    figures["passed"] = all(figures[name] <= bound for name, bound in checked.items())
    figures["bounds"] = asdict(bounds)
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in figures.items()}


def measure_parity(reference: OnnxModel, candidate: OnnxModel, journeys: Journeys,
                   ref_time: np.ndarray | None = None, bounds: ParityBounds = ParityBounds(),
                   data: str = "") -> dict[str, Any]:
    """Score ``journeys`` with both models and apply the gate (``parity_figures``).

    ``ref_time`` are the journeys' decision times (default: as the batch commands choose
    them); ``data`` says in words which journeys these are, for the record.
    """
    if reference.channels != candidate.channels or reference.max_len != candidate.max_len:
        raise ValueError(f"model_path: {candidate.path}: channels or max_len differ from "
                         f"{reference.path}")
    picked = to_model_channels(journeys, reference)
    conversion, credit, _ = predict_journeys(reference, picked, ref_time=ref_time)
    candidate_conversion, candidate_credit, _ = predict_journeys(candidate, picked,
                                                                 ref_time=ref_time)
    figures = parity_figures(journeys.converted, conversion, credit, candidate_conversion,
                             candidate_credit, bounds)
    return {"data": data, **figures} if data else figures
