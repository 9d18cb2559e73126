"""The embedded default store: one SQLite file in WAL mode.

Writers take the database lock with ``BEGIN IMMEDIATE`` and commit with ``synchronous=FULL``,
so a transaction handed back as "queued" survives a crash of the process and of the machine.
One connection per :class:`SqliteStore`, guarded by a lock: threads share it, and other
processes (the POS, the worker, the CLI) open their own on the same file.

Times are stored as ISO 8601 text in UTC with microseconds, which sorts in time order.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from omsbridge import wire
from omsbridge.model import PostResult, Transaction
from omsbridge.spi import ApiBudget
from omsbridge.store.base import (
    AttemptOutcome,
    AttemptRecord,
    DeadEvent,
    EntryState,
    ErrorInfo,
    EventCommit,
    EventEffect,
    MerchantPause,
    MerchantStats,
    OutboxEntry,
    PauseKind,
    Store,
    StoreStats,
    WebhookMessage,
    WebhookState,
    fresh_by_commit,
    latest_checkpoints,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

SCHEMA_VERSION = 4
"""2: merchants.pause_kind, pause_reason and auth_failures (a refused login pauses a merchant).
3: leases (named leases: one listener per merchant and channel among workers).
4: webhooks and webhook_endpoints (the outbox of outgoing webhooks)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: queue order
    merchant_id      TEXT NOT NULL,
    transaction_id   TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,                      -- native JSON (omsbridge.wire)
    state            TEXT NOT NULL CHECK (state IN ('pending', 'dead', 'done')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    error_class      TEXT,
    error_code       TEXT,
    error_status     INTEGER,
    error_message    TEXT,
    error_retryable  INTEGER,
    order_id         TEXT,
    order_number     TEXT,
    UNIQUE (merchant_id, transaction_id)
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (merchant_id, state, id);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, updated_at);
CREATE TABLE IF NOT EXISTS attempts (
    id              INTEGER PRIMARY KEY,
    entry_id        INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    at              TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    source          TEXT NOT NULL,
    latency_ms      REAL,
    worker          TEXT,
    error_class     TEXT,
    error_code      TEXT,
    error_status    INTEGER,
    error_message   TEXT,
    error_retryable INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_entry ON attempts (entry_id);
CREATE TABLE IF NOT EXISTS merchants (
    merchant_id      TEXT PRIMARY KEY,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    paused_until     TEXT,
    pause_kind       TEXT,
    pause_reason     TEXT,
    auth_failures    INTEGER NOT NULL DEFAULT 0,
    budget_remaining INTEGER,
    budget_limit     INTEGER,
    budget_at        TEXT
);
CREATE TABLE IF NOT EXISTS checkpoints (
    merchant_id TEXT NOT NULL,
    channel     TEXT NOT NULL,
    checkpoint  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (merchant_id, channel)
);
CREATE TABLE IF NOT EXISTS backend_cache (  -- backends' lookups, so a new process starts warm
    merchant_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    saved_at    TEXT NOT NULL,
    PRIMARY KEY (merchant_id, key)
);
CREATE TABLE IF NOT EXISTS seen_events (
    merchant_id TEXT NOT NULL,
    channel     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    PRIMARY KEY (merchant_id, channel, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_events (
    merchant_id     TEXT NOT NULL,
    channel         TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    payload         TEXT NOT NULL,
    at              TEXT NOT NULL,
    error_class     TEXT NOT NULL,
    error_code      TEXT,
    error_status    INTEGER,
    error_message   TEXT NOT NULL,
    error_retryable INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, channel, event_id)
);
CREATE TABLE IF NOT EXISTS webhooks (
    message_id       TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    delivered_at     TEXT,
    last_status      INTEGER,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_expires_at TEXT
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhooks_subject ON webhooks (merchant_id, subject);
CREATE INDEX IF NOT EXISTS webhooks_created ON webhooks (created_at);
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    merchant_id TEXT NOT NULL,
    url         TEXT NOT NULL,
    disabled    TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (merchant_id, url)
);
"""

_SEEN_EVENTS_KEPT = timedelta(days=7)
_PURGE_EVERY = 3600.0  # seconds between purges of old seen events by commit_events


class _SqliteEventTx:
    """:class:`~omsbridge.store.base.EventTx` on the store's connection inside a transaction."""

    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement (``?`` placeholders) inside the transaction."""
        self._db.execute(sql, params)


"""Event ids are remembered this long (Salesforce keeps events 72 hours)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _error_columns(error: ErrorInfo | None) -> tuple[Any, ...]:
    if error is None:
        return (None, None, None, None, None)
    return (error.error_class, error.code, error.status, error.message, int(error.retryable))


def _error_from(row: sqlite3.Row) -> ErrorInfo | None:
    if row["error_class"] is None:
        return None
    return ErrorInfo(
        error_class=row["error_class"],
        message=row["error_message"] or "",
        code=row["error_code"],
        status=row["error_status"],
        retryable=bool(row["error_retryable"]),
    )


_MARK_DONE = (
    "UPDATE outbox SET state = 'done', attempts = attempts + ?, updated_at = ?, "
    "lease_owner = NULL, lease_expires_at = NULL, order_id = ?, order_number = ? WHERE id = ?"
)
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (entry_id, at, outcome, source, latency_ms, worker, "
    "error_class, error_code, error_status, error_message, error_retryable) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _attempt_row(entry_id: int, attempt: AttemptRecord) -> tuple[Any, ...]:
    """The ``attempts`` row of one attempt."""
    return (
        entry_id,
        _ts(attempt.at),
        str(attempt.outcome),
        attempt.source,
        attempt.latency_ms,
        attempt.worker,
        *_error_columns(attempt.error),
    )


def _entry(row: sqlite3.Row, lease: tuple[str, datetime] | None = None) -> OutboxEntry:
    """The entry a row holds; ``lease``: its owner and end as just written over the row's."""
    owner, until = (
        lease if lease is not None else (row["lease_owner"], _dt(row["lease_expires_at"]))
    )
    return OutboxEntry(
        entry_id=row["id"],
        merchant_id=row["merchant_id"],
        transaction_id=row["transaction_id"],
        kind=row["kind"],
        state=EntryState(row["state"]),
        attempts=row["attempts"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        next_attempt_at=datetime.fromisoformat(row["next_attempt_at"]),
        payload=row["payload"],
        last_error=_error_from(row),
        order_id=row["order_id"],
        order_number=row["order_number"],
        lease_owner=owner,
        lease_expires_at=until,
    )


_ADDED_COLUMNS = (
    ("merchants", "pause_kind", "TEXT"),
    ("merchants", "pause_reason", "TEXT"),
    ("merchants", "auth_failures", "INTEGER NOT NULL DEFAULT 0"),
)
"""Columns added since schema 1: a store written by an older version gains them on open."""


def _migrate(db: sqlite3.Connection) -> None:
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _webhook(row: sqlite3.Row) -> WebhookMessage:
    return WebhookMessage(
        message_id=row["message_id"],
        merchant_id=row["merchant_id"],
        event_type=row["event_type"],
        subject=row["subject"],
        body=row["body"],
        state=WebhookState(row["state"]),
        attempts=row["attempts"],
        created_at=_dt(row["created_at"]),
        updated_at=_dt(row["updated_at"]),
        next_attempt_at=_dt(row["next_attempt_at"]),
        delivered_at=_dt(row["delivered_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_expires_at=_dt(row["lease_expires_at"]),
    )


def _pause(row: sqlite3.Row) -> MerchantPause | None:
    until = _dt(row["paused_until"])
    if until is None:
        return None
    return MerchantPause(
        until,
        PauseKind(row["pause_kind"] or PauseKind.RATE_LIMIT),
        row["pause_reason"],
        row["auth_failures"] or 0,
    )


_UPSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (merchant_id, channel, checkpoint, updated_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (merchant_id, channel) DO UPDATE SET "
    "checkpoint = excluded.checkpoint, updated_at = excluded.updated_at"
)

_ROWS_PER_STATEMENT = 200
"""Rows bound in one multi-row statement (4 values each: far below SQLite's variable limit)."""


def _chunks(items: Sequence[Any], size: int = _ROWS_PER_STATEMENT) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _commit_each(
    db: sqlite3.Connection,
    commits: Sequence[EventCommit],
    owner: str | None,
    stamp: str,
    until: str,
    effect: EventEffect,
) -> list[list[str] | None]:
    """Commits with an effect, one after the other (an effect sees the ones before it)."""
    tx = _SqliteEventTx(db)
    results: list[list[str] | None] = []
    for commit in commits:
        if commit.lease is not None:
            renewed = db.execute(
                "UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ? AND expires_at > ?",
                (until, commit.lease, owner, stamp),
            )
            if renewed.rowcount != 1:
                results.append(None)
                continue
        fresh: list[str] = []
        for event_id in dict.fromkeys(commit.event_ids):
            added = db.execute(
                "INSERT OR IGNORE INTO seen_events "
                "(merchant_id, channel, event_id, seen_at) VALUES (?, ?, ?, ?)",
                (commit.merchant_id, commit.channel, event_id, stamp),
            )
            if added.rowcount == 1:
                fresh.append(event_id)
        if fresh:
            effect(tx, commit, fresh)
        db.execute(
            _UPSERT_CHECKPOINT, (commit.merchant_id, commit.channel, commit.checkpoint, stamp)
        )
        results.append(fresh)
    return results


def _held_leases(
    db: sqlite3.Connection, names: list[str], owner: str | None, stamp: str, until: str
) -> set[str]:
    """Renew ``owner``'s unexpired leases among ``names``; the names renewed."""
    if owner is None:
        return set()
    renewed = 0
    for part in _chunks(names):
        marks = ",".join("?" * len(part))
        renewed += db.execute(
            "UPDATE leases SET expires_at = ? WHERE owner = ? AND expires_at > ? "
            f"AND name IN ({marks})",
            (until, owner, stamp, *part),
        ).rowcount
    if renewed == len(names):
        return set(names)
    # Some lease is gone (rare): which ones. A renewed lease now runs until ``until``; one
    # not renewed had run out by ``stamp`` (or is another owner's).
    held: set[str] = set()
    for part in _chunks(names):
        marks = ",".join("?" * len(part))
        rows = db.execute(
            f"SELECT name FROM leases WHERE owner = ? AND expires_at = ? AND name IN ({marks})",
            (owner, until, *part),
        ).fetchall()
        held.update(row[0] for row in rows)
    return held


def _commit_plain(
    db: sqlite3.Connection,
    commits: Sequence[EventCommit],
    owner: str | None,
    stamp: str,
    until: str,
) -> list[list[str] | None]:
    """Commits without an effect in a few statements: the same outcome as one at a time (a
    lost lease writes nothing of its commit; an id is new once, to the first commit naming
    it; the last checkpoint of a feed stays)."""
    names = list(dict.fromkeys(c.lease for c in commits if c.lease is not None))
    held = _held_leases(db, names, owner, stamp, until) if names else set()
    kept = [c for c in commits if c.lease is None or c.lease in held]
    wanted = list(dict.fromkeys((c.merchant_id, c.channel, e) for c in kept for e in c.event_ids))
    known: set[tuple[str, str, str]] = set()
    for part in _chunks(wanted):
        values = ",".join("(?, ?, ?)" for _ in part)
        rows = db.execute(
            f"WITH batch (m, c, e) AS (VALUES {values}) "
            "SELECT s.merchant_id, s.channel, s.event_id FROM batch "
            "JOIN seen_events s ON s.merchant_id = batch.m AND s.channel = batch.c "
            "AND s.event_id = batch.e",
            [value for row in part for value in row],
        ).fetchall()
        known.update((row[0], row[1], row[2]) for row in rows)
    new = [row for row in wanted if row not in known]
    for part in _chunks(new):
        values = ",".join("(?, ?, ?, ?)" for _ in part)
        db.execute(
            f"INSERT INTO seen_events (merchant_id, channel, event_id, seen_at) VALUES {values}",
            [value for row in part for value in (*row, stamp)],
        )
    moved = [(m, c, checkpoint, stamp) for (m, c), checkpoint in latest_checkpoints(kept).items()]
    for part in _chunks(moved):
        values = ",".join("(?, ?, ?, ?)" for _ in part)
        db.execute(
            "INSERT INTO checkpoints (merchant_id, channel, checkpoint, updated_at) "
            f"VALUES {values} ON CONFLICT (merchant_id, channel) DO UPDATE SET "
            "checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
            [value for row in part for value in row],
        )
    return fresh_by_commit(commits, held, set(new))


class SqliteStore(Store):
    """The store in one SQLite file (created with its folder if missing)."""

    def __init__(self, path: str | Path, *, clock: Any = _utcnow) -> None:
        self.path = Path(path)
        self._clock = clock
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._next_purge = 0.0
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._db.executescript(_SCHEMA)  # idempotent: every statement is IF NOT EXISTS
        with self._tx() as db:
            _migrate(db)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def __repr__(self) -> str:
        return f"<SqliteStore {self.path}>"

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so two processes never both read a
        # row as free and then both lease it.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _now(self) -> datetime:
        now: datetime = self._clock()
        return now

    # -- writing into the outbox ------------------------------------------------------------

    def enqueue(
        self,
        merchant_id: str,
        transaction: Transaction,
        *,
        error: BaseException | None = None,
        dead: bool = False,
        attempt: AttemptRecord | None = None,
    ) -> OutboxEntry:
        """See :meth:`Store.enqueue`."""
        now = _ts(self._now())
        info = ErrorInfo.from_error(error) if error is not None else None
        state = EntryState.DEAD if dead else EntryState.PENDING
        payload = wire.dumps(transaction)
        # Attempts that are not the entry's fault (a rate limit, a refused login) do not count.
        uncounted = (AttemptOutcome.RATE_LIMITED, AttemptOutcome.AUTH_FAILED)
        tried = 1 if attempt is not None and attempt.outcome not in uncounted else 0
        with self._tx() as db:
            row = db.execute(
                "SELECT id, state FROM outbox WHERE merchant_id = ? AND transaction_id = ?",
                (merchant_id, transaction.transaction_id),
            ).fetchone()
            if row is None:
                entry_id = db.execute(
                    "INSERT INTO outbox (merchant_id, transaction_id, kind, payload, state, "
                    "attempts, created_at, updated_at, next_attempt_at, error_class, error_code, "
                    "error_status, error_message, error_retryable) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        merchant_id,
                        transaction.transaction_id,
                        str(transaction.kind),
                        payload,
                        str(state),
                        tried,
                        now,
                        now,
                        now,
                        *_error_columns(info),
                    ),
                ).lastrowid
                assert entry_id is not None
            else:
                entry_id = row["id"]
                if row["state"] != EntryState.DONE:
                    db.execute(
                        "UPDATE outbox SET payload = ?, state = ?, attempts = attempts + ?, "
                        "updated_at = ?, next_attempt_at = ?, error_class = ?, error_code = ?, "
                        "error_status = ?, error_message = ?, error_retryable = ? WHERE id = ?",
                        (payload, str(state), tried, now, now, *_error_columns(info), entry_id),
                    )
            if attempt is not None:
                self._insert_attempt(db, entry_id, attempt)
            stored = db.execute("SELECT * FROM outbox WHERE id = ?", (entry_id,)).fetchone()
        return _entry(stored)

    def enqueue_many(self, items: Iterable[tuple[str, Transaction]]) -> int:
        """See :meth:`Store.enqueue_many` (one transaction per 5,000 rows)."""
        now = _ts(self._now())
        added = 0
        chunk: list[tuple[Any, ...]] = []

        def flush() -> int:
            with self._tx() as db:
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO outbox (merchant_id, transaction_id, kind, payload, "
                    "state, attempts, created_at, updated_at, next_attempt_at) "
                    "VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                    chunk,
                )
                return db.total_changes - before

        for merchant_id, txn in items:
            chunk.append(
                (merchant_id, txn.transaction_id, str(txn.kind), wire.dumps(txn), now, now, now)
            )
            if len(chunk) >= 5000:
                added += flush()
                chunk = []
        if chunk:
            added += flush()
        return added

    @staticmethod
    def _insert_attempt(db: sqlite3.Connection, entry_id: int, attempt: AttemptRecord) -> None:
        db.execute(_INSERT_ATTEMPT, _attempt_row(entry_id, attempt))

    # -- the export job's side --------------------------------------------------------------

    def merchants_with_work(self, now: datetime) -> list[str]:
        """See :meth:`Store.merchants_with_work`."""
        rows = self._read(
            "SELECT merchant_id, MIN(id) AS first FROM outbox WHERE state = 'pending' "
            "GROUP BY merchant_id ORDER BY first"
        )
        return [row["merchant_id"] for row in rows]

    def next_due(self, merchant_id: str | None = None) -> datetime | None:
        """See :meth:`Store.next_due`: the head of each merchant's queue decides."""
        # FIFO: a merchant can go on only when the oldest pending entry is due (and its lease
        # free); later entries wait behind it. A pause of the merchant delays it further.
        where = "AND o.merchant_id = ?" if merchant_id else ""
        args = (merchant_id,) if merchant_id else ()
        rows = self._read(
            "SELECT o.next_attempt_at, o.lease_expires_at, m.paused_until FROM outbox o LEFT JOIN merchants m USING (merchant_id) "
            "WHERE o.id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' "
            f"GROUP BY merchant_id) {where}",
            args,
        )
        times = [max(t for t in (row[0], row[1], row[2]) if t is not None) for row in rows]
        return datetime.fromisoformat(min(times)) if times else None

    def acquire_merchant(self, merchant_id: str, owner: str, lease_seconds: float) -> bool:
        """See :meth:`Store.acquire_merchant`."""
        now = self._now()
        until = _ts(now + timedelta(seconds=lease_seconds))
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO merchants (merchant_id, lease_owner, lease_expires_at) "
                "VALUES (?, ?, ?) ON CONFLICT (merchant_id) DO UPDATE SET "
                "lease_owner = excluded.lease_owner, lease_expires_at = excluded.lease_expires_at "
                "WHERE merchants.lease_owner IS NULL OR merchants.lease_owner = excluded.lease_owner "
                "OR merchants.lease_expires_at < ?",
                (merchant_id, owner, until, _ts(now)),
            )
            return cursor.rowcount == 1

    def release_merchant(self, merchant_id: str, owner: str) -> None:
        """See :meth:`Store.release_merchant`."""
        with self._tx() as db:
            db.execute(
                "UPDATE merchants SET lease_owner = NULL, lease_expires_at = NULL "
                "WHERE merchant_id = ? AND lease_owner = ?",
                (merchant_id, owner),
            )

    def claim(
        self, merchant_id: str, owner: str, *, limit: int, lease_seconds: float
    ) -> list[OutboxEntry]:
        """See :meth:`Store.claim`."""
        now = self._now()
        stamp = _ts(now)
        until = _ts(now + timedelta(seconds=lease_seconds))
        with self._tx() as db:
            rows = db.execute(
                "SELECT * FROM outbox WHERE merchant_id = ? AND state = 'pending' "
                "ORDER BY id LIMIT ?",
                (merchant_id, limit),
            ).fetchall()
            taken: list[sqlite3.Row] = []
            for row in rows:
                leased = row["lease_owner"] not in (None, owner) and row["lease_expires_at"] > stamp
                if row["next_attempt_at"] > stamp or leased:
                    break
                taken.append(row)
            if not taken:
                return []
            ids = [row["id"] for row in taken]
            marks = ",".join("?" * len(ids))
            db.execute(
                f"UPDATE outbox SET lease_owner = ?, lease_expires_at = ? WHERE id IN ({marks})",
                (owner, until, *ids),
            )
            db.execute(
                "UPDATE merchants SET lease_expires_at = ? WHERE merchant_id = ? "
                "AND lease_owner = ?",
                (until, merchant_id, owner),
            )
        # The rows as read, with the lease just written (nothing else changed under the lock).
        lease = (owner, datetime.fromisoformat(until))
        return [_entry(row, lease) for row in taken]

    def mark_done(
        self, entry_id: int, result: PostResult, attempts: Sequence[AttemptRecord]
    ) -> None:
        """See :meth:`Store.mark_done`."""
        stamp = _ts(attempts[-1].at if attempts else self._now())
        with self._tx() as db:
            db.execute(
                _MARK_DONE, (len(attempts), stamp, result.order_id, result.order_number, entry_id)
            )
            for attempt in attempts:
                self._insert_attempt(db, entry_id, attempt)

    def mark_done_many(
        self, done: Sequence[tuple[int, PostResult, Sequence[AttemptRecord]]]
    ) -> None:
        """See :meth:`Store.mark_done_many`: one transaction, one commit."""
        # The rows are built before the write lock is taken, and sent in two statements.
        updates = []
        history = []
        for entry_id, result, attempts in done:
            stamp = _ts(attempts[-1].at if attempts else self._now())
            updates.append((len(attempts), stamp, result.order_id, result.order_number, entry_id))
            history += [_attempt_row(entry_id, attempt) for attempt in attempts]
        with self._tx() as db:
            db.executemany(_MARK_DONE, updates)
            db.executemany(_INSERT_ATTEMPT, history)

    def mark_failed(
        self,
        entry_id: int,
        owner: str,
        attempts: Sequence[AttemptRecord],
        *,
        retry_at: datetime | None,
        counted: int | None = None,
    ) -> EntryState:
        """See :meth:`Store.mark_failed`."""
        state = EntryState.PENDING if retry_at is not None else EntryState.DEAD
        last = attempts[-1] if attempts else None
        stamp = _ts(last.at if last is not None else self._now())
        with self._tx() as db:
            # Only the lease holder (or nobody) decides: if the lease expired and another worker
            # took the entry over, its view wins. The attempt is history either way.
            db.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + ?, updated_at = ?, "
                "next_attempt_at = ?, lease_owner = NULL, lease_expires_at = NULL, "
                "error_class = ?, error_code = ?, error_status = ?, error_message = ?, "
                "error_retryable = ? WHERE id = ? AND state = 'pending' "
                "AND (lease_owner IS NULL OR lease_owner = ?)",
                (
                    str(state),
                    len(attempts) if counted is None else counted,
                    stamp,
                    _ts(retry_at) if retry_at is not None else stamp,
                    *_error_columns(last.error if last is not None else None),
                    entry_id,
                    owner,
                ),
            )
            for attempt in attempts:
                self._insert_attempt(db, entry_id, attempt)
            row = db.execute("SELECT state FROM outbox WHERE id = ?", (entry_id,)).fetchone()
        return EntryState(row["state"]) if row is not None else state

    def release(self, entry_ids: Sequence[int], owner: str) -> None:
        """See :meth:`Store.release`."""
        if not entry_ids:
            return
        marks = ",".join("?" * len(entry_ids))
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL "
                f"WHERE lease_owner = ? AND id IN ({marks})",
                (owner, *entry_ids),
            )

    def pause_merchant(
        self,
        merchant_id: str,
        until: datetime,
        *,
        kind: PauseKind = PauseKind.RATE_LIMIT,
        reason: str | None = None,
    ) -> MerchantPause:
        """See :meth:`Store.pause_merchant`."""
        failures = 1 if kind == PauseKind.AUTH else 0
        with self._tx() as db:
            # A rate limit while a login is refused cannot happen (nothing gets through), so
            # a new pause simply replaces the old one; only refused logins add up.
            db.execute(
                "INSERT INTO merchants (merchant_id, paused_until, pause_kind, pause_reason, "
                "auth_failures) VALUES (?, ?, ?, ?, ?) ON CONFLICT (merchant_id) DO UPDATE SET "
                "paused_until = excluded.paused_until, pause_kind = excluded.pause_kind, "
                "pause_reason = excluded.pause_reason, auth_failures = CASE "
                "WHEN excluded.pause_kind = 'auth' THEN merchants.auth_failures + 1 ELSE 0 END",
                (merchant_id, _ts(until), str(kind), reason, failures),
            )
            row = db.execute(
                "SELECT * FROM merchants WHERE merchant_id = ?", (merchant_id,)
            ).fetchone()
        pause = _pause(row)
        assert pause is not None
        return pause

    def merchant_pause(self, merchant_id: str) -> MerchantPause | None:
        """See :meth:`Store.merchant_pause`."""
        rows = self._read("SELECT * FROM merchants WHERE merchant_id = ?", (merchant_id,))
        return _pause(rows[0]) if rows else None

    def resume_merchant(self, merchant_id: str) -> MerchantPause | None:
        """See :meth:`Store.resume_merchant`."""
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM merchants WHERE merchant_id = ?", (merchant_id,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE merchants SET paused_until = NULL, pause_kind = NULL, "
                "pause_reason = NULL, auth_failures = 0 WHERE merchant_id = ?",
                (merchant_id,),
            )
        return _pause(row)

    def paused_until(self, merchant_id: str) -> datetime | None:
        """See :meth:`Store.paused_until`."""
        rows = self._read(
            "SELECT paused_until FROM merchants WHERE merchant_id = ?", (merchant_id,)
        )
        until = _dt(rows[0]["paused_until"]) if rows else None
        return until if until is not None and until > self._now() else None

    def record_budget(self, merchant_id: str, budget: ApiBudget) -> None:
        """See :meth:`Store.record_budget`."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO merchants (merchant_id, budget_remaining, budget_limit, budget_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (merchant_id) DO UPDATE SET "
                "budget_remaining = excluded.budget_remaining, "
                "budget_limit = excluded.budget_limit, budget_at = excluded.budget_at",
                (merchant_id, budget.remaining, budget.limit, _ts(budget.observed_at)),
            )

    # -- reading and operating --------------------------------------------------------------

    def get(self, entry_id: int) -> OutboxEntry | None:
        """See :meth:`Store.get`."""
        rows = self._read("SELECT * FROM outbox WHERE id = ?", (entry_id,))
        return _entry(rows[0]) if rows else None

    def find(self, merchant_id: str, transaction_id: str) -> OutboxEntry | None:
        """See :meth:`Store.find`."""
        rows = self._read(
            "SELECT * FROM outbox WHERE merchant_id = ? AND transaction_id = ?",
            (merchant_id, transaction_id),
        )
        return _entry(rows[0]) if rows else None

    def entries(
        self,
        *,
        states: Sequence[EntryState] = (EntryState.PENDING, EntryState.DEAD),
        merchant_id: str | None = None,
        limit: int = 100,
        after_id: int = 0,
    ) -> list[OutboxEntry]:
        """See :meth:`Store.entries`."""
        marks = ",".join("?" * len(states))
        sql = f"SELECT * FROM outbox WHERE state IN ({marks}) AND id > ?"
        args: list[Any] = [str(s) for s in states] + [after_id]
        if merchant_id is not None:
            sql += " AND merchant_id = ?"
            args.append(merchant_id)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [_entry(row) for row in self._read(sql, args)]

    def attempts(self, entry_id: int) -> list[AttemptRecord]:
        """See :meth:`Store.attempts`."""
        rows = self._read("SELECT * FROM attempts WHERE entry_id = ? ORDER BY id", (entry_id,))
        return [
            AttemptRecord(
                at=datetime.fromisoformat(row["at"]),
                outcome=AttemptOutcome(row["outcome"]),
                source=row["source"],
                latency_ms=row["latency_ms"],
                error=_error_from(row),
                worker=row["worker"],
            )
            for row in rows
        ]

    def requeue(self, entry_ids: Sequence[int]) -> int:
        """See :meth:`Store.requeue`."""
        if not entry_ids:
            return 0
        now = _ts(self._now())
        marks = ",".join("?" * len(entry_ids))
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, "
                "updated_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                f"WHERE state IN ('dead', 'pending') AND id IN ({marks})",
                (now, now, *entry_ids),
            )
            return cursor.rowcount

    def requeue_dead(self, merchant_id: str | None = None) -> int:
        """See :meth:`Store.requeue_dead`."""
        now = _ts(self._now())
        sql = (
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, "
            "updated_at = ?, lease_owner = NULL, lease_expires_at = NULL WHERE state = 'dead'"
        )
        args: list[Any] = [now, now]
        if merchant_id is not None:
            sql += " AND merchant_id = ?"
            args.append(merchant_id)
        with self._tx() as db:
            return db.execute(sql, args).rowcount

    def purge(self, *, states: Sequence[EntryState], before: datetime) -> int:
        """See :meth:`Store.purge`."""
        if not states:
            return 0
        marks = ",".join("?" * len(states))
        with self._tx() as db:
            return db.execute(
                f"DELETE FROM outbox WHERE state IN ({marks}) AND updated_at < ?",
                (*[str(s) for s in states], _ts(before)),
            ).rowcount

    def stats(self, now: datetime) -> StoreStats:
        """See :meth:`Store.stats`."""
        stamp = _ts(now)
        found: dict[str, dict[str, Any]] = {}
        for row in self._read(
            "SELECT merchant_id, "
            "SUM(state = 'pending') AS pending, "
            "SUM(state = 'pending' AND next_attempt_at <= ?) AS due, "
            "SUM(state = 'dead') AS dead, SUM(state = 'done') AS done, "
            "SUM(attempts > 1) AS retried, "
            "MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldest "
            "FROM outbox GROUP BY merchant_id",
            (stamp,),
        ):
            found[row["merchant_id"]] = {
                "pending": row["pending"] or 0,
                "due": row["due"] or 0,
                "dead": row["dead"] or 0,
                "done": row["done"] or 0,
                "retried": row["retried"] or 0,
                "oldest_pending_at": _dt(row["oldest"]),
            }
        for row in self._read(
            "SELECT o.merchant_id, COUNT(*) AS failed FROM attempts a JOIN outbox o "
            "ON o.id = a.entry_id WHERE a.outcome IN ('retry', 'rate_limited', 'dead', 'auth_failed') "
            "GROUP BY o.merchant_id"
        ):
            found.setdefault(row["merchant_id"], {})["attempts_failed"] = row["failed"]
        for row in self._read("SELECT * FROM merchants"):
            pause = _pause(row)
            if pause is not None and (pause.until > now or pause.kind == PauseKind.AUTH):
                fields = found.setdefault(row["merchant_id"], {})
                if pause.until > now:
                    fields["paused_until"] = pause.until
                fields["pause_kind"] = pause.kind
                fields["pause_reason"] = pause.reason
            if row["budget_remaining"] is not None:
                found.setdefault(row["merchant_id"], {})["budget"] = ApiBudget(
                    row["budget_remaining"],
                    row["budget_limit"],
                    datetime.fromisoformat(row["budget_at"]),
                )
        for row in self._read(
            "SELECT merchant_id, COUNT(*) AS n FROM dead_events GROUP BY merchant_id"
        ):
            found.setdefault(row["merchant_id"], {})["dead_events"] = row["n"]
        return StoreStats(
            tuple(
                MerchantStats(merchant_id, **fields)
                for merchant_id, fields in sorted(found.items())
            )
        )

    # -- event listeners --------------------------------------------------------------------

    def checkpoint(self, merchant_id: str, channel: str) -> str | None:
        """See :meth:`Store.checkpoint`."""
        rows = self._read(
            "SELECT checkpoint FROM checkpoints WHERE merchant_id = ? AND channel = ?",
            (merchant_id, channel),
        )
        return rows[0]["checkpoint"] if rows else None

    def save_checkpoint(
        self, merchant_id: str, channel: str, checkpoint: str, event_ids: Sequence[str] = ()
    ) -> None:
        """See :meth:`Store.save_checkpoint` (also forgets event ids older than a week)."""
        now = self._now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO checkpoints (merchant_id, channel, checkpoint, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (merchant_id, channel) DO UPDATE SET "
                "checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
                (merchant_id, channel, checkpoint, _ts(now)),
            )
            db.executemany(
                "INSERT OR IGNORE INTO seen_events (merchant_id, channel, event_id, seen_at) "
                "VALUES (?, ?, ?, ?)",
                [(merchant_id, channel, event_id, _ts(now)) for event_id in event_ids],
            )
            db.execute(
                "DELETE FROM seen_events WHERE merchant_id = ? AND channel = ? AND seen_at < ?",
                (merchant_id, channel, _ts(now - _SEEN_EVENTS_KEPT)),
            )

    def cached_value(self, merchant_id: str, key: str) -> tuple[str, datetime] | None:
        """See :meth:`Store.cached_value`."""
        rows = self._read(
            "SELECT value, saved_at FROM backend_cache WHERE merchant_id = ? AND key = ?",
            (merchant_id, key),
        )
        saved = _dt(rows[0]["saved_at"]) if rows else None
        return (rows[0]["value"], saved) if rows and saved is not None else None

    def save_cached_value(self, merchant_id: str, key: str, value: str) -> None:
        """See :meth:`Store.save_cached_value`."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO backend_cache (merchant_id, key, value, saved_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (merchant_id, key) DO UPDATE SET "
                "value = excluded.value, saved_at = excluded.saved_at",
                (merchant_id, key, value, _ts(self._now())),
            )

    def drop_cached_value(self, merchant_id: str, key: str) -> None:
        """See :meth:`Store.drop_cached_value`."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM backend_cache WHERE merchant_id = ? AND key = ?", (merchant_id, key)
            )

    def commit_events(
        self,
        commits: Sequence[EventCommit],
        *,
        owner: str | None = None,
        lease_seconds: float = 0.0,
        effect: EventEffect | None = None,
    ) -> list[list[str] | None]:
        """See :meth:`Store.commit_events` (``BEGIN IMMEDIATE``: one writer at a time, so a
        second commit of the same ids finds them seen)."""
        if not commits:
            return []
        now = self._now()
        stamp = _ts(now)
        until = _ts(now + timedelta(seconds=lease_seconds))
        with self._tx() as db:
            if effect is None:
                # A pool's grouped checkpoints: a few statements for the whole group, not
                # three per commit (each statement is a GIL hand-off inside sqlite3).
                results = _commit_plain(db, commits, owner, stamp, until)
            else:
                results = _commit_each(db, commits, owner, stamp, until, effect)
            if time.monotonic() >= self._next_purge:
                # Forgetting week-old ids is not worth a statement per commit.
                self._next_purge = time.monotonic() + _PURGE_EVERY
                db.execute(
                    "DELETE FROM seen_events WHERE seen_at < ?", (_ts(now - _SEEN_EVENTS_KEPT),)
                )
        return results

    def seen_events(self, merchant_id: str, channel: str, event_ids: Sequence[str]) -> set[str]:
        """See :meth:`Store.seen_events`."""
        if not event_ids:
            return set()
        marks = ",".join("?" * len(event_ids))
        rows = self._read(
            "SELECT event_id FROM seen_events WHERE merchant_id = ? AND channel = ? "
            f"AND event_id IN ({marks})",
            (merchant_id, channel, *event_ids),
        )
        return {row["event_id"] for row in rows}

    def bury_event(
        self, merchant_id: str, channel: str, event_id: str, payload: str, error: BaseException
    ) -> None:
        """See :meth:`Store.bury_event`."""
        info = ErrorInfo.from_error(error)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO dead_events (merchant_id, channel, event_id, payload, at, "
                "error_class, error_code, error_status, error_message, error_retryable) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    merchant_id,
                    channel,
                    event_id,
                    payload,
                    _ts(self._now()),
                    *(_error_columns(info)),
                ),
            )

    def dead_events(self, merchant_id: str | None = None) -> list[DeadEvent]:
        """See :meth:`Store.dead_events`."""
        sql = "SELECT * FROM dead_events"
        args: tuple[str, ...] = ()
        if merchant_id is not None:
            sql += " WHERE merchant_id = ?"
            args = (merchant_id,)
        found = []
        for row in self._read(sql + " ORDER BY at", args):
            error = _error_from(row)
            assert error is not None
            found.append(
                DeadEvent(
                    row["merchant_id"],
                    row["channel"],
                    row["event_id"],
                    row["payload"],
                    error,
                    datetime.fromisoformat(row["at"]),
                )
            )
        return found

    # -- outgoing webhooks --------------------------------------------------------------------

    def enqueue_webhook(
        self, message_id: str, merchant_id: str, event_type: str, subject: str, body: str
    ) -> bool:
        """See :meth:`Store.enqueue_webhook`."""
        now = _ts(self._now())
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO webhooks (message_id, merchant_id, event_type, subject, body, state, "
                "created_at, updated_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?) "
                "ON CONFLICT (message_id) DO NOTHING",
                (message_id, merchant_id, event_type, subject, body, now, now, now),
            )
            return cursor.rowcount == 1

    def webhook_subject_seen(self, merchant_id: str, subject: str) -> bool:
        """See :meth:`Store.webhook_subject_seen`."""
        rows = self._read(
            "SELECT 1 FROM webhooks WHERE merchant_id = ? AND subject = ? LIMIT 1",
            (merchant_id, subject),
        )
        return bool(rows)

    def claim_webhooks(
        self, owner: str, merchant_ids: Sequence[str], *, limit: int, lease_seconds: float
    ) -> list[WebhookMessage]:
        """See :meth:`Store.claim_webhooks`."""
        if not merchant_ids or limit <= 0:
            return []
        now = self._now()
        stamp, until = _ts(now), _ts(now + timedelta(seconds=lease_seconds))
        marks = ", ".join("?" for _ in merchant_ids)
        with self._tx() as db:
            rows = db.execute(
                "SELECT message_id FROM webhooks WHERE state = 'pending' AND next_attempt_at <= ? "
                "AND (lease_expires_at IS NULL OR lease_expires_at < ?) "
                f"AND merchant_id IN ({marks}) ORDER BY next_attempt_at, message_id LIMIT ?",
                (stamp, stamp, *merchant_ids, limit),
            ).fetchall()
            ids = [row["message_id"] for row in rows]
            for message_id in ids:
                db.execute(
                    "UPDATE webhooks SET lease_owner = ?, lease_expires_at = ? "
                    "WHERE message_id = ?",
                    (owner, until, message_id),
                )
            found = {
                row["message_id"]: _webhook(row)
                for row in db.execute(
                    f"SELECT * FROM webhooks WHERE message_id IN ({', '.join('?' for _ in ids)})",
                    ids,
                )
            }
        return [found[i] for i in ids]

    def webhook_delivered(self, message_id: str, owner: str, status: int) -> bool:
        """See :meth:`Store.webhook_delivered`."""
        now = _ts(self._now())
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE webhooks SET state = 'delivered', attempts = attempts + 1, "
                "updated_at = ?, delivered_at = ?, last_status = ?, last_error = NULL, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE message_id = ? AND state = 'pending' AND lease_owner = ?",
                (now, now, status, message_id, owner),
            )
            return cursor.rowcount == 1

    def webhook_failed(
        self,
        message_id: str,
        owner: str,
        *,
        status: int | None,
        error: str,
        retry_at: datetime | None,
        count: bool = True,
    ) -> WebhookState | None:
        """See :meth:`Store.webhook_failed`."""
        now = self._now()
        state = WebhookState.PENDING if retry_at is not None else WebhookState.DEAD
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE webhooks SET state = ?, attempts = attempts + ?, updated_at = ?, "
                "next_attempt_at = ?, last_status = ?, last_error = ?, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE message_id = ? AND state = 'pending' AND lease_owner = ?",
                (
                    state.value,
                    1 if count else 0,
                    _ts(now),
                    _ts(retry_at if retry_at is not None else now),
                    status,
                    error,
                    message_id,
                    owner,
                ),
            )
            return state if cursor.rowcount == 1 else None

    def webhook(self, message_id: str) -> WebhookMessage | None:
        """See :meth:`Store.webhook`."""
        rows = self._read("SELECT * FROM webhooks WHERE message_id = ?", (message_id,))
        return _webhook(rows[0]) if rows else None

    def webhooks(
        self,
        *,
        merchant_id: str | None = None,
        state: WebhookState | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[WebhookMessage]:
        """See :meth:`Store.webhooks`."""
        where, args = ["1 = 1"], []
        if merchant_id is not None:
            where.append("merchant_id = ?")
            args.append(merchant_id)
        if state is not None:
            where.append("state = ?")
            args.append(state.value)
        if since is not None:
            where.append("created_at >= ?")
            args.append(_ts(since))
        if until is not None:
            where.append("created_at < ?")
            args.append(_ts(until))
        rows = self._read(
            f"SELECT * FROM webhooks WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, message_id DESC LIMIT ?",
            (*args, limit),
        )
        return [_webhook(row) for row in rows]

    def replay_webhooks(self, message_ids: Sequence[str]) -> int:
        """See :meth:`Store.replay_webhooks`."""
        now = _ts(self._now())
        count = 0
        with self._tx() as db:
            for message_id in message_ids:
                count += db.execute(
                    "UPDATE webhooks SET state = 'pending', attempts = 0, updated_at = ?, "
                    "next_attempt_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE message_id = ? AND state IN ('delivered', 'dead')",
                    (now, now, message_id),
                ).rowcount
        return count

    def purge_webhooks(self, *, states: Sequence[WebhookState], before: datetime) -> int:
        """See :meth:`Store.purge_webhooks`."""
        if not states:
            return 0
        marks = ", ".join("?" for _ in states)
        with self._tx() as db:
            return db.execute(
                f"DELETE FROM webhooks WHERE state IN ({marks}) AND updated_at < ?",
                (*[WebhookState(s).value for s in states], _ts(before)),
            ).rowcount

    def set_webhook_endpoint(self, merchant_id: str, url: str, disabled: str | None) -> None:
        """See :meth:`Store.set_webhook_endpoint`."""
        with self._tx() as db:
            if disabled is None:
                db.execute(
                    "DELETE FROM webhook_endpoints WHERE merchant_id = ? AND url = ?",
                    (merchant_id, url),
                )
            else:
                db.execute(
                    "INSERT INTO webhook_endpoints (merchant_id, url, disabled, at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (merchant_id, url) DO UPDATE SET "
                    "disabled = excluded.disabled, at = excluded.at",
                    (merchant_id, url, disabled, _ts(self._now())),
                )

    def webhook_endpoint_disabled(self, merchant_id: str, url: str) -> str | None:
        """See :meth:`Store.webhook_endpoint_disabled`."""
        rows = self._read(
            "SELECT disabled FROM webhook_endpoints WHERE merchant_id = ? AND url = ?",
            (merchant_id, url),
        )
        return str(rows[0]["disabled"]) if rows else None

    def disabled_webhook_endpoints(self) -> dict[tuple[str, str], str]:
        """See :meth:`Store.disabled_webhook_endpoints`."""
        rows = self._read("SELECT merchant_id, url, disabled FROM webhook_endpoints")
        return {(row["merchant_id"], row["url"]): row["disabled"] for row in rows}

    # -- named leases -------------------------------------------------------------------------

    def acquire_lease(self, name: str, owner: str, lease_seconds: float) -> bool:
        """See :meth:`Store.acquire_lease`."""
        now = self._now()
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE leases.owner = excluded.owner OR leases.expires_at < ?",
                (name, owner, _ts(now + timedelta(seconds=lease_seconds)), _ts(now)),
            )
            return cursor.rowcount == 1

    def acquire_leases(self, names: Sequence[str], owner: str, lease_seconds: float) -> set[str]:
        """See :meth:`Store.acquire_leases` (one transaction)."""
        now = self._now()
        until, stamp = _ts(now + timedelta(seconds=lease_seconds)), _ts(now)
        held: set[str] = set()
        with self._tx() as db:
            # Renewing what this owner holds (a worker's every sync): a statement per few
            # hundred leases; any other case (free, expired, another owner's), one per lease.
            renewed = 0
            for part in _chunks(names):
                marks = ",".join("?" * len(part))
                renewed += db.execute(
                    f"UPDATE leases SET expires_at = ? WHERE owner = ? AND name IN ({marks})",
                    (until, owner, *part),
                ).rowcount
            if renewed == len(set(names)):
                return set(names)
            for name in names:
                cursor = db.execute(
                    "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                    "expires_at = excluded.expires_at "
                    "WHERE leases.owner = excluded.owner OR leases.expires_at < ?",
                    (name, owner, until, stamp),
                )
                if cursor.rowcount == 1:
                    held.add(name)
        return held

    def release_lease(self, name: str, owner: str) -> None:
        """See :meth:`Store.release_lease`."""
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    def lease_owners(self, prefix: str = "") -> dict[str, str]:
        """See :meth:`Store.lease_owners`."""
        rows = self._read(
            "SELECT name, owner FROM leases WHERE substr(name, 1, ?) = ? AND expires_at >= ?",
            (len(prefix), prefix, _ts(self._now())),
        )
        return {row["name"]: row["owner"] for row in rows}

    def ping(self) -> None:
        """See :meth:`Store.ping`."""
        self._read("SELECT 1")

    def close(self) -> None:
        """See :meth:`Store.close`."""
        with self._lock:
            self._db.close()
