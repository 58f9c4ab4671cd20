"""ReloadModel over gRPC: the new model answers the next calls, a bad one never does, and
health stays SERVING."""
from __future__ import annotations

import json
import os
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from attribid.client import score_request
from attribid.models.onnx import contract
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from tests.batch.test_onnx_runtime import variant
from tests.serverproc import InProcessServer

CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")


def journey(n: int = 6):
    now = time.time()
    return [{"channel": CHANNELS[i % 7], "timestamp": now - 3600 + 60 * i,
             "interaction": "click"} for i in range(n)]


@pytest.fixture
def live(tmp_path):
    path = tmp_path / "attribid.onnx"
    os.replace(variant(tmp_path, meta={contract.META_VERSION: "v1"}), path)
    return path


def test_reload_model_swaps_in_the_file_and_refuses_a_bad_one_in_band(tmp_path, live):
    with InProcessServer(model_path=str(live)) as srv, grpc.insecure_channel(srv.address) as ch:
        stub = pb_grpc.AttributionStub(ch)
        health = health_pb2_grpc.HealthStub(ch)

        def version() -> str:
            reply = stub.Score(score_request(journey()), timeout=10)
            assert not reply.fallback
            return reply.model_version

        def streamed() -> set[str]:
            replies = stub.ScoreStream(iter([score_request(journey())] * 3), timeout=10)
            return {r.model_version for r in replies}

        assert version() == "v1" and streamed() == {"v1"}
        os.replace(variant(tmp_path, "v2.onnx", meta={contract.META_VERSION: "v2"}), live)
        done = stub.ReloadModel(pb.ReloadModelRequest(), timeout=60)
        assert (done.old_version, done.new_version, done.reloaded, done.detail) == (
            "v1", "v2", True, "")
        assert version() == "v2" and streamed() == {"v2"}

        broken = tmp_path / "broken.onnx"
        broken.write_bytes(b"\x08\x07 not a model")
        other = variant(tmp_path, "other.onnx", meta={
            contract.META_VERSION: "v3", contract.META_CHANNELS: json.dumps(CHANNELS[::-1])})
        for path, why in ((broken, "not a loadable ONNX model"), (other, "channels"),
                          (tmp_path / "absent", "no ONNX file")):
            refused = stub.ReloadModel(pb.ReloadModelRequest(model_path=str(path)), timeout=60)
            assert not refused.reloaded and refused.old_version == refused.new_version == "v2"
            assert refused.detail.startswith("model_path: ") and why in refused.detail
            assert version() == "v2"
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    (reloaded,) = srv.events("model reloaded")
    assert (reloaded["old_version"], reloaded["new_version"]) == ("v1", "v2")
    failed = srv.events("model reload failed")
    assert [f["level"] for f in failed] == ["error"] * 3
    assert all(f["model_version"] == "v2" and f["detail"] for f in failed)
