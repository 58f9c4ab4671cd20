"""The one ONNX runtime: session options, the metadata contract, the shipped path, its users."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from attribid.models.onnx import contract
from attribid.models.onnx.runtime import (DEFAULT_BASE_RATE, OnnxModel, load_model,
                                          session_options, shipped_model_path)

SHIPPED = Path(shipped_model_path())


def variant(tmp_path: Path, name: str = "m.onnx", meta: dict[str, str | None] | None = None,
            rename_input: str = "", drop_output: str = "") -> Path:
    """A copy of the shipped model with metadata entries set (None removes one) or renamed I/O."""
    model = onnx.load(str(SHIPPED))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in (meta or {}).items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    if rename_input:
        for node in model.graph.node:
            node.input[:] = [rename_input if i == contract.INPUT_MASK else i for i in node.input]
        next(i for i in model.graph.input if i.name == contract.INPUT_MASK).name = rename_input
    if drop_output:
        keep = [o for o in model.graph.output if o.name != drop_output]
        del model.graph.output[:]
        model.graph.output.extend(keep)
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_shipped_model_info_is_its_metadata() -> None:
    model = OnnxModel(SHIPPED)
    meta = {p.key: p.value for p in onnx.load(str(SHIPPED)).metadata_props}
    assert model.info.path == str(SHIPPED) == model.path
    assert model.info.channels == tuple(json.loads(meta[contract.META_CHANNELS]))
    assert model.info.max_len == int(meta[contract.META_MAX_LEN]) == model.max_len
    assert model.info.base_rate == json.loads(meta[contract.META_BASE_RATE])["base_rate"]
    assert model.info.version == meta[contract.META_VERSION] == model.version
    assert model.channels is model.info.channels and model.metadata is model.info.metadata


def test_every_loader_gets_the_same_session_options(tmp_path: Path) -> None:
    opts = session_options(3)
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    # The server's constructor and the batch commands' load_model open the same session.
    for model in (OnnxModel(SHIPPED, 2), load_model(str(SHIPPED.parent), 2)):
        used = model.session.get_session_options()
        assert used.intra_op_num_threads == 2
        assert str(used.execution_mode).endswith("ORT_SEQUENTIAL")
        assert str(used.graph_optimization_level).endswith("ORT_ENABLE_ALL")
        assert used.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(ValueError, match="intra_op_threads"):
        session_options(0)


def test_version_falls_back_to_the_file_digest_and_base_rate_to_the_default(tmp_path) -> None:
    path = variant(tmp_path, meta={contract.META_VERSION: None, contract.META_BASE_RATE: None})
    model = load_model(path)
    assert model.version == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert model.base_rate == DEFAULT_BASE_RATE


@pytest.mark.parametrize("change, message", [
    (dict(meta={contract.META_CHANNELS: None}), "metadata lacks ['attribid.channels']"),
    (dict(meta={contract.META_MAX_LEN: None}), "metadata lacks ['attribid.max_len']"),
    (dict(meta={contract.META_FEATURE_SPEC: "2"}), "feature spec 2, this featurizer is version 1"),
    (dict(meta={contract.META_MAX_LEN: "0"}), "attribid.max_len must be an integer >= 1"),
    (dict(meta={contract.META_MAX_LEN: "true"}), "attribid.max_len must be an integer >= 1"),
    (dict(meta={contract.META_CHANNELS: '["a", "a", "b", "c", "d", "e", "f"]'}), "distinct"),
    (dict(meta={contract.META_CHANNELS: '"search"'}), "JSON list"),
    (dict(meta={contract.META_CHANNELS: '["a", "b"]'}), "channel_credit has 7 columns for 2"),
    (dict(meta={contract.META_BASE_RATE: '{"base_rate": 1.5}'}), "attribid.base_rate"),
    (dict(meta={contract.META_BASE_RATE: "0.1"}), "attribid.base_rate"),
    (dict(rename_input="padding"), "inputs ['features', 'padding'] do not match the contract"),
    (dict(drop_output=contract.OUTPUT_ATTENTION), "outputs lack ['attention']"),
])
def test_a_model_breaking_the_contract_is_refused_naming_the_file(tmp_path, change, message):
    path = variant(tmp_path, **change)
    with pytest.raises(ValueError) as err:
        OnnxModel(path)
    assert str(err.value).startswith(f"model_path: {path}: ")
    assert message in str(err.value)


def test_unreadable_and_missing_files_name_model_path(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not an onnx file")
    with pytest.raises(ValueError, match=f"model_path: {bogus} is not a loadable ONNX model"):
        OnnxModel(bogus)
    with pytest.raises(FileNotFoundError, match=f"model_path: no ONNX file at {tmp_path}/x.onnx"):
        load_model(tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match="attribid.onnx"):
        load_model(tmp_path)  # a folder means the attribid.onnx inside it


def test_run_refuses_features_of_the_wrong_width() -> None:
    model = load_model(None)
    with pytest.raises(ValueError, match="features must be"):
        model.run(np.zeros((1, 2, 63), np.float32), np.ones((1, 2), np.float32))


def test_runtime_imports_only_what_the_peer_venv_has() -> None:
    """The MLServer peer imports this module with attribid installed without dependencies."""
    code = ("import sys\n"
            "from attribid.models.onnx.runtime import load_model\n"
            "load_model(None)\n"
            "bad = {'orjson', 'grpc', 'torch', 'uvloop', 'prometheus_client', 'pyarrow'} & "
            "{m.split('.')[0] for m in sys.modules}\n"
            "ours = sorted(m for m in sys.modules if m.startswith('attribid.') and not "
            "m.startswith(('attribid.kernels', 'attribid.models.onnx')) and m != 'attribid.models')\n"
            "print(sorted(bad), ours)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] []"


def test_the_benchmark_floor_runs_the_model_as_the_server_loads_it() -> None:
    from loadtest.echo_server import forward_pass
    from loadtest.floors import feed, floor_a

    rows = floor_a(str(SHIPPED), steps=4, budget_s=0.01, batches=(1, 3), rounds=1)
    assert [r.batch for r in rows] == [1, 3] and all(r.median_ms > 0 for r in rows)
    conv, credit, attention = forward_pass(str(SHIPPED), steps=4)()
    assert conv.shape == (1,) and credit.shape == (1, 7) and attention.shape == (1, 4)
    features, mask = feed(2, 4)
    assert features.dtype == mask.dtype == np.float32 and features.shape == (2, 4, 64)
    assert 0.0 < float(conv[0]) < 1.0
