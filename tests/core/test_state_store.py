"""The store interface, the same contract for memory://, sqlite:// and a real Redis."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from attribid.state.store import (ALLOCATION, CONFIGURE, OUTCOMES, SCHEMA_VERSION, StoreError,
                                  StoreUnavailable, open_store)
from tests.redisproc import RedisServer


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "memory":
        s = open_store("memory://")
    elif request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/state.sqlite")
    else:
        server = request.getfixturevalue("redis_server")
        server.flush()
        s = open_store(server.url)
    yield s
    s.close()


def test_events_come_back_in_order_with_versions_for_configurations(store):
    a = store.append(CONFIGURE, "t", "c1", b"spec-1")
    b = store.append(OUTCOMES, "t", "c1", b"rows", batch_id="b1", at=100.0, retention_s=60.0)
    c = store.append(CONFIGURE, "t", "c1", b"spec-2")
    d = store.append(CONFIGURE, "u", "c1", b"other tenant")
    assert a.seq < b.seq < c.seq < d.seq
    assert (a.version, b.version, c.version, d.version) == (1, 0, 2, 1)
    events = store.read(0)
    assert [(e.seq, e.kind, e.tenant, e.campaign_id, e.version, e.payload) for e in events] == [
        (a.seq, CONFIGURE, "t", "c1", 1, b"spec-1"), (b.seq, OUTCOMES, "t", "c1", 0, b"rows"),
        (c.seq, CONFIGURE, "t", "c1", 2, b"spec-2"), (d.seq, CONFIGURE, "u", "c1", 1, b"other tenant")]
    assert [e.seq for e in store.read(b.seq)] == [c.seq, d.seq]
    assert [e.seq for e in store.read(0, limit=2)] == [a.seq, b.seq]
    assert store.read(d.seq) == []


def test_a_batch_id_is_appended_once_per_campaign_within_its_retention(store):
    first = store.append(OUTCOMES, "t", "c1", b"x", batch_id="b", at=1000.0, retention_s=60.0)
    again = store.append(OUTCOMES, "t", "c1", b"x", batch_id="b", at=1010.0, retention_s=60.0)
    elsewhere = store.append(OUTCOMES, "t", "c2", b"x", batch_id="b", at=1010.0, retention_s=60.0)
    other_tenant = store.append(OUTCOMES, "u", "c1", b"x", batch_id="b", at=1010.0,
                                retention_s=60.0)
    assert not first.duplicate and again.duplicate and again.seq == 0
    assert not elsewhere.duplicate and not other_tenant.duplicate
    assert len(store.read(0)) == 3


@pytest.fixture(params=["memory", "sqlite"])
def local_store(request, tmp_path):
    s = open_store("memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/s.sqlite")
    yield s
    s.close()


def test_batch_ids_are_forgotten_after_the_retention(local_store):
    store = local_store
    store.append(OUTCOMES, "t", "c", b"x", batch_id="old", at=1000.0, retention_s=60.0)
    assert store.append(OUTCOMES, "t", "c", b"x", batch_id="old", at=1059.0,
                        retention_s=60.0).duplicate
    # past the retention a retry counts again, even before the key is dropped
    assert not store.append(OUTCOMES, "t", "c", b"x", batch_id="old", at=1200.0,
                            retention_s=60.0).duplicate
    store.append(OUTCOMES, "t", "c", b"x", batch_id="gone", at=1000.0, retention_s=60.0)
    assert store.forget_batches(before=1100.0, keep=10) == 1
    assert not store.append(OUTCOMES, "t", "c", b"x", batch_id="gone", at=1001.0,
                            retention_s=60.0).duplicate


def test_redis_batch_ids_expire_in_redis_after_the_retention(redis_server):
    import time

    redis_server.flush()
    store = open_store(redis_server.url)
    store.append(OUTCOMES, "t", "c", b"x", batch_id="b", at=time.time(), retention_s=0.3)
    assert store.append(OUTCOMES, "t", "c", b"x", batch_id="b", at=time.time(),
                        retention_s=0.3).duplicate
    assert store.forget_batches(before=time.time(), keep=1) == 0  # Redis does it itself
    time.sleep(0.6)
    assert not store.append(OUTCOMES, "t", "c", b"x", batch_id="b", at=time.time(),
                            retention_s=0.3).duplicate
    store.close()


def test_sqlite_and_memory_keep_at_most_max_batch_ids_per_tenant(local_store):
    store = local_store
    for i in range(5):
        store.append(OUTCOMES, "t", "c", b"x", batch_id=f"b{i}", at=1000.0 + i, retention_s=1e9)
    store.append(OUTCOMES, "u", "c", b"x", batch_id="b0", at=900.0, retention_s=1e9)
    assert store.forget_batches(before=0.0, keep=3) == 2
    oldest = store.append(OUTCOMES, "t", "c", b"x", batch_id="b0", at=2000.0, retention_s=1e9)
    newest = store.append(OUTCOMES, "t", "c", b"x", batch_id="b4", at=2000.0, retention_s=1e9)
    other = store.append(OUTCOMES, "u", "c", b"x", batch_id="b0", at=2000.0, retention_s=1e9)
    assert not oldest.duplicate and newest.duplicate and other.duplicate


def test_publish_needs_the_lease_and_the_current_configuration(store):
    spec = store.append(CONFIGURE, "t", "c", b"spec")
    assert store.publish("t", "c", b"alloc", spec_seq=spec.seq, holder="me") is None  # no lease
    assert store.acquire_lease("me", 30.0)
    assert not store.acquire_lease("you", 30.0)
    first = store.publish("t", "c", b"alloc-1", spec_seq=spec.seq, holder="me")
    assert first is not None and first.version == 2
    assert store.publish("t", "c", b"alloc", spec_seq=spec.seq, holder="you") is None
    second = store.publish("t", "c", b"alloc-2", spec_seq=spec.seq, holder="me")
    assert second is not None and second.version == 3 and second.seq > first.seq
    # the log keeps the newest allocation of a campaign only
    assert [(e.kind, e.payload) for e in store.read(0)] == [(CONFIGURE, b"spec"),
                                                            (ALLOCATION, b"alloc-2")]
    replaced = store.append(CONFIGURE, "t", "c", b"spec-2")
    assert replaced.version == 4
    assert store.publish("t", "c", b"stale", spec_seq=spec.seq, holder="me") is None
    assert store.publish("t", "nope", b"x", spec_seq=spec.seq, holder="me") is None
    store.release_lease("me")
    assert store.acquire_lease("you", 30.0)


def test_an_expired_lease_is_taken_over(store):
    import time

    assert store.acquire_lease("dead", 0.05)
    assert not store.acquire_lease("alive", 10.0)
    time.sleep(0.2)
    assert store.acquire_lease("alive", 10.0)
    assert not store.acquire_lease("dead", 10.0)


def test_concurrent_appends_of_one_batch_count_once(store):
    results = []

    def send() -> None:
        results.append(store.append(OUTCOMES, "t", "c", b"x", batch_id="same", at=5.0,
                                    retention_s=60.0))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(not r.duplicate for r in results) == 1 and len(store.read(0)) == 1


def test_sqlite_state_survives_reopening_and_is_shared_by_connections(tmp_path):
    url = f"sqlite:///{tmp_path}/s.sqlite"
    one, two = open_store(url), open_store(url)
    a = one.append(OUTCOMES, "t", "c", b"x", batch_id="b", at=1.0, retention_s=60.0)
    assert two.append(OUTCOMES, "t", "c", b"x", batch_id="b", at=2.0, retention_s=60.0).duplicate
    one.close()
    two.close()
    again = open_store(url)
    assert [e.seq for e in again.read(0)] == [a.seq]
    assert again.append(OUTCOMES, "t", "c", b"x", batch_id="b", at=3.0, retention_s=60.0).duplicate
    again.close()


def test_a_store_of_a_newer_schema_is_refused(tmp_path, redis_server):
    path = tmp_path / "new.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        open_store(f"sqlite:///{path}")
    import redis

    redis_server.flush()
    redis.Redis.from_url(redis_server.url).hset("attribid:meta", "schema", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="newer than this server's"):
        open_store(redis_server.url)
    redis_server.flush()


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"\x00\xff garbage " * 500)
    with pytest.raises(StoreError, match="cannot be used"):
        open_store(f"sqlite:///{path}")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/no/such/dir/s.sqlite")


@pytest.mark.parametrize("url", ["mysql://x", "sqlite://", "memory://x", "", "redis"])
def test_unknown_urls_are_refused_naming_the_setting(url):
    with pytest.raises(StoreError, match="^state: "):
        open_store(url)


def test_an_unreachable_redis_is_a_clear_error_and_a_stopped_one_unavailable():
    from tests.redisproc import free_port

    with pytest.raises(StoreError, match="cannot be reached"):
        open_store(f"redis://127.0.0.1:{free_port()}/0")
    with RedisServer() as server:
        s = open_store(server.url)
        server.kill()
        with pytest.raises(StoreUnavailable):
            s.append(OUTCOMES, "t", "c", b"x", batch_id="b", at=1.0, retention_s=60.0)
        with pytest.raises(StoreUnavailable):
            s.read(0)
        server.start()  # same port, same append-only file: the store comes back
        assert s.read(0) == []
        assert not s.append(OUTCOMES, "t", "c", b"x", batch_id="b", at=1.0, retention_s=9.0).duplicate
        s.close()
