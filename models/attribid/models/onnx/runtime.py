"""The one way attribid loads an ONNX model: session options, contract check, shipped path.

The server, the batch commands, the benchmark's in-process floor and the MLServer peer all
load through ``load_model`` (or ``OnnxModel``), so all of them run the network with the same
onnxruntime settings and refuse the same bad files. NumPy and onnxruntime only (never
PyTorch); onnxruntime is imported when a model is loaded, so the server binds its port
before paying for that import.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from attribid.kernels.featurize import FEATURE_SPEC_VERSION, N_FEATURES
from attribid.kernels.taxonomy import MAX_CHANNELS
from attribid.models.onnx import contract

if TYPE_CHECKING:
    import onnxruntime as ort

#: conversion rate a fallback assumes when the model's metadata gives none
DEFAULT_BASE_RATE = 0.02
#: the file name looked for when a model path is a folder
MODEL_FILE = contract.MODEL_FILE


def shipped_model_path() -> str:
    """Path of the model committed with the package.

    >>> shipped_model_path().endswith("attribid.onnx")
    True
    """
    return str(resources.files("attribid.models.onnx").joinpath(contract.SHIPPED_MODEL))


def session_options(intra_op_threads: int = 1) -> ort.SessionOptions:
    """onnxruntime options for every session attribid opens.

    ``intra_op_threads`` threads inside an operator, one graph thread, operators run in
    order, every graph optimisation on.

    >>> session_options(2).intra_op_num_threads
    2
    """
    import onnxruntime as ort

    if intra_op_threads < 1:
        raise ValueError(f"intra_op_threads: must be >= 1, got {intra_op_threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle inference threads must not spin: in the server the event loop needs the other core.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


@dataclass(frozen=True)
class ModelInfo:
    """What the contract requires of a model's metadata, read and checked."""

    #: the file the model was loaded from
    path: str
    #: the metadata's version string, or the file's digest ("sha256:" + 12 hex) if it has none
    version: str
    #: channel names, index = featurizer channel code = credit column
    channels: tuple[str, ...]
    #: longest journey the model was trained on; serving keeps the most recent touches
    max_len: int
    #: conversion rate the fallback answers with
    base_rate: float
    #: every metadata entry, JSON values decoded
    metadata: dict[str, Any] = field(repr=False)

    @property
    def precision(self) -> str:
        """"int8" for a quantized variant, else "float32"."""
        return str(self.metadata.get(contract.META_PRECISION) or "float32")

    @property
    def parity_passed(self) -> bool:
        """Whether the model's int8 parity gate passed (False when it has none)."""
        gate = self.metadata.get(contract.META_PARITY)
        return isinstance(gate, dict) and gate.get("passed") is True


def _fail(path: str, message: str) -> ValueError:
    return ValueError(f"model_path: {path}: {message}")


def read_info(session: ort.InferenceSession, path: str) -> ModelInfo:
    """Check ``session``'s inputs, outputs and metadata against the contract; ValueError naming
    ``model_path`` and the file otherwise.

    >>> import onnxruntime as ort
    >>> path = shipped_model_path()
    >>> read_info(ort.InferenceSession(path, providers=["CPUExecutionProvider"]), path).max_len
    64
    """
    inputs = {i.name for i in session.get_inputs()}
    if inputs != {contract.INPUT_FEATURES, contract.INPUT_MASK}:
        raise _fail(path, f"inputs {sorted(inputs)} do not match the contract "
                          f"({contract.INPUT_FEATURES!r}, {contract.INPUT_MASK!r})")
    outputs = {o.name: o.shape for o in session.get_outputs()}
    absent = [name for name in contract.OUTPUTS if name not in outputs]
    if absent:
        raise _fail(path, f"outputs lack {absent}")
    raw = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in (contract.META_CHANNELS, contract.META_FEATURE_SPEC,
                           contract.META_MAX_LEN) if k not in raw]
    if missing:
        raise _fail(path, f"metadata lacks {missing}")
    metadata = decode_metadata(raw)
    channels = metadata[contract.META_CHANNELS]
    if (not isinstance(channels, list) or not 1 <= len(channels) <= MAX_CHANNELS
            or not all(isinstance(c, str) and c for c in channels)
            or len(set(channels)) != len(channels)):
        raise _fail(path, f"{contract.META_CHANNELS} must be a JSON list of 1 to {MAX_CHANNELS} "
                          f"distinct names, got {raw[contract.META_CHANNELS]!r}")
    width = outputs[contract.OUTPUT_CREDIT][-1] if outputs[contract.OUTPUT_CREDIT] else None
    if isinstance(width, int) and width != len(channels):
        raise _fail(path, f"{contract.OUTPUT_CREDIT} has {width} columns for "
                          f"{len(channels)} channels")
    spec = metadata[contract.META_FEATURE_SPEC]
    if spec != FEATURE_SPEC_VERSION:
        raise _fail(path, f"feature spec {spec}, this featurizer is version {FEATURE_SPEC_VERSION}")
    max_len = metadata[contract.META_MAX_LEN]
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise _fail(path, f"{contract.META_MAX_LEN} must be an integer >= 1, got {max_len!r}")
    base = metadata.get(contract.META_BASE_RATE, {"base_rate": DEFAULT_BASE_RATE})
    rate = base.get("base_rate", DEFAULT_BASE_RATE) if isinstance(base, dict) else None
    if (isinstance(rate, bool) or not isinstance(rate, (int, float))
            or not (math.isfinite(rate) and 0.0 <= rate <= 1.0)):
        raise _fail(path, f"{contract.META_BASE_RATE} must be {{\"base_rate\": p}} with p in "
                          f"[0, 1], got {raw.get(contract.META_BASE_RATE)!r}")
    version = str(raw.get(contract.META_VERSION) or "") or file_digest(path)
    return ModelInfo(path=path, version=version, channels=tuple(channels), max_len=max_len,
                     base_rate=float(rate), metadata=metadata)


def decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """Metadata entries with JSON values decoded (a plain string stays as it is).

    >>> decode_metadata({"attribid.max_len": "64", "attribid.model_version": "v1"})
    {'attribid.max_len': 64, 'attribid.model_version': 'v1'}
    """
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            metadata[key] = value
    return metadata


def file_digest(path: str | Path) -> str:
    """"sha256:" and the first 12 hex digits of the file's SHA-256: a version for a model
    without one, and the link from an int8 variant to the float32 file it came from."""
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


class OnnxModel:
    """Load once, run many: an onnxruntime session and its checked contract metadata.

    ``info`` holds the metadata; ``channels``, ``max_len``, ``version``, ``base_rate`` and
    ``metadata`` read the same fields.

    >>> model = OnnxModel(shipped_model_path())
    >>> model.info.channels[:2], model.max_len
    (('search', 'display'), 64)
    """

    def __init__(self, path: str | Path, intra_op_threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = str(path)
        if not Path(self.path).is_file():
            raise FileNotFoundError(f"model_path: no ONNX file at {self.path}")
        try:
            self.session = ort.InferenceSession(self.path, sess_options=session_options(
                intra_op_threads), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's error classes derive from Exception alone
            raise ValueError(f"model_path: {self.path} is not a loadable ONNX model: "
                             f"{exc}") from exc
        self.info = read_info(self.session, self.path)
        self._outputs = list(contract.OUTPUTS)

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names, index = featurizer channel code = credit column."""
        return self.info.channels

    @property
    def max_len(self) -> int:
        """Longest journey the model was trained on."""
        return self.info.max_len

    @property
    def version(self) -> str:
        """The model's version string (or its file digest)."""
        return self.info.version

    @property
    def base_rate(self) -> float:
        """Conversion rate the fallback answers with."""
        return self.info.base_rate

    @property
    def metadata(self) -> dict[str, Any]:
        """Every metadata entry, JSON values decoded."""
        return self.info.metadata

    def run(self, features: np.ndarray,
            mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(conversion [B], channel_credit [B, C], attention [B, T]) for featurized journeys.

        ``features`` float32 [B, T, 64] and ``mask`` float32 [B, T], the featurizer's layout.

        >>> model = load_model(None)
        >>> conv, credit, attn = model.run(np.zeros((2, 3, 64), np.float32),
        ...                                np.ones((2, 3), np.float32))
        >>> conv.shape, credit.shape, attn.shape
        ((2,), (2, 7), (2, 3))
        """
        if features.ndim != 3 or features.shape[2] != N_FEATURES:
            raise ValueError(f"features must be [batch, steps, {N_FEATURES}], got {features.shape}")
        conv, credit, attention = self.session.run(
            self._outputs, {contract.INPUT_FEATURES: features, contract.INPUT_MASK: mask})
        return conv, credit, attention


def load_model(path: str | Path | None = None, threads: int = 1,
               prefer_int8: bool = False) -> OnnxModel:
    """Load an attribid ONNX model, checking its contract.

    ``path`` None or "" is the shipped model; a folder means its ``attribid.onnx``.
    ``threads`` is onnxruntime's intra-op thread count. With ``prefer_int8`` (the server's
    rule) the shipped model or a folder means its ``attribid.int8.onnx`` instead, when that
    file is there and ``int8_refusal`` finds nothing against it; a file path is loaded as
    given either way.

    >>> load_model(None).channels[:2]
    ('search', 'display')
    >>> load_model(None, prefer_int8=True).version
    'attribid-net-1+sim-mix-seed7-int8'
    """
    folder = model_folder(path)
    if folder is None:
        return OnnxModel(Path(str(path)), threads)
    float32 = folder / contract.MODEL_FILE
    int8 = folder / contract.INT8_MODEL_FILE
    if prefer_int8 and int8.is_file():
        model = OnnxModel(int8, threads)
        if not int8_refusal(model.info, float32):
            return model
    return OnnxModel(float32, threads)


def model_folder(path: str | Path | None) -> Path | None:
    """The folder a model path names (None or "" is the shipped model's), or None for a file.

    >>> model_folder(None) == Path(shipped_model_path()).parent, model_folder("m.onnx")
    (True, None)
    """
    if not path:
        return Path(shipped_model_path()).parent
    return Path(path) if Path(path).is_dir() else None


def int8_refusal(info: ModelInfo, float32: str | Path) -> str:
    """Why an int8 variant must not stand in for the float32 model at ``float32``; "" if it may.

    It must say it is int8, its parity gate must have passed, and it must have been quantized
    from the float32 file there now (a retrained float32 model leaves an old variant stale).

    >>> import onnxruntime as ort
    >>> path = shipped_model_path()
    >>> int8_refusal(read_info(ort.InferenceSession(path, providers=["CPUExecutionProvider"]),
    ...                        path), path)
    'not an int8 variant'
    """
    if info.precision != "int8":
        return "not an int8 variant"
    if not info.parity_passed:
        return "its parity gate did not pass"
    source = info.metadata.get(contract.META_QUANTIZED_FROM)
    if Path(float32).is_file() and source != file_digest(float32):
        return f"quantized from {source}, the float32 model is now {file_digest(float32)}"
    return ""
