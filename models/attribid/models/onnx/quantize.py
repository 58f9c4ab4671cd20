"""The int8 variant of a model: dynamic quantization, the parity gate, both recorded beside it.

``quantize_beside(DIR/attribid.onnx, journeys)`` writes ``DIR/attribid.int8.onnx`` (weights
int8, activations quantized per call by onnxruntime, so no calibration data) and
``DIR/attribid.int8.json``, each carrying the gate's figures and verdict; the server serves
the variant only when the gate passed (``runtime.load_model(prefer_int8=True)``).
Needs the ``onnx`` package (the train extra); the server never imports this module.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from attribid.models.data.journeys import Journeys
from attribid.models.onnx import contract
from attribid.models.onnx.parity import ParityBounds, measure_parity
from attribid.models.onnx.runtime import OnnxModel, decode_metadata, file_digest

#: the side-car file of the int8 variant
INT8_METADATA_FILE = "attribid.int8.json"
#: appended to the float32 model's version, so every response and log line says which served
INT8_VERSION_SUFFIX = "-int8"

#: the node types whose weights become int8. The Conv stays float32: quantized, it loses
#: onnxruntime's Conv+ReLU fusion and the network ran 15-25 % slower than with it float32
QUANTIZED_OPS = ("MatMul", "Gemm", "LSTM")

Log = Callable[[str], None]


def quantize_file(float32: str | Path, out: str | Path) -> Path:
    """Write the int8 variant of the model at ``float32`` to ``out``: same inputs, outputs and
    metadata, the version suffixed ``-int8``, the source's digest recorded; returns ``out``.

    The weights of the MatMul, Gemm and LSTM nodes become int8 (onnxruntime fuses them into
    DynamicQuantizeMatMul and DynamicQuantizeLSTM at load); the rest stays float32. The
    parity gate is recorded separately (``record_parity``).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    float32, out = Path(float32), Path(out)
    source = OnnxModel(float32).info
    tmp = out.with_name(out.name + ".tmp")
    # The quantizer logs advice on the root logger (pre-process first, tensors it leaves in
    # float): the parity gate measures what it produced, so the advice is silenced.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(str(float32), str(tmp), weight_type=QuantType.QInt8,
                         op_types_to_quantize=list(QUANTIZED_OPS))
    finally:
        logging.disable(previous)
    model = onnx.load(str(tmp))
    meta = {entry.key: entry.value for entry in model.metadata_props}
    meta[contract.META_VERSION] = source.version + INT8_VERSION_SUFFIX
    meta[contract.META_PRECISION] = "int8"
    meta[contract.META_QUANTIZED_FROM] = file_digest(float32)
    _set_metadata(model, meta)
    onnx.save(model, str(tmp))
    tmp.replace(out)
    return out


def record_parity(int8: str | Path, gate: dict[str, Any]) -> None:
    """Store ``gate`` in the int8 file's metadata and write its side-car json beside it."""
    import onnx

    int8 = Path(int8)
    model = onnx.load(str(int8))
    meta = {entry.key: entry.value for entry in model.metadata_props}
    meta[contract.META_PARITY] = json.dumps(gate, sort_keys=True)
    _set_metadata(model, meta)
    onnx.checker.check_model(model)
    tmp = int8.with_name(int8.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(int8)
    (int8.parent / INT8_METADATA_FILE).write_text(
        json.dumps(decode_metadata(meta), indent=2) + "\n")


def quantize_beside(float32: str | Path, journeys: Journeys, ref_time: np.ndarray | None = None,
                    data: str = "", bounds: ParityBounds = ParityBounds(),
                    log: Log = print) -> dict[str, Any]:
    """Quantize ``float32`` to ``attribid.int8.onnx`` beside it, gate it on ``journeys``
    (decision times ``ref_time``; ``data`` names them for the record), record the gate in
    the file and its json, and return the gate.

    A failed gate is not an error: the variant stays on disk, marked failed, and the
    server keeps serving float32.
    """
    float32 = Path(float32)
    int8 = quantize_file(float32, float32.parent / contract.INT8_MODEL_FILE)
    gate = measure_parity(OnnxModel(float32), OnnxModel(int8), journeys, ref_time,
                          bounds, data)
    record_parity(int8, gate)
    verdict = "passed" if gate["passed"] else "FAILED (float32 stays served)"
    log(f"int8 parity gate {verdict}: credit TVD mean {gate['credit_tvd_mean']:.5f}, "
        f"aggregate {gate['credit_tvd_aggregate']:.5f} (bound {bounds.max_credit_tvd}); AUC "
        f"{gate['auc_int8']:.5f} vs {gate['auc_float32']:.5f} (bound {bounds.max_auc_difference}); "
        f"on {gate['journeys']:,} journeys")
    log(f"wrote {int8} ({int8.stat().st_size / 1e6:.2f} MB, float32 "
        f"{float32.stat().st_size / 1e6:.2f} MB)")
    return gate


def _set_metadata(model: Any, meta: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
