"""Campaign books kept in step with a store: restarts, several processes' worth of replicas,
the re-solve lease, and a store that goes away. In process, over real SQLite files and a
real Redis (each ``CampaignState`` here stands for one server process)."""
from __future__ import annotations

import pytest

from attribid.models.campaign.book import CampaignSpec, ChannelSpec, OutcomeRow
from attribid.models.campaign.tenants import TenantBooks
from attribid.models.errors import InvalidArgument, NotFound, Unavailable
from attribid.state.replica import CampaignState
from attribid.state.store import open_store
from tests.redisproc import RedisServer

CHANNELS = ("search", "display", "email")
NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.sqlite"
    server = request.getfixturevalue("redis_server")
    server.flush()
    return server.url


def replica(url: str, clock=lambda: NOW, **options) -> CampaignState:
    books = TenantBooks(CHANNELS, clock=clock, resolve_period_s=0.0, min_new_evidence=1,
                        **options)
    state = CampaignState(open_store(url), books, clock=clock, lease_s=30.0)
    state.recover()
    return state


def spec(campaign_id: str = "c1", budget: float = 7000.0) -> CampaignSpec:
    return CampaignSpec(campaign_id, budget, NOW - 3600, NOW + 6 * 86400, 1.0, 0.0, 0.0, 0.0,
                        tuple(ChannelSpec(c, 0.0, 0.0, 0.0) for c in CHANNELS), 0.0, 0.0)


def rows(spend: float = 100.0) -> list[OutcomeRow]:
    return [OutcomeRow(c, spend, 2.0, 150.0, 1000.0) for c in CHANNELS]


def test_a_restart_keeps_campaigns_versions_spend_and_batch_ids(url):
    first = replica(url)
    configured = first.configure("default", spec())
    for i in range(5):
        assert first.report("default", "c1", f"b{i}", rows(), NOW - 60 * (5 - i))[0] is False
    first.report("default", "", "d1", rows(10.0), None)  # the default campaign too
    first.step()  # the leader re-solves and publishes
    before = first.books.of("default").allocation("c1")
    pacing = first.books.of("default").pacing("")
    obs = first.books.of("default").observations("c1")
    assert before.version > configured.version
    first.store.close()  # as a kill -9 would: no lease released, nothing flushed by us

    again = replica(url)
    after = again.books.of("default").allocation("c1")
    assert (after.version, after.spend, after.solved_at) == (before.version, before.spend,
                                                            before.solved_at)
    assert (again.books.of("default").observations("c1") == obs).all()
    assert again.books.of("default").pacing("") == pytest.approx(pacing)
    for i in range(5):
        assert again.report("default", "c1", f"b{i}", rows(), NOW)[0] is True
    assert again.report("default", "", "d1", rows(10.0), None)[0] is True
    assert (again.books.of("default").observations("c1") == obs).all()


def test_replicas_agree_on_campaigns_counts_and_allocations(url):
    a, b = replica(url), replica(url)
    a.configure("default", spec())
    # b has not applied the log yet, but a report through it finds the campaign in the store
    duplicate, accepted, _ = b.report("default", "c1", "batch", rows(), NOW)
    assert (duplicate, accepted) == (False, 3)
    assert a.report("default", "c1", "batch", rows(), NOW)[0] is True  # counted once
    a.sync()
    assert (a.books.of("default").observations("c1")
            == b.books.of("default").observations("c1")).all()
    assert a.books.of("default").observations("c1")[:, 1].tolist() == [100.0] * 3
    # one leader re-solves; the other puts its allocation in force on its next pass
    solved = a.step() + b.step()
    assert solved == 1 and a.status.leader != b.status.leader
    a.sync(), b.sync()
    assert a.books.of("default").allocation("c1") == b.books.of("default").allocation("c1")
    assert a.books.of("default").pacing("c1") == b.books.of("default").pacing("c1")


def test_tenants_stay_apart_in_a_shared_store(url):
    a, b = replica(url), replica(url)
    a.configure("shop-a", spec("c1", 7000.0))
    b.configure("shop-b", spec("c1", 900.0))
    a.sync(), b.sync()
    assert a.books.of("shop-a").allocation("c1").spend != a.books.of("shop-b").allocation("c1").spend
    assert b.report("shop-b", "c1", "same-id", rows(), NOW)[0] is False
    assert a.report("shop-a", "c1", "same-id", rows(), NOW)[0] is False  # another tenant's key
    with pytest.raises(NotFound):
        a.allocation("shop-c", "c1")


def test_a_dead_leaders_lease_passes_to_another_replica(url):
    clock = [NOW]
    a, b = replica(url, lambda: clock[0]), replica(url, lambda: clock[0])
    a.lease_s = b.lease_s = 0.2
    a.configure("default", spec())
    a.step()
    assert a.status.leader
    b.step()
    assert not b.status.leader
    a.store.close()  # the leader dies without giving its lease up
    import time

    time.sleep(0.3)
    b.report("default", "c1", "after", rows(), NOW)
    assert b.step() == 1 and b.status.leader
    assert b.books.of("default").allocation("c1").version >= 2


def test_a_published_allocation_for_a_replaced_configuration_is_not_put_in_force(url):
    a, b = replica(url), replica(url)
    a.configure("default", spec())
    a.report("default", "c1", "x", rows(), NOW)
    a.step()  # a leads
    b.sync()
    # b replaces the campaign; a's next publish, solved for the old one, is refused
    b.configure("default", spec(budget=3000.0))
    a.books.of("default").resolve_now("c1", a._publisher("default"))
    a.sync()
    now_a = a.books.of("default").allocation("c1")
    assert sum(now_a.spend.values()) == pytest.approx(3000.0, rel=1e-6)


def test_a_refused_write_records_nothing(url):
    a = replica(url)
    a.configure("default", spec())
    seen = a.status.applied
    with pytest.raises(InvalidArgument, match=r"outcomes\[0\]\.spend"):
        a.report("default", "c1", "bad", [OutcomeRow("search", float("nan"), 0, 0, 0)], NOW)
    with pytest.raises(InvalidArgument, match="budget"):
        a.configure("default", spec(budget=1e308))
    assert a.store.read(seen) == []
    assert a.report("default", "c1", "bad", rows(), NOW)[0] is False  # the id stayed unused


def test_redis_going_away_refuses_writes_and_keeps_bids(redis_server):
    redis_server.flush()
    a = replica(redis_server.url)
    a.configure("default", spec())
    a.report("default", "c1", "b0", rows(), NOW)
    a.step()
    bids_before = a.books.of("default").allocation("c1")
    redis_server.pause()
    try:
        with pytest.raises(Unavailable, match="campaign store unavailable"):
            a.report("default", "c1", "b1", rows(), NOW)
        a.step()  # a pass while Redis is away: bids keep their allocation, pacing moves
        assert not a.status.available and not a.status.leader
        assert a.books.of("default").allocation("c1") == bids_before
        with pytest.raises(Unavailable):  # refused at once while the store is known away
            a.report("default", "c1", "b2", rows(), NOW)
    finally:
        redis_server.resume()
    a.step()  # the loop's next pass finds the store again
    assert a.status.available
    # The refused write may have reached Redis before the timeout (a paused server runs it
    # when it wakes): the retry under the same batch id counts it exactly once either way.
    a.report("default", "c1", "b1", rows(), NOW)
    assert a.report("default", "c1", "b1", rows(), NOW)[0] is True
    assert a.books.of("default").observations("c1")[:, 1].sum() == pytest.approx(2 * 3 * 100.0)
    a.step()
    assert a.status.available and a.status.leader


def test_a_stored_event_that_no_longer_applies_marks_its_campaign_stale(tmp_path):
    url = f"sqlite:///{tmp_path}/s.sqlite"
    a = replica(url)
    a.configure("default", spec())
    a.report("default", "c1", "b", rows(), NOW)
    a.store.close()
    # the same store under a model without the "email" channel
    books = TenantBooks(("search", "display"), clock=lambda: NOW)
    b = CampaignState(open_store(url), books, clock=lambda: NOW)
    b.recover()
    assert b.status.apply_failures >= 1
    assert b.books.of("default").allocation("").version >= 1  # the server still serves


def test_credited_conversions_survive_a_restart_and_reach_every_replica(url):
    import dataclasses

    import numpy as np

    one, two = replica(url), replica(url)
    one.configure("default", dataclasses.replace(spec(), attribution="network"))
    one.report("default", "c1", "s1", rows(), NOW - 1800)
    at = np.array([NOW - 2400.0, NOW - 600.0])  # the second waits for the next period
    credit = np.array([[0.7, 0.0, 0.3], [0.0, 1.0, 0.0]])
    value = np.array([50.0, 20.0])
    assert two.check_conversions("default", "c1", "k1", 2) == "network"  # found in the store
    assert two.conversions("default", "c1", "k1", at, value, credit) == (False, 2, 1)
    assert one.conversions("default", "c1", "k1", at, value, credit)[0] is True  # duplicate
    one.report("default", "c1", "k1", rows(), NOW)  # an outcome batch of the same id counts
    one.sync()
    obs = one.books.of("default").observations("c1")
    assert obs[:, 2].tolist() == [0.7, 0.0, 0.0, 1.0, 0.3, 0.0]  # rows' own split not used
    assert obs[:, 3].tolist() == [35.0, 0.0, 0.0, 20.0, 15.0, 0.0]
    one.close()
    two.close()
    again = replica(url)
    np.testing.assert_array_equal(again.books.of("default").observations("c1"), obs)
    assert again.conversions("default", "c1", "k1", at, value, credit)[0] is True
    again.close()


def test_a_campaigns_journey_window_is_rebuilt_from_the_store(url):
    import dataclasses

    import numpy as np

    one = replica(url)
    one.configure("default", dataclasses.replace(spec(), attribution="shapley"))
    paths = (np.array([0]), np.array([0, 1]))
    idle = (np.array([1]),) * 4
    credit = one.books.of("default").window_credit("c1", "shapley", paths, idle)
    one.conversions("default", "c1", "w1", np.array([NOW - 60.0] * 2), np.ones(2), credit,
                    paths, idle)
    expected = one.books.of("default").window_credit("c1", "shapley", [np.array([0, 1])], [])
    one.close()
    again = replica(url)
    window = again.books.of("default")._get("c1").window
    assert [p.tolist() for p in window.converting] == [[0], [0, 1]] and len(window.idle) == 4
    np.testing.assert_array_equal(
        again.books.of("default").window_credit("c1", "shapley", [np.array([0, 1])], []),
        expected)
    again.close()
