"""Campaign state under faults, with real processes: kill -9 mid-report, workers and
replicas sharing a store, one worker killed, Redis stopped under load. Each test ends with
the store's count of outcome batches equal to the reports acknowledged (plus, after a
crash, those that landed without their answer getting out: a retry shows them as
duplicates, so nothing is counted twice)."""
from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import pytest

from attribid.client import outcomes_request, score_request
from attribid.state.store import OUTCOMES, open_store
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from tests.redisproc import RedisServer, free_port
from tests.serverproc import ServerProcess, wait_serving

pytestmark = pytest.mark.slow

ROWS = {"search": {"spend": 1.0, "conversions": 0.1, "revenue": 5.0, "impressions": 40.0},
        "email": {"spend": 1.0, "conversions": 0.1, "revenue": 5.0, "impressions": 40.0}}


def stub(address: str) -> tuple[grpc.Channel, pb_grpc.AttributionStub]:
    # A connection of its own (no shared subchannel pool): the kernel spreads new
    # connections over a group's workers.
    channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
    return channel, pb_grpc.AttributionStub(channel)


def configure(address: str, campaign_id: str = "c1") -> pb.Allocation:
    channel, s = stub(address)
    with channel:
        return s.ConfigureCampaign(pb.ConfigureCampaignRequest(
            campaign_id=campaign_id, budget=50_000.0,
            flight_end_ms=int((time.time() + 7 * 86400) * 1000)), timeout=30)


def stored_batches(url: str, campaign_id: str = "c1") -> int:
    store = open_store(url)
    try:
        n, after = 0, 0
        while events := store.read(after, 5000):
            n += sum(e.kind == OUTCOMES and e.campaign_id == campaign_id for e in events)
            after = events[-1].seq
        return n
    finally:
        store.close()


def wait_state_health(address: str, want: str, timeout: float = 60.0) -> None:
    """Poll the health service ``attribid.state`` until it answers ``want``."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    seen = ""
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while seen != want:
            assert time.monotonic() < deadline, (want, seen)
            status = health.Check(health_pb2.HealthCheckRequest(service="attribid.state"),
                                  timeout=5).status
            seen = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            time.sleep(0.05)


def wait_workers_serving(proc: ServerProcess, n: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while len(proc.events("serving")) < n:
        assert time.monotonic() < deadline, proc.lines[-5:]
        time.sleep(0.05)


def test_kill_9_mid_report_loses_no_acknowledged_report_and_counts_none_twice(tmp_path):
    url = f"sqlite:///{tmp_path}/state.sqlite"
    proc = ServerProcess("--state", url).start()
    wait_serving(proc.address)
    configure(proc.address)
    acked: list[str] = []
    sent: list[str] = []
    stop = threading.Event()

    def report() -> None:
        channel, s = stub(proc.address)
        with channel:
            for i in range(10_000):
                if stop.is_set():
                    return
                batch = f"b{i}"
                sent.append(batch)
                try:
                    s.ReportOutcomes(outcomes_request("c1", batch, ROWS), timeout=5)
                except grpc.RpcError:
                    return  # the server is gone: this one may or may not have landed
                acked.append(batch)

    sender = threading.Thread(target=report)
    sender.start()
    deadline = time.monotonic() + 60
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.005)
    before = configure_free_allocation(proc.address)
    os.kill(proc.proc.pid, signal.SIGKILL)  # mid-stream: the sender is still writing
    proc.wait(10)
    stop.set()
    sender.join(30)
    assert len(acked) >= 60

    again = ServerProcess("--state", url).start()
    try:
        wait_serving(again.address)
        channel, s = stub(again.address)
        with channel:
            after = s.GetAllocation(pb.GetAllocationRequest(campaign_id="c1"), timeout=10)
            assert after.version >= before.version and after.campaign_id == "c1"
            for batch in acked:  # every acknowledged report is there, and only once
                assert s.ReportOutcomes(outcomes_request("c1", batch, ROWS), timeout=10).duplicate
            landed = sum(s.ReportOutcomes(outcomes_request("c1", b, ROWS), timeout=10).duplicate
                         for b in sent[len(acked):])
        # everything sent is now stored exactly once: acknowledged, landed unacknowledged
        # (duplicates on retry) and the rest (counted by the retry)
        assert stored_batches(url) == len(sent)
        assert landed <= len(sent) - len(acked)
    finally:
        again.__exit__()


def configure_free_allocation(address: str) -> pb.Allocation:
    channel, s = stub(address)
    with channel:
        return s.GetAllocation(pb.GetAllocationRequest(campaign_id="c1"), timeout=10)


def state_url(kind: str, tmp_path, redis: RedisServer | None) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/state.sqlite"
    assert redis is not None
    redis.flush()
    return redis.url


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_two_workers_agree_on_campaigns_and_count_a_batch_once(kind, tmp_path, redis_server):
    url = state_url(kind, tmp_path, redis_server)
    address = f"127.0.0.1:{free_port()}"
    with ServerProcess("--workers", "2", "--address", address, "--state", url) as proc:
        wait_workers_serving(proc, 2)
        configure(address)
        found, counted = 0, 0
        for _ in range(20):  # fresh connections, spread over both workers
            channel, s = stub(address)
            with channel:
                found += s.GetAllocation(pb.GetAllocationRequest(campaign_id="c1"),
                                         timeout=10).campaign_id == "c1"
                counted += not s.ReportOutcomes(outcomes_request("c1", "one-batch", ROWS),
                                                timeout=10).duplicate
        assert (found, counted) == (20, 1)
        assert stored_batches(url) == 1


def test_two_servers_on_one_redis_share_campaigns_batches_and_allocations(redis_server):
    url = state_url("redis", None, redis_server)
    with ServerProcess("--state", url, "--resolve-period-s", "0.2") as a, \
            ServerProcess("--state", url, "--resolve-period-s", "0.2") as b:
        wait_serving(a.address), wait_serving(b.address)
        configure(a.address)
        ca, sa = stub(a.address)
        cb, sb = stub(b.address)
        with ca, cb:
            assert sb.GetAllocation(pb.GetAllocationRequest(campaign_id="c1"), timeout=10).version
            assert not sa.ReportOutcomes(outcomes_request("c1", "x", ROWS), timeout=10).duplicate
            assert sb.ReportOutcomes(outcomes_request("c1", "x", ROWS), timeout=10).duplicate
            for i in range(30):  # evidence enough for a re-solve by whichever holds the lease
                (sa if i % 2 else sb).ReportOutcomes(outcomes_request("c1", f"e{i}", ROWS),
                                                     timeout=10)
            # Both end up with the same published allocation (a generous bound: a shared
            # machine; the store's own pick-up is a quarter of a second).
            deadline = time.monotonic() + 30
            while True:
                va = sa.GetAllocation(pb.GetAllocationRequest(campaign_id="c1"), timeout=10)
                vb = sb.GetAllocation(pb.GetAllocationRequest(campaign_id="c1"), timeout=10)
                if va.version == vb.version and va.version > 1:
                    break
                assert time.monotonic() < deadline, (va.version, vb.version)
                time.sleep(0.05)
            assert dict(va.spend) == dict(vb.spend) and va.solved_at_ms == vb.solved_at_ms
        assert stored_batches(url) == 31


def test_one_of_two_workers_killed_mid_report_loses_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/state.sqlite"
    address = f"127.0.0.1:{free_port()}"
    with ServerProcess("--workers", "2", "--address", address, "--state", url) as proc:
        wait_workers_serving(proc, 2)
        configure(address)
        victim = proc.events("serving")[0]["pid"]
        acked: set[str] = set()
        for i in range(120):
            if i == 40:
                os.kill(victim, signal.SIGKILL)
            batch = f"w{i}"
            for _ in range(50):  # a client's retries: the batch id makes each repeat harmless
                channel, s = stub(address)
                try:
                    with channel:
                        s.ReportOutcomes(outcomes_request("c1", batch, ROWS), timeout=5)
                    acked.add(batch)
                    break
                except grpc.RpcError as exc:
                    assert exc.code() in (grpc.StatusCode.UNAVAILABLE,
                                          grpc.StatusCode.DEADLINE_EXCEEDED), exc
                    time.sleep(0.05)
        assert len(acked) == 120
        assert stored_batches(url) == 120


def test_redis_stopped_under_load_refuses_writes_keeps_score_and_catches_up(redis_server):
    url = state_url("redis", None, redis_server)
    with ServerProcess("--state", url) as proc:
        wait_serving(proc.address)
        configure(proc.address)
        channel, s = stub(proc.address)
        codes: dict[str, int] = {}
        acked: set[str] = set()
        scores_ok = 0
        journey = [{"channel": "search", "timestamp": time.time() - 60, "interaction": "click"}]
        with channel:
            for i in range(90):
                if i == 20:
                    redis_server.pause()
                if i == 40:
                    wait_state_health(proc.address, "NOT_SERVING")  # the store is away
                    redis_server.resume()
                batch = f"r{i}"
                for _ in range(100):
                    try:
                        s.ReportOutcomes(outcomes_request("c1", batch, ROWS), timeout=5)
                        acked.add(batch)
                        break
                    except grpc.RpcError as exc:
                        codes[exc.code().name] = codes.get(exc.code().name, 0) + 1
                        assert exc.code() is grpc.StatusCode.UNAVAILABLE, exc.details()
                        if 20 <= i < 40:
                            break  # while Redis is away: go on with the next report
                        time.sleep(0.1)
                scores_ok += s.Score(score_request(journey, campaign_id="c1"),
                                     timeout=10).model_version != ""
            for i in range(20, 40):  # the retries of what was refused
                batch = f"r{i}"
                for _ in range(100):
                    try:
                        s.ReportOutcomes(outcomes_request("c1", batch, ROWS), timeout=5)
                        acked.add(batch)
                        break
                    except grpc.RpcError:
                        time.sleep(0.1)
        wait_state_health(proc.address, "SERVING")
        assert len(proc.events("campaign store unavailable; serving from the local copy")) == 1
        assert proc.events("campaign store available again")
        assert codes.get("UNAVAILABLE", 0) > 0  # writes were refused while Redis was stopped
        assert scores_ok == 90                  # Score answered throughout
        assert len(acked) == 90 and stored_batches(url) == 90
