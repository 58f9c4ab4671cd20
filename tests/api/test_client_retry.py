"""attribid.client's retries against a real gRPC server on port 0 that answers each method's
first calls with a chosen status: what is retried, what is not, and that a retry is the
same request.

The server here is a bare grpc.Server with the Attribution service, not attribid's: the
statuses under test (a CANCELLED from a server shutting down, an UNAVAILABLE from a
draining one) come from moments attribid's own server cannot be stopped at on demand.
"""
from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from attribid.client import Client
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc

JOURNEY = [{"channel": "search", "timestamp": 1764300000, "interaction": "click"}]


class Flaky(pb_grpc.AttributionServicer):
    """Fails the first ``failures`` calls of each method with ``code``, then answers."""

    def __init__(self, code: grpc.StatusCode, failures: int) -> None:
        self.code, self.failures = code, failures
        self.seen: dict[str, list[bytes]] = {"Score": [], "ReportOutcomes": []}

    def _fail_first(self, name: str, request, context) -> None:
        self.seen[name].append(request.SerializeToString())
        if len(self.seen[name]) <= self.failures:
            context.abort(self.code, f"{name} attempt {len(self.seen[name])}")

    def Score(self, request, context):
        self._fail_first("Score", request, context)
        return pb.ScoreResponse(request_id=request.request_id, model_version="flaky")

    def ReportOutcomes(self, request, context):
        self._fail_first("ReportOutcomes", request, context)
        return pb.ReportOutcomesResponse(accepted=len(request.outcomes))


@pytest.fixture
def serve():
    servers: list[grpc.Server] = []

    def start(code: grpc.StatusCode, failures: int) -> tuple[str, Flaky]:
        servicer = Flaky(code, failures)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        pb_grpc.add_AttributionServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", servicer

    yield start
    for server in servers:
        server.stop(None)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED])
def test_score_and_reports_are_retried_on_a_status_that_means_nothing_ran(serve, code) -> None:
    address, servicer = serve(code, failures=2)
    with Client(address, timeout=5, retries=2) as client:
        assert client.score(JOURNEY, request_id="r1").model_version == "flaky"
        assert client.report_outcomes("c", "b1", {"search": {"spend": 1.0}}).accepted == 1
    for name in ("Score", "ReportOutcomes"):
        attempts = servicer.seen[name]
        assert len(attempts) == 3 and len(set(attempts)) == 1, name  # the same request again


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.PERMISSION_DENIED])
def test_refusals_are_not_retried(serve, code) -> None:
    address, servicer = serve(code, failures=1)
    with Client(address, timeout=5, retries=2) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.score(JOURNEY)
    assert caught.value.code() == code and len(servicer.seen["Score"]) == 1


def test_the_retry_budget_ends_with_the_last_status(serve) -> None:
    address, servicer = serve(grpc.StatusCode.CANCELLED, failures=5)
    with Client(address, timeout=5, retries=2) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.score(JOURNEY)
    assert caught.value.code() == grpc.StatusCode.CANCELLED
    assert "attempt 3" in caught.value.details() and len(servicer.seen["Score"]) == 3
