"""The campaign store: one small interface over memory, SQLite and Redis.

A store is an ordered log of campaign events plus the little that must be decided
atomically beside it. Every process that serves the store (a worker, a replica) applies the
same events in the same order (``attribid.state.replica``), so they all hold the same
campaigns, the same counted outcomes and the same spend:

- ``append`` adds one event (a campaign's configuration, or a batch of outcomes) and, in
  the same transaction, records its idempotency key: a batch id seen before (within the
  retention) appends nothing and says so. Each event gets the next sequence number; a
  configuration also gets the campaign's next allocation version. Nothing is acknowledged
  before the store has committed it.
- ``publish`` records a re-solved allocation as an event too, with the campaign's next
  version, only if the publisher holds the re-solve lease and the campaign's configuration
  is still the one the allocation was solved for; older allocations of the campaign are
  dropped from the log, so the log keeps one per campaign.
- ``read`` returns the events after a sequence number: what a process has not applied yet.
- ``acquire_lease`` takes or renews the one re-solve lease, which expires unless renewed.

Every method blocks (call them off the event loop). A store that cannot be reached raises
``StoreUnavailable``; a store written by a newer schema raises ``StoreError`` on open.
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

#: the layout this server reads and writes; a store of a newer one is refused on open
SCHEMA_VERSION = 1

#: event kinds
CONFIGURE = "configure"
OUTCOMES = "outcomes"
CONVERSIONS = "conversions"
ALLOCATION = "allocation"


class StoreError(Exception):
    """A store that cannot be used as given (bad URL, newer schema): the server does not start."""


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer: nothing was written."""


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the log. ``payload`` is the event's body (orjson), opaque to the store."""

    seq: int
    kind: str
    tenant: str
    campaign_id: str
    #: the allocation version this event gives the campaign (configure, allocation); 0 otherwise
    version: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Appended:
    """What ``append`` did: the event's sequence number, or ``duplicate`` (nothing appended)."""

    seq: int
    version: int
    duplicate: bool


class Store(Protocol):
    """What the campaign replica needs of a store (see the module docstring)."""

    #: the URL it was opened from (passwords hidden)
    url: str
    #: whether several processes can share it (memory:// cannot)
    shared: bool

    def append(self, kind: str, tenant: str, campaign_id: str, payload: bytes, *,
               batch_id: str = "", at: float = 0.0, retention_s: float = 0.0) -> Appended:
        """Append one event; with a ``batch_id``, only if that key is not already recorded
        for (tenant, campaign) within ``retention_s`` of ``at`` (then ``duplicate``)."""
        ...

    def publish(self, tenant: str, campaign_id: str, payload: bytes, *, spec_seq: int,
                holder: str) -> Appended | None:
        """Append an allocation event, or None when ``holder`` does not hold the lease or
        the campaign's configuration is no longer the event ``spec_seq``."""
        ...

    def read(self, after: int, limit: int = 1000) -> list[Event]:
        """Events with sequence numbers above ``after``, in order, at most ``limit``."""
        ...

    def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        """Take the re-solve lease for ``ttl_s`` seconds, or renew it; False if another holds it."""
        ...

    def release_lease(self, holder: str) -> None:
        """Give the lease up (if held), so another process takes over at once."""
        ...

    def forget_batches(self, before: float, keep: int) -> int:
        """Drop idempotency keys recorded before ``before`` and, per tenant, all but the newest
        ``keep``; how many were dropped (stores whose keys expire by themselves return 0)."""
        ...

    def close(self) -> None: ...


def holder_id() -> str:
    """A name for this process as a lease holder: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def open_store(url: str) -> Store:
    """The store named by ``url``: ``memory://``, ``sqlite:///relative/path``,
    ``sqlite:////absolute/path`` or ``redis://[:password@]host:port/db``.

    >>> open_store("memory://").shared
    False
    >>> open_store("mysql://db")
    Traceback (most recent call last):
    attribid.state.store.StoreError: state: unknown store 'mysql://db'; use memory://, sqlite:///PATH or redis://HOST:PORT/DB
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory" and url in ("memory://", "memory:"):
        from attribid.state.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite" and url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        from attribid.state.sqlite import SqliteStore

        return SqliteStore(url[len("sqlite:///"):])
    if scheme in ("redis", "rediss", "unix"):
        from attribid.state.redis import RedisStore

        return RedisStore(url)
    raise StoreError(f"state: unknown store {url!r}; use memory://, sqlite:///PATH or "
                     "redis://HOST:PORT/DB")


def check_schema(found: int, where: str) -> None:
    """Refuse a store written by a newer server."""
    if found > SCHEMA_VERSION:
        raise StoreError(f"state: {where} has schema version {found}, newer than this "
                         f"server's {SCHEMA_VERSION}: run a newer attribid, or another store")
