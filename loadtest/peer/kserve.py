"""KServe v2 ``ModelInfer`` messages for the peers, built and read without any peer installed.

MLServer and Triton both speak KServe's v2 inference protocol over gRPC
(``inference.GRPCInferenceService/ModelInfer``). The benchmark builds its peer requests in
the project's own venv, so this module describes the few v2 messages it needs in a private
descriptor pool (never the default one, where a peer's own generated stubs would clash).

A journey goes as one row of padded tensors, batch first, so both peers' batchers can stack
rows: ``channel``, ``interaction``, ``device`` INT32 [1, T], ``timestamp`` (epoch seconds)
and ``cost`` FP64 [1, T], ``category`` and ``length`` (touchpoints used of the T) INT32
[1, 1]. T is the longest journey of the request set: every request of one set has the same
shape, and a peer featurizes only the first ``length`` touches of each row, so a batch costs
what attribid's does (padded to the longest journey in it), not T steps.

>>> from loadtest.journeys import generate
>>> reqs = infer_requests(generate(3, seed=0))
>>> sorted(decode_request(reqs[0])["inputs"]) == sorted(INPUTS)
True
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # the peers import unpad() in venvs that need only NumPy for it
    from attribid.models.data.journeys import Journeys

#: input name -> (v2 datatype, NumPy dtype); per-touch inputs are [B, T], the rest [B, 1]
INPUTS: dict[str, tuple[str, type]] = {
    "channel": ("INT32", np.int32), "timestamp": ("FP64", np.float64),
    "interaction": ("INT32", np.int32), "cost": ("FP64", np.float64),
    "device": ("INT32", np.int32), "category": ("INT32", np.int32),
    "length": ("INT32", np.int32),
}
PER_TOUCH = ("channel", "timestamp", "interaction", "cost", "device")
#: v2 datatype -> NumPy dtype, for the outputs a peer answers with
DTYPES = {"INT32": np.int32, "INT64": np.int64, "FP32": np.float32, "FP64": np.float64}


def padded_columns(journeys: Journeys, width: int | None = None) -> dict[str, np.ndarray]:
    """Every input as [J, width] (per touch, zero-padded) or [J, 1]; width: the longest journey.

    >>> from loadtest.journeys import generate
    >>> cols = padded_columns(generate(2, seed=0, length=3), width=5)
    >>> cols["channel"].shape, cols["length"].ravel().tolist()
    ((2, 5), [3, 3])
    """
    lens = journeys.lengths()
    width = int(lens.max()) if width is None else width
    if width < int(lens.max()):
        raise ValueError(f"width {width} is shorter than the longest journey ({lens.max()})")
    rows = np.repeat(np.arange(lens.shape[0]), lens)
    steps = np.arange(int(journeys.offsets[-1])) - np.repeat(journeys.offsets[:-1], lens)
    cols: dict[str, np.ndarray] = {}
    for name in PER_TOUCH:
        grid: np.ndarray = np.zeros((lens.shape[0], width), INPUTS[name][1])
        grid[rows, steps] = getattr(journeys, name)
        cols[name] = grid
    cols["category"] = journeys.category.astype(np.int32).reshape(-1, 1)
    cols["length"] = lens.astype(np.int32).reshape(-1, 1)
    return cols


def unpad(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(offsets, flat per-touch columns) of a batch of padded rows: the featurizer's layout.

    A batch without ``length`` uses every column of each row.

    >>> offsets, flat = unpad({"channel": np.array([[1, 2, 0], [3, 0, 0]]),
    ...                        "length": np.array([[2], [1]])})
    >>> offsets.tolist(), flat["channel"].tolist()
    ([0, 2, 3], [1, 2, 3])
    """
    batch, width = cols["channel"].shape
    lens = (np.asarray(cols["length"]).reshape(batch).astype(np.int64) if "length" in cols
            else np.full(batch, width, np.int64))
    if lens.min(initial=1) < 1 or lens.max(initial=0) > width:
        raise ValueError(f"length must be in [1, {width}], got {lens.tolist()}")
    offsets = np.zeros(batch + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    keep = np.arange(width) < lens[:, None]
    return offsets, {name: np.asarray(cols[name])[keep] for name in PER_TOUCH if name in cols}


@lru_cache(maxsize=1)
def _messages() -> tuple[Any, Any]:
    """(ModelInferRequest, ModelInferResponse) classes of the v2 protocol, fields we use only."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="attribid_loadtest_kserve_v2.proto",
                                               package="inference", syntax="proto3")

    def message(name: str, fields: Sequence[tuple[str, int, Any, Any, str]]) -> None:
        msg = proto.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            msg.field.add(name=fname, number=number, type=ftype, label=label,
                          type_name=type_name or None)

    one, many = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    tensor = [("name", 1, f.TYPE_STRING, one, ""), ("datatype", 2, f.TYPE_STRING, one, ""),
              ("shape", 3, f.TYPE_INT64, many, "")]
    # Typed contents: how a peer may answer when it does not answer in raw bytes.
    message("Contents", [("int_contents", 2, f.TYPE_INT32, many, ""),
                         ("int64_contents", 3, f.TYPE_INT64, many, ""),
                         ("fp32_contents", 6, f.TYPE_FLOAT, many, ""),
                         ("fp64_contents", 7, f.TYPE_DOUBLE, many, "")])
    message("InputTensor", tensor)
    message("OutputTensor", tensor + [("contents", 5, f.TYPE_MESSAGE, one, ".inference.Contents")])
    head = [("model_name", 1, f.TYPE_STRING, one, ""), ("model_version", 2, f.TYPE_STRING, one, ""),
            ("id", 3, f.TYPE_STRING, one, "")]
    message("ModelInferRequest", head + [
        ("inputs", 5, f.TYPE_MESSAGE, many, ".inference.InputTensor"),
        ("raw_input_contents", 7, f.TYPE_BYTES, many, "")])
    message("ModelInferResponse", head + [
        ("outputs", 5, f.TYPE_MESSAGE, many, ".inference.OutputTensor"),
        ("raw_output_contents", 6, f.TYPE_BYTES, many, "")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelInferRequest")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelInferResponse")))


def infer_request(model: str, cols: dict[str, np.ndarray], j: int) -> bytes:
    """The serialized ModelInferRequest for row ``j`` of ``cols`` (a batch of one)."""
    request_cls, _ = _messages()
    req = request_cls(model_name=model, id=f"lt-{j}")
    for name, (datatype, dtype) in INPUTS.items():
        row: np.ndarray = np.ascontiguousarray(cols[name][j], dtype=dtype).reshape(1, -1)
        req.inputs.add(name=name, datatype=datatype, shape=list(row.shape))
        req.raw_input_contents.append(row.tobytes())
    return bytes(req.SerializeToString())


def infer_requests(journeys: Journeys, model: str = "attribid") -> list[bytes]:
    """One serialized request per journey, all padded to the longest journey."""
    cols = padded_columns(journeys)
    return [infer_request(model, cols, j) for j in range(journeys.n_journeys)]


def decode_request(data: bytes) -> dict[str, Any]:
    """A ModelInferRequest's model name and its inputs as NumPy arrays (to check what was sent)."""
    request_cls, _ = _messages()
    req = request_cls.FromString(data)
    inputs = {t.name: np.frombuffer(raw, DTYPES[t.datatype]).reshape(tuple(t.shape))
              for t, raw in zip(req.inputs, req.raw_input_contents)}
    return {"model_name": req.model_name, "inputs": inputs}


def decode_response(data: bytes) -> dict[str, np.ndarray]:
    """A ModelInferResponse's outputs as NumPy arrays by name (raw or typed contents)."""
    _, response_cls = _messages()
    resp = response_cls.FromString(data)
    out = {}
    for k, t in enumerate(resp.outputs):
        dtype = DTYPES[t.datatype]
        if k < len(resp.raw_output_contents):
            values = np.frombuffer(resp.raw_output_contents[k], dtype)
        else:
            field = {np.int32: "int_contents", np.int64: "int64_contents",
                     np.float32: "fp32_contents", np.float64: "fp64_contents"}[dtype]
            values = np.array(getattr(t.contents, field), dtype)
        out[t.name] = values.reshape(tuple(t.shape))
    return out
