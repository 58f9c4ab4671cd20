"""``memory://``: the campaign store in this process only, gone when it exits.

For tests and throwaway runs: nothing survives a restart, and no other process can share it
(a server refuses ``--workers`` above 1 with it).
"""
from __future__ import annotations

import threading
import time

from attribid.state.store import ALLOCATION, CONFIGURE, Appended, Event


class MemoryStore:
    """The store interface (``attribid.state.store.Store``) over Python lists and dicts."""

    url = "memory://"
    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._seq = 0
        #: (tenant, campaign, batch id) -> when it was recorded
        self._batches: dict[tuple[str, str, str], float] = {}
        #: (tenant, campaign) -> [allocation version, seq of its configuration]
        self._campaigns: dict[tuple[str, str], list[int]] = {}
        self._lease: tuple[str, float] = ("", 0.0)

    def append(self, kind: str, tenant: str, campaign_id: str, payload: bytes, *,
               batch_id: str = "", at: float = 0.0, retention_s: float = 0.0) -> Appended:
        with self._lock:
            camp = self._campaigns.setdefault((tenant, campaign_id), [0, 0])
            if batch_id:
                key = (tenant, campaign_id, batch_id)
                seen = self._batches.get(key)
                if seen is not None and seen >= at - retention_s:
                    return Appended(0, camp[0], True)
                self._batches[key] = at
            self._seq += 1
            version = 0
            if kind == CONFIGURE:
                camp[0] += 1
                camp[1] = self._seq
                version = camp[0]
            self._events.append(Event(self._seq, kind, tenant, campaign_id, version, payload))
            return Appended(self._seq, version, False)

    def publish(self, tenant: str, campaign_id: str, payload: bytes, *, spec_seq: int,
                holder: str) -> Appended | None:
        with self._lock:
            camp = self._campaigns.get((tenant, campaign_id))
            if camp is None or camp[1] != spec_seq or not self._holds(holder):
                return None
            camp[0] += 1
            self._seq += 1
            self._events = [e for e in self._events if not (
                e.kind == ALLOCATION and e.tenant == tenant and e.campaign_id == campaign_id)]
            self._events.append(Event(self._seq, ALLOCATION, tenant, campaign_id, camp[0],
                                      payload))
            return Appended(self._seq, camp[0], False)

    def read(self, after: int, limit: int = 1000) -> list[Event]:
        with self._lock:
            # Sequence numbers only grow, so the events after ``after`` are a tail of the list.
            lo, hi = 0, len(self._events)
            while lo < hi:
                mid = (lo + hi) // 2
                if self._events[mid].seq <= after:
                    lo = mid + 1
                else:
                    hi = mid
            return self._events[lo:lo + limit]

    def _holds(self, holder: str) -> bool:
        return self._lease[0] == holder and self._lease[1] > time.time()

    def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        with self._lock:
            now = time.time()
            if self._lease[0] in ("", holder) or self._lease[1] <= now:
                self._lease = (holder, now + ttl_s)
                return True
            return False

    def release_lease(self, holder: str) -> None:
        with self._lock:
            if self._lease[0] == holder:
                self._lease = ("", 0.0)

    def forget_batches(self, before: float, keep: int) -> int:
        with self._lock:
            old = [k for k, at in self._batches.items() if at < before]
            for k in old:
                del self._batches[k]
            dropped = len(old)
            per_tenant: dict[str, list[tuple[float, tuple[str, str, str]]]] = {}
            for k, at in self._batches.items():
                per_tenant.setdefault(k[0], []).append((at, k))
            for entries in per_tenant.values():
                if len(entries) > keep:
                    entries.sort()
                    for _, k in entries[: len(entries) - keep]:
                        del self._batches[k]
                        dropped += 1
            return dropped

    def close(self) -> None:
        pass
