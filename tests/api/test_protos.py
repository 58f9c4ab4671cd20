"""The committed stubs are exactly what the .proto generates."""
from __future__ import annotations

from pathlib import Path

from attribid.api import protogen

V1 = Path(protogen.__file__).parents[1] / "v1"


def test_committed_stubs_match_a_fresh_generation(tmp_path):
    written = protogen.generate(tmp_path)
    assert {p.name for p in written} == {"attribution_pb2.py", "attribution_pb2.pyi",
                                         "attribution_pb2_grpc.py"}
    for path in written:
        committed = V1 / path.name
        assert committed.read_text() == path.read_text(), (
            f"{committed} differs from the .proto: run `make proto`")


def test_every_rpc_is_documented():
    text = (protogen.PROTO_DIR / protogen.PROTO).read_text()
    for rpc in ("Score", "ScoreStream", "ReportOutcomes", "GetAllocation", "ConfigureCampaign"):
        line = next(i for i, l in enumerate(text.splitlines()) if f"rpc {rpc}(" in l)
        assert text.splitlines()[line - 1].strip().startswith("//"), rpc
