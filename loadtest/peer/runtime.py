"""The peer: an MLServer 1.7.1 runtime serving attribid's ONNX file (runs in .venv-peer).

MLServer has no ONNX runtime of its own, so this one does what attribid's Score
does before attribution and bidding: featurize the journey with the same Numba
featurizer, then one run of the model loaded as attribid loads it
(``attribid.models.onnx.runtime``: the same session options and contract check). Inputs (V2 tensors, batch first, so
MLServer's adaptive batcher can stack them): ``channel`` INT32 [B, T],
``timestamp`` FP64 [B, T] (epoch seconds), ``interaction`` INT32 [B, T],
``cost`` FP64 [B, T], ``device`` INT32 [B, T], ``category`` INT32 [B, 1].
Outputs: ``conversion`` FP32 [B] and ``channel_credit`` FP32 [B, C]. The
journey is scored at the server's clock, as attribid does for
``impression.timestamp_ms = 0``.

    .venv-peer/bin/mlserver start DIR   # DIR holds settings.json + model-settings.json
"""
from __future__ import annotations

import time

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

# attribid is installed in the peer's venv (setup_peer.sh), without its dependencies:
# these two modules need only NumPy, Numba and onnxruntime.
from attribid.kernels.featurize import featurize
from attribid.models.onnx.runtime import load_model


class AttribidOnnxRuntime(MLModel):
    """Featurize + onnxruntime for attribid's model, one call per (batched) request."""

    async def load(self) -> bool:
        extra = self.settings.parameters.extra or {}
        self._model = load_model(self.settings.parameters.uri, int(extra.get("intra_op_threads", 1)))
        self._max_len = self._model.max_len
        # Compile the featurizer now so no request pays for the JIT.
        featurize(np.array([0, 1]), np.zeros(1), np.zeros(1), np.ones(1), np.zeros(1),
                  np.zeros(1, np.int8), np.zeros(1), np.ones(1), self._max_len)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        cols = {inp.name: NumpyCodec.decode_input(inp) for inp in payload.inputs}
        channel = cols["channel"]
        batch, steps = channel.shape
        offsets = np.arange(batch + 1, dtype=np.int64) * steps
        feats, mask, _ = featurize(
            offsets, channel.ravel(), cols["timestamp"].ravel(), cols["interaction"].ravel(),
            cols["cost"].ravel(), cols["device"].ravel(), cols["category"].ravel(),
            np.full(batch, time.time()), self._max_len)
        conversion, credit, _attention = self._model.run(feats, mask)
        return InferenceResponse(
            model_name=self.name, model_version=self.version, id=payload.id,
            outputs=[NumpyCodec.encode_output("conversion", conversion),
                     NumpyCodec.encode_output("channel_credit", credit)],
        )
