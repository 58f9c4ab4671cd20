"""What both peers run per (batched) request: attribid's featurizer, then the served model.

This is what attribid's Score does before attribution and bidding: featurize the
journeys with the same Numba featurizer, then one run of the model loaded as attribid
loads it (``attribid.models.onnx.runtime``: the same session options and contract check).
Journeys are scored at the server's clock, as attribid does for ``impression.timestamp_ms
= 0``. Runs in a peer's venv (NumPy, Numba, onnxruntime and this repository).

>>> score = PeerScorer("")   # the shipped float32 file
>>> conv, credit = score({"channel": np.array([[0, 1]]), "timestamp": np.array([[1e9, 1e9]]),
...                       "interaction": np.ones((1, 2)), "cost": np.zeros((1, 2)),
...                       "device": np.ones((1, 2)), "category": np.array([[1]]),
...                       "length": np.array([[2]])})
>>> conv.shape, credit.shape
((1,), (1, 7))
"""
from __future__ import annotations

import time

import numpy as np

from attribid.kernels.featurize import featurize
from attribid.models.onnx.runtime import load_model
from loadtest.peer.kserve import unpad


class PeerScorer:
    """Load once; each call featurizes a batch of padded rows and runs the model once."""

    def __init__(self, model_path: str, intra_op_threads: int = 1) -> None:
        self.model = load_model(model_path or None, intra_op_threads)
        self.max_len = self.model.max_len
        # Compile the featurizer and warm the session now, so no request pays for either.
        self({"channel": np.zeros((2, 3), np.int32), "timestamp": np.zeros((2, 3)),
              "interaction": np.ones((2, 3), np.int32), "cost": np.zeros((2, 3)),
              "device": np.ones((2, 3), np.int32), "category": np.zeros((2, 1), np.int32),
              "length": np.array([[3], [1]], np.int32)})

    def __call__(self, cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(conversion [B], channel_credit [B, C]) for a batch of padded rows (``kserve``'s)."""
        offsets, flat = unpad(cols)
        batch = offsets.shape[0] - 1
        feats, mask, _ = featurize(
            offsets, flat["channel"], flat["timestamp"], flat["interaction"], flat["cost"],
            flat["device"], np.asarray(cols["category"]).reshape(batch),
            np.full(batch, time.time()), self.max_len)
        conversion, credit, _attention = self.model.run(feats, mask)
        return conversion, credit
