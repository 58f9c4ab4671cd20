"""``redis://HOST:PORT/DB``: the campaign store in a Redis, shared by servers on many machines.

The log is a Redis stream whose entry ids are ``0-<seq>`` (so a process reads what it has
not applied with one ``XRANGE``); each write that must be atomic (an event with its
idempotency key and the campaign's version, a publish with its lease and configuration
checks) is one Lua script. Idempotency keys are Redis keys that expire after the retention.

A write is acknowledged once Redis has applied it; whether it survives Redis itself being
killed is Redis's persistence setting (``appendonly yes`` with ``appendfsync always`` for
every write, ``everysec`` for at most a second of them). Every key starts with ``PREFIX``.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from attribid.state.store import (ALLOCATION, CONFIGURE, SCHEMA_VERSION, Appended, Event,
                                  StoreError, StoreUnavailable, check_schema)

#: the start of every key this store writes (one Redis database can hold one attribid state)
PREFIX = "attribid:"
#: seconds a command may take before the store counts as unavailable
SOCKET_TIMEOUT_S = 2.0

_APPEND = """
local c = redis.call('HGET', KEYS[3], ARGV[4])
local version, spec, alloc = 0, 0, 0
if c then
  local a, b, d = string.match(c, '(%d+):(%d+):(%d+)')
  version, spec, alloc = tonumber(a), tonumber(b), tonumber(d)
end
if ARGV[6] == '1' then
  if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[7]) then
    return {0, version, 1}
  end
end
local seq = redis.call('INCR', KEYS[1])
local ev = 0
if ARGV[8] == '1' then
  version = version + 1
  spec = seq
  ev = version
end
redis.call('XADD', KEYS[2], '0-' .. seq, 'k', ARGV[1], 't', ARGV[2], 'c', ARGV[3], 'v', ev,
           'p', ARGV[5])
redis.call('HSET', KEYS[3], ARGV[4], version .. ':' .. spec .. ':' .. alloc)
return {seq, ev, 0}
"""

_PUBLISH = """
if redis.call('GET', KEYS[4]) ~= ARGV[6] then return false end
local c = redis.call('HGET', KEYS[3], ARGV[1])
if not c then return false end
local a, b, d = string.match(c, '(%d+):(%d+):(%d+)')
local version, spec, alloc = tonumber(a), tonumber(b), tonumber(d)
if spec ~= tonumber(ARGV[5]) then return false end
local seq = redis.call('INCR', KEYS[1])
version = version + 1
redis.call('XADD', KEYS[2], '0-' .. seq, 'k', ARGV[7], 't', ARGV[2], 'c', ARGV[3], 'v', version,
           'p', ARGV[4])
if alloc > 0 then redis.call('XDEL', KEYS[2], '0-' .. alloc) end
redis.call('HSET', KEYS[3], ARGV[1], version .. ':' .. spec .. ':' .. seq)
return {seq, version}
"""

_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def _field(tenant: str, campaign_id: str) -> bytes:
    """One key part for a (tenant, campaign): length-prefixed, so no id can collide with
    another's whatever characters either holds."""
    t = tenant.encode()
    return str(len(t)).encode() + b":" + t + campaign_id.encode()


class RedisStore:
    """The store interface (``attribid.state.store.Store``) over one Redis database."""

    shared = True

    def __init__(self, url: str) -> None:
        import redis

        self._redis_errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                              redis.exceptions.BusyLoadingError)
        parts = urlsplit(url)
        # The URL as logged: a password in it is not.
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        self.url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        try:
            self._r = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S,
                                           socket_connect_timeout=SOCKET_TIMEOUT_S,
                                           health_check_interval=10)
        except ValueError as exc:
            raise StoreError(f"state: {self.url}: {exc}") from None
        self._k_seq = PREFIX + "seq"
        self._k_events = PREFIX + "events"
        self._k_campaigns = PREFIX + "campaigns"
        self._k_lease = PREFIX + "lease"
        self._append = self._r.register_script(_APPEND)
        self._publish = self._r.register_script(_PUBLISH)
        self._acquire = self._r.register_script(_ACQUIRE)
        self._release = self._r.register_script(_RELEASE)
        try:
            self._r.hsetnx(PREFIX + "meta", "schema", SCHEMA_VERSION)
            found = int(self._r.hget(PREFIX + "meta", "schema") or 0)
        except self._redis_errors as exc:
            raise StoreError(f"state: {self.url} cannot be reached: {exc}") from None
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"state: {self.url} cannot be used: {exc}") from None
        check_schema(found, self.url)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._redis_errors as exc:
            raise StoreUnavailable(f"{self.url}: {exc}") from None

    def append(self, kind: str, tenant: str, campaign_id: str, payload: bytes, *,
               batch_id: str = "", at: float = 0.0, retention_s: float = 0.0) -> Appended:
        field = _field(tenant, campaign_id)
        batch_key = PREFIX.encode() + b"batch:" + field + b"\x00" + batch_id.encode()
        seq, version, duplicate = self._call(
            self._append, keys=[self._k_seq, self._k_events, self._k_campaigns, batch_key],
            args=[kind, tenant, campaign_id, field, payload, "1" if batch_id else "0",
                  max(1, int(retention_s * 1000)), "1" if kind == CONFIGURE else "0"])
        return Appended(int(seq), int(version), bool(duplicate))

    def publish(self, tenant: str, campaign_id: str, payload: bytes, *, spec_seq: int,
                holder: str) -> Appended | None:
        out = self._call(self._publish,
                         keys=[self._k_seq, self._k_events, self._k_campaigns, self._k_lease],
                         args=[_field(tenant, campaign_id), tenant, campaign_id, payload,
                               spec_seq, holder, ALLOCATION])
        if not out:
            return None
        return Appended(int(out[0]), int(out[1]), False)

    def read(self, after: int, limit: int = 1000) -> list[Event]:
        entries = self._call(self._r.xrange, self._k_events, min=f"(0-{after}", max="+",
                             count=limit)
        events = []
        for entry_id, f in entries:
            seq = int(entry_id.split(b"-", 1)[1])
            events.append(Event(seq, f[b"k"].decode(), f[b"t"].decode(), f[b"c"].decode(),
                                int(f[b"v"]), f[b"p"]))
        return events

    def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        return bool(self._call(self._acquire, keys=[self._k_lease],
                               args=[holder, max(1, int(ttl_s * 1000))]))

    def release_lease(self, holder: str) -> None:
        self._call(self._release, keys=[self._k_lease], args=[holder])

    def forget_batches(self, before: float, keep: int) -> int:
        return 0  # idempotency keys expire in Redis itself (PX = the retention)

    def close(self) -> None:
        self._r.close()
