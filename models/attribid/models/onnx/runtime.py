"""A loaded attribid ONNX model: onnxruntime session plus its contract metadata.

NumPy and onnxruntime only (never PyTorch), so batch commands and the server
can both use it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from attribid.kernels.featurize import FEATURE_SPEC_VERSION
from attribid.models.onnx import contract


def shipped_model_path() -> str:
    """Path of the shipped model file inside the installed package.

    >>> shipped_model_path().endswith("attribid.onnx")
    True
    """
    return str(resources.files("attribid.models.onnx").joinpath(contract.SHIPPED_MODEL))


@dataclass(frozen=True)
class OnnxModel:
    """An inference session and the metadata the contract requires."""

    #: where the model was loaded from
    path: str
    session: ort.InferenceSession
    #: channel names, index = featurizer channel code = credit column
    channels: tuple[str, ...]
    max_len: int
    version: str
    #: every metadata entry, JSON values decoded
    metadata: dict[str, Any]

    def run(self, features: np.ndarray,
            mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(conversion [B], channel_credit [B, C], attention [B, T]) for featurized journeys.

        >>> # conv, credit, attn = load_model(None).run(features, mask)
        """
        conv, credit, attn = self.session.run(
            list(contract.OUTPUTS),
            {contract.INPUT_FEATURES: features, contract.INPUT_MASK: mask})
        return conv, credit, attn


def load_model(path: str | None = None, threads: int = 1) -> OnnxModel:
    """Load an attribid ONNX model (None = the shipped one), checking its metadata.

    >>> load_model(None).channels[:2]
    ('search', 'display')
    """
    path = shipped_model_path() if path is None else str(path)
    if Path(path).is_dir():
        path = str(Path(path) / "attribid.onnx")
    if not Path(path).is_file():
        raise FileNotFoundError(f"model: no ONNX file at {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    raw = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in (contract.META_CHANNELS, contract.META_FEATURE_SPEC,
                           contract.META_MAX_LEN) if k not in raw]
    if missing:
        raise ValueError(f"model {path}: metadata lacks {missing}")
    spec = int(raw[contract.META_FEATURE_SPEC])
    if spec != FEATURE_SPEC_VERSION:
        raise ValueError(f"model {path}: feature spec {spec}, this featurizer is "
                         f"{FEATURE_SPEC_VERSION}")
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            metadata[key] = value
    return OnnxModel(path=path, session=session, channels=tuple(metadata[contract.META_CHANNELS]),
                     max_len=int(raw[contract.META_MAX_LEN]),
                     version=str(raw.get(contract.META_VERSION, "")), metadata=metadata)
