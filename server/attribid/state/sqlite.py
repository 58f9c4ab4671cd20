"""``sqlite:///PATH``: the campaign store in one SQLite file (stdlib sqlite3, WAL mode).

The embedded default: no service to run, and every worker of a group on this machine shares
the file. Each write is one ``BEGIN IMMEDIATE`` transaction committed with
``synchronous=FULL`` before it returns, so an acknowledged write survives kill -9 and a
power cut. Several processes take turns to write (SQLite's one writer at a time), waiting
up to ``BUSY_TIMEOUT_MS`` for the lock; readers never wait for a writer (WAL).
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Iterator

from attribid.state.store import (ALLOCATION, CONFIGURE, SCHEMA_VERSION, Appended, Event,
                                  StoreError, StoreUnavailable, check_schema)

#: how long a write waits for another process's transaction, in milliseconds
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, tenant TEXT NOT NULL, campaign TEXT NOT NULL,
    version INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (
    tenant TEXT NOT NULL, campaign TEXT NOT NULL,
    version INTEGER NOT NULL, spec_seq INTEGER NOT NULL, allocation_seq INTEGER NOT NULL,
    PRIMARY KEY (tenant, campaign)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    tenant TEXT NOT NULL, campaign TEXT NOT NULL, batch_id TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (tenant, campaign, batch_id));
CREATE INDEX IF NOT EXISTS batches_at ON batches (at);
CREATE TABLE IF NOT EXISTS lease (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID;
"""


class SqliteStore:
    """The store interface (``attribid.state.store.Store``) over one SQLite file."""

    shared = True

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{path}"
        self._lock = threading.Lock()
        try:
            if not self.path.parent.is_dir():
                raise StoreError(f"state: {self.url}: directory {str(self.path.parent)!r} "
                                 "does not exist")
            # One connection, used by one thread at a time (the lock): check_same_thread off.
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._write():
                found = self._db.execute("PRAGMA user_version").fetchone()[0]
                check_schema(found, self.url)
                # (executescript would commit first: each statement on its own instead)
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
                if found < SCHEMA_VERSION:
                    self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"state: {self.url} cannot be used: {exc}") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (durably) when the block ends without error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # locked past the busy timeout
                raise StoreUnavailable(f"{self.url}: {exc}") from None
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._db.execute("ROLLBACK")
                raise StoreUnavailable(f"{self.url}: {exc}") from None

    def _campaign(self, db: sqlite3.Connection, tenant: str, campaign_id: str) -> list[int]:
        row = db.execute("SELECT version, spec_seq, allocation_seq FROM campaigns "
                         "WHERE tenant = ? AND campaign = ?", (tenant, campaign_id)).fetchone()
        return list(row) if row else [0, 0, 0]

    def append(self, kind: str, tenant: str, campaign_id: str, payload: bytes, *,
               batch_id: str = "", at: float = 0.0, retention_s: float = 0.0) -> Appended:
        with self._write() as db:
            version, spec_seq, alloc_seq = self._campaign(db, tenant, campaign_id)
            if batch_id:
                row = db.execute("SELECT at FROM batches WHERE tenant = ? AND campaign = ? AND "
                                 "batch_id = ?", (tenant, campaign_id, batch_id)).fetchone()
                if row is not None and row[0] >= at - retention_s:
                    return Appended(0, version, True)
                db.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?)",
                           (tenant, campaign_id, batch_id, at))
            event_version = version + 1 if kind == CONFIGURE else 0
            seq = db.execute("INSERT INTO events (kind, tenant, campaign, version, payload) "
                             "VALUES (?, ?, ?, ?, ?)", (kind, tenant, campaign_id,
                                                       event_version, payload)).lastrowid
            assert seq is not None
            if kind == CONFIGURE:
                version, spec_seq = event_version, seq
            db.execute("INSERT OR REPLACE INTO campaigns VALUES (?, ?, ?, ?, ?)",
                       (tenant, campaign_id, version, spec_seq, alloc_seq))
            return Appended(seq, event_version, False)

    def publish(self, tenant: str, campaign_id: str, payload: bytes, *, spec_seq: int,
                holder: str) -> Appended | None:
        with self._write() as db:
            version, current_spec, alloc_seq = self._campaign(db, tenant, campaign_id)
            if current_spec != spec_seq or not self._holds(db, holder):
                return None
            version += 1
            seq = db.execute("INSERT INTO events (kind, tenant, campaign, version, payload) "
                             "VALUES (?, ?, ?, ?, ?)", (ALLOCATION, tenant, campaign_id,
                                                       version, payload)).lastrowid
            assert seq is not None
            if alloc_seq:  # the log keeps the newest allocation of a campaign only
                db.execute("DELETE FROM events WHERE seq = ?", (alloc_seq,))
            db.execute("UPDATE campaigns SET version = ?, allocation_seq = ? WHERE tenant = ? "
                       "AND campaign = ?", (version, seq, tenant, campaign_id))
            return Appended(seq, version, False)

    def read(self, after: int, limit: int = 1000) -> list[Event]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT seq, kind, tenant, campaign, version, payload FROM events "
                    "WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"{self.url}: {exc}") from None
        return [Event(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]

    @staticmethod
    def _holds(db: sqlite3.Connection, holder: str) -> bool:
        row = db.execute("SELECT holder, expires_at FROM lease WHERE name = 'resolve'").fetchone()
        return row is not None and row[0] == holder and row[1] > time.time()

    def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        with self._write() as db:
            now = time.time()
            row = db.execute("SELECT holder, expires_at FROM lease WHERE name = 'resolve'").fetchone()
            if row is not None and row[0] != holder and row[1] > now:
                return False
            db.execute("INSERT OR REPLACE INTO lease VALUES ('resolve', ?, ?)", (holder, now + ttl_s))
            return True

    def release_lease(self, holder: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM lease WHERE name = 'resolve' AND holder = ?", (holder,))

    def forget_batches(self, before: float, keep: int) -> int:
        with self._write() as db:
            dropped = db.execute("DELETE FROM batches WHERE at < ?", (before,)).rowcount
            for (tenant, count) in db.execute("SELECT tenant, COUNT(*) FROM batches "
                                              "GROUP BY tenant").fetchall():
                if count > keep:
                    dropped += db.execute(
                        "DELETE FROM batches WHERE rowid IN (SELECT rowid FROM batches WHERE "
                        "tenant = ? ORDER BY at LIMIT ?)", (tenant, count - keep)).rowcount
            return dropped

    def close(self) -> None:
        with self._lock:
            self._db.close()
