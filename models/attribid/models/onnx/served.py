"""The served network: one onnxruntime session and the metadata it was exported with."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from attribid.kernels.featurize import FEATURE_SPEC_VERSION, N_FEATURES
from attribid.models.onnx import contract


def shipped_model_path() -> Path:
    """Path of the model committed with the package."""
    return Path(str(resources.files("attribid.models.onnx").joinpath(contract.SHIPPED_MODEL)))


@dataclass(frozen=True)
class ModelInfo:
    path: str
    version: str
    channels: tuple[str, ...]
    max_len: int
    base_rate: float


class Model:
    """Load once, run many: ``run(features, mask)`` -> (conversion, credit, attention)."""

    def __init__(self, path: str | Path, intra_op_threads: int = 1) -> None:
        import onnxruntime as ort  # imported here so the server binds before paying for it

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"model_path: no such file {self.path}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle inference threads must not spin: the event loop needs the other core.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.info = self._read_info()
        self._outputs = list(contract.OUTPUTS)

    def _read_info(self) -> ModelInfo:
        meta = self.session.get_modelmeta().custom_metadata_map
        names = {i.name for i in self.session.get_inputs()}
        if names != {contract.INPUT_FEATURES, contract.INPUT_MASK}:
            raise ValueError(f"model_path: inputs {sorted(names)} do not match the contract")
        try:
            channels = tuple(json.loads(meta[contract.META_CHANNELS]))
            spec = int(meta[contract.META_FEATURE_SPEC])
        except KeyError as exc:
            raise ValueError(f"model_path: metadata {exc.args[0]!r} missing") from None
        if spec != FEATURE_SPEC_VERSION:
            raise ValueError(f"model_path: feature spec {spec}, this server featurizes "
                             f"version {FEATURE_SPEC_VERSION}")
        max_len = int(meta.get(contract.META_MAX_LEN, "64"))
        base = json.loads(meta.get(contract.META_BASE_RATE, '{"base_rate": 0.02}'))
        version = meta.get(contract.META_VERSION) or self._digest()
        return ModelInfo(path=str(self.path), version=version, channels=channels,
                         max_len=max_len, base_rate=float(base.get("base_rate", 0.02)))

    def _digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.path.read_bytes()).hexdigest()[:12]

    def run(self, features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One onnxruntime run over a featurized batch (kernels.featurize layout)."""
        if features.ndim != 3 or features.shape[2] != N_FEATURES:
            raise ValueError(f"features must be [batch, steps, {N_FEATURES}]")
        conv, credit, attention = self.session.run(
            self._outputs, {contract.INPUT_FEATURES: features, contract.INPUT_MASK: mask})
        return conv, credit, attention
