"""Export a trained AttributionNet to ONNX with the metadata models.contract names.

Writes ``attribid.onnx`` (metadata in ``metadata_props``) and ``attribid.json``
(the same metadata, human readable, structured values decoded) side by side.
Uses PyTorch, so only training commands import it.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch

from attribid.kernels.featurize import FEATURE_SPEC_VERSION, N_FEATURES
from attribid.models.onnx import contract
from attribid.models.network.architecture import AttributionNet

OPSET = 17
MODEL_FILE = "attribid.onnx"
METADATA_FILE = "attribid.json"


def build_metadata(channels: tuple[str, ...] | list[str], max_len: int, version: str,
                   training: dict[str, Any], metrics: dict[str, Any],
                   base_rate: float) -> dict[str, str]:
    """The contract's metadata keys, all values as strings (JSON where structured).

    >>> m = build_metadata(["search"], 64, "v1", {}, {}, 0.1)
    >>> m["attribid.channels"], m["attribid.max_len"]
    ('["search"]', '64')
    """
    return {
        contract.META_CHANNELS: json.dumps(list(channels)),
        contract.META_FEATURE_SPEC: str(FEATURE_SPEC_VERSION),
        contract.META_MAX_LEN: str(int(max_len)),
        contract.META_VERSION: version,
        contract.META_TRAINING: json.dumps(training, sort_keys=True),
        contract.META_METRICS: json.dumps(metrics, sort_keys=True),
        contract.META_BASE_RATE: json.dumps({"base_rate": float(base_rate)}),
    }


def export_model(net: AttributionNet, out_dir: str | Path,
                 metadata: dict[str, str]) -> Path:
    """Write out_dir/attribid.onnx and out_dir/attribid.json; returns the ONNX path.

    >>> import tempfile
    >>> meta = build_metadata(["search", "display"], 64, "v1", {}, {}, 0.1)
    >>> with tempfile.TemporaryDirectory() as out:
    ...     path = export_model(AttributionNet(n_channels=2), out, meta)
    ...     path.name, sorted(p.name for p in path.parent.iterdir())
    ('attribid.onnx', ['attribid.json', 'attribid.onnx'])
    """
    missing = [k for k in _required_keys() if k not in metadata]
    if missing:
        raise ValueError(f"metadata is missing keys: {missing}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILE
    was_training = net.training
    net.eval()
    example = (torch.zeros(2, 4, N_FEATURES), torch.ones(2, 4))
    axes = {contract.INPUT_FEATURES: {0: "batch", 1: "steps"},
            contract.INPUT_MASK: {0: "batch", 1: "steps"},
            contract.OUTPUT_CONVERSION: {0: "batch"},
            contract.OUTPUT_CREDIT: {0: "batch"},
            contract.OUTPUT_ATTENTION: {0: "batch", 1: "steps"}}
    tmp = path.with_suffix(".onnx.tmp")
    # The TorchScript exporter needs no extra packages (onnxscript); its deprecation
    # warning says nothing about this model.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, example, str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=[contract.INPUT_FEATURES, contract.INPUT_MASK],
                          output_names=list(contract.OUTPUTS), dynamic_axes=axes,
                          do_constant_folding=True)
    net.train(was_training)
    model = onnx.load(str(tmp))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    tmp.unlink()
    (out_dir / METADATA_FILE).write_text(json.dumps(readable_metadata(metadata), indent=2) + "\n")
    return path


def readable_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """Metadata with JSON-valued entries decoded, for the side-car file.

    >>> readable_metadata({"attribid.max_len": "64", "attribid.model_version": "v1"})
    {'attribid.max_len': 64, 'attribid.model_version': 'v1'}
    """
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _required_keys() -> tuple[str, ...]:
    return (contract.META_CHANNELS, contract.META_FEATURE_SPEC, contract.META_MAX_LEN,
            contract.META_VERSION, contract.META_TRAINING, contract.META_METRICS,
            contract.META_BASE_RATE)
