"""The peer: an MLServer 1.7.1 runtime serving attribid's ONNX file (runs in .venv-peer).

MLServer has no ONNX runtime of its own, so this one runs ``loadtest.peer.scoring``'s
``PeerScorer``: what attribid's Score does before attribution and bidding (the same Numba
featurizer, then one run of the model loaded as attribid loads it:
``attribid.models.onnx.runtime``, the same session options and contract check). Inputs
(V2 tensors, batch first, so MLServer's adaptive batcher can stack them) as
``loadtest.peer.kserve`` describes them: padded [B, T] per-touch tensors with ``category``
and ``length`` [B, 1]. Outputs: ``conversion`` FP32 [B] and ``channel_credit`` FP32 [B, C].

    .venv-peer/bin/mlserver start DIR   # DIR holds settings.json + model-settings.json
"""
from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

# attribid is installed in the peer's venv (setup_peer.sh), without its dependencies:
# the featurizer and the model loader need only NumPy, Numba and onnxruntime.
from loadtest.peer.scoring import PeerScorer


class AttribidOnnxRuntime(MLModel):
    """Featurize + onnxruntime for attribid's model, one call per (batched) request."""

    async def load(self) -> bool:
        extra = self.settings.parameters.extra or {}
        self._score = PeerScorer(self.settings.parameters.uri,
                                 int(extra.get("intra_op_threads", 1)))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        conversion, credit = self._score({inp.name: NumpyCodec.decode_input(inp)
                                          for inp in payload.inputs})
        return InferenceResponse(
            model_name=self.name, model_version=self.version, id=payload.id,
            outputs=[NumpyCodec.encode_output("conversion", conversion),
                     NumpyCodec.encode_output("channel_credit", credit)],
        )
