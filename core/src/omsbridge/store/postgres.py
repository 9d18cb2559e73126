"""The shared store: PostgreSQL, for many workers on many machines (``omsbridge[postgres]``).

Connections come from a :class:`psycopg_pool.ConnectionPool`; every method runs in one short
transaction. Claims lock the head of a merchant's queue with ``FOR UPDATE SKIP LOCKED``, so two
workers never wait on each other nor take the same rows. Every lease and pause is compared
with the database's clock (``now()``), never a worker's: workers' clocks may disagree.

The schema is versioned in ``omsbridge_schema``; :func:`migrate` (``omsbridge store migrate``)
applies the missing steps under an advisory lock, so workers starting together migrate once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
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

try:
    import psycopg
    from psycopg import OperationalError
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the PostgreSQL store needs psycopg and psycopg_pool: pip install 'omsbridge[postgres]'"
    ) from exc

__all__ = [
    "MIGRATIONS",
    "OperationalError",
    "SCHEMA_VERSION",
    "PostgresStore",
    "SchemaError",
    "migrate",
]

_MIGRATION_LOCK = 0x6F6D7362  # pg_advisory_xact_lock key: "omsb"
_ENQUEUE_LOCKS = 0x6F6D7371  # the class of the per-merchant enqueue locks: "omsq"

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "outbox, attempts, merchants (leases, pauses incl. refused logins), checkpoints, "
        "seen and dead events",
        """
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    merchant_id      TEXT NOT NULL,
    transaction_id   TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'dead', 'done')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    error_class      TEXT,
    error_code       TEXT,
    error_status     INTEGER,
    error_message    TEXT,
    error_retryable  BOOLEAN,
    order_id         TEXT,
    order_number     TEXT,
    UNIQUE (merchant_id, transaction_id)
);
CREATE INDEX outbox_pending ON outbox (merchant_id, id) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (state, updated_at);
CREATE TABLE attempts (
    id              BIGSERIAL PRIMARY KEY,
    entry_id        BIGINT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    at              TIMESTAMPTZ NOT NULL,
    outcome         TEXT NOT NULL,
    source          TEXT NOT NULL,
    latency_ms      DOUBLE PRECISION,
    worker          TEXT,
    error_class     TEXT,
    error_code      TEXT,
    error_status    INTEGER,
    error_message   TEXT,
    error_retryable BOOLEAN
);
CREATE INDEX attempts_entry ON attempts (entry_id);
CREATE TABLE merchants (
    merchant_id      TEXT PRIMARY KEY,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    paused_until     TIMESTAMPTZ,
    pause_kind       TEXT,
    pause_reason     TEXT,
    auth_failures    INTEGER NOT NULL DEFAULT 0,
    budget_remaining INTEGER,
    budget_limit     INTEGER,
    budget_at        TIMESTAMPTZ
);
CREATE TABLE checkpoints (
    merchant_id TEXT NOT NULL,
    channel     TEXT NOT NULL,
    checkpoint  TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant_id, channel)
);
CREATE TABLE seen_events (
    merchant_id TEXT NOT NULL,
    channel     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant_id, channel, event_id)
);
CREATE INDEX seen_events_age ON seen_events (merchant_id, channel, seen_at);
CREATE TABLE dead_events (
    merchant_id     TEXT NOT NULL,
    channel         TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    payload         TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    error_class     TEXT NOT NULL,
    error_code      TEXT,
    error_status    INTEGER,
    error_message   TEXT NOT NULL,
    error_retryable BOOLEAN NOT NULL,
    PRIMARY KEY (merchant_id, channel, event_id)
);
""",
    ),
    (
        2,
        "leases: named leases (one listener per merchant and channel among workers)",
        """
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
""",
    ),
    (
        3,
        "backend_cache: backends' lookups, so a new process starts warm",
        """
CREATE TABLE backend_cache (
    merchant_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    saved_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, key)
);
""",
    ),
    (
        4,
        "webhooks, webhook_endpoints: the outbox of outgoing webhooks",
        """
CREATE TABLE webhooks (
    message_id       TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    last_status      INTEGER,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ
);
CREATE INDEX webhooks_due ON webhooks (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhooks_subject ON webhooks (merchant_id, subject);
CREATE INDEX webhooks_created ON webhooks (created_at);
CREATE TABLE webhook_endpoints (
    merchant_id TEXT NOT NULL,
    url         TEXT NOT NULL,
    disabled    TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, url)
);
""",
    ),
)
"""Schema steps in order: (version, what it adds, SQL). Never edit a released step; add one."""

SCHEMA_VERSION = MIGRATIONS[-1][0]

_SEEN_EVENTS_KEPT = timedelta(days=7)
_PURGE_EVERY = 3600.0  # seconds between purges of old seen events by commit_events


class _PgEventTx:
    """:class:`~omsbridge.store.base.EventTx` on a psycopg connection inside a transaction."""

    dialect = "postgresql"

    def __init__(self, db: psycopg.Connection[dict[str, Any]]) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement (``%s`` placeholders) inside the transaction."""
        self._db.execute(sql, params)  # type: ignore[arg-type]


class SchemaError(RuntimeError):
    """The database's schema does not fit this version of omsbridge."""


def _schema_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT to_regclass('omsbridge_schema') IS NOT NULL AS present").fetchone()
    if row is None or not row[0]:
        return 0
    found = conn.execute("SELECT COALESCE(MAX(version), 0) FROM omsbridge_schema").fetchone()
    return int(found[0]) if found is not None else 0


def migrate(url: str) -> tuple[int, list[int]]:
    """Bring the database at ``url`` to :data:`SCHEMA_VERSION`; returns (version before, steps
    applied). Safe to run from several processes at once (an advisory lock serializes them)."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS omsbridge_schema (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        before = _schema_version(conn)
        if before > SCHEMA_VERSION:
            raise SchemaError(
                f"the database is at schema {before}, newer than this omsbridge "
                f"({SCHEMA_VERSION}): upgrade omsbridge"
            )
        applied = []
        for version, description, sql in MIGRATIONS:
            if version > before:
                conn.execute(sql)  # type: ignore[arg-type]  # our own constant SQL
                conn.execute(
                    "INSERT INTO omsbridge_schema (version, description) VALUES (%s, %s)",
                    (version, description),
                )
                applied.append(version)
    return before, applied


def schema_version(url: str) -> int:
    """The schema version of the database at ``url`` (0: never migrated)."""
    with psycopg.connect(url) as conn:
        return _schema_version(conn)


def _error_columns(error: ErrorInfo | None) -> tuple[Any, ...]:
    if error is None:
        return (None, None, None, None, None)
    return (error.error_class, error.code, error.status, error.message, error.retryable)


def _error_from(row: dict[str, Any]) -> ErrorInfo | None:
    if row["error_class"] is None:
        return None
    return ErrorInfo(
        error_class=row["error_class"],
        message=row["error_message"] or "",
        code=row["error_code"],
        status=row["error_status"],
        retryable=bool(row["error_retryable"]),
    )


def _entry(row: dict[str, Any]) -> OutboxEntry:
    return OutboxEntry(
        entry_id=row["id"],
        merchant_id=row["merchant_id"],
        transaction_id=row["transaction_id"],
        kind=row["kind"],
        state=EntryState(row["state"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        next_attempt_at=row["next_attempt_at"],
        payload=row["payload"],
        last_error=_error_from(row),
        order_id=row["order_id"],
        order_number=row["order_number"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
    )


def _webhook(row: dict[str, Any]) -> WebhookMessage:
    return WebhookMessage(
        message_id=row["message_id"],
        merchant_id=row["merchant_id"],
        event_type=row["event_type"],
        subject=row["subject"],
        body=row["body"],
        state=WebhookState(row["state"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
    )


def _pause(row: dict[str, Any]) -> MerchantPause | None:
    if row["paused_until"] is None:
        return None
    return MerchantPause(
        row["paused_until"],
        PauseKind(row["pause_kind"] or PauseKind.RATE_LIMIT),
        row["pause_reason"],
        row["auth_failures"] or 0,
    )


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment


_UNCOUNTED = (AttemptOutcome.RATE_LIMITED, AttemptOutcome.AUTH_FAILED)


class PostgresStore(Store):
    """The store in a PostgreSQL database (see the module doc).

    ``auto_migrate=True`` (the default) brings an older schema up to date on open; with False an
    out-of-date schema is an error (operators who run ``omsbridge store migrate`` themselves).
    """

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 8, auto_migrate: bool = True
    ) -> None:
        self._url = url
        if auto_migrate:
            migrate(url)
        else:
            found = schema_version(url)
            if found != SCHEMA_VERSION:
                raise SchemaError(
                    f"the database is at schema {found}, this omsbridge needs {SCHEMA_VERSION}: "
                    "run `omsbridge store migrate`"
                )
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"row_factory": dict_row},
            open=True,
            name="omsbridge-store",
        )
        self._closed = threading.Event()
        self._next_purge = 0.0

    def __repr__(self) -> str:
        # The URL may carry a password: show only where it points.
        info = psycopg.conninfo.conninfo_to_dict(self._url)
        where = info.get("host") or "local socket"
        return f"<PostgresStore {info.get('dbname', '?')} on {where}>"

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._pool.connection() as conn:
            return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]

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
        info = ErrorInfo.from_error(error) if error is not None else None
        state = EntryState.DEAD if dead else EntryState.PENDING
        tried = 1 if attempt is not None and attempt.outcome not in _UNCOUNTED else 0
        with self._tx() as db:
            self._lock_merchants(db, [merchant_id])
            row = db.execute(
                "INSERT INTO outbox AS o (merchant_id, transaction_id, kind, payload, state, "
                "attempts, created_at, updated_at, next_attempt_at, error_class, error_code, "
                "error_status, error_message, error_retryable) "
                "VALUES (%s, %s, %s, %s, %s, %s, now(), now(), now(), %s, %s, %s, %s, %s) "
                "ON CONFLICT (merchant_id, transaction_id) DO UPDATE SET "
                "payload = excluded.payload, state = excluded.state, "
                "attempts = o.attempts + excluded.attempts, updated_at = now(), "
                "next_attempt_at = now(), error_class = excluded.error_class, "
                "error_code = excluded.error_code, error_status = excluded.error_status, "
                "error_message = excluded.error_message, "
                "error_retryable = excluded.error_retryable WHERE o.state <> 'done' "
                "RETURNING id",
                (
                    merchant_id,
                    transaction.transaction_id,
                    str(transaction.kind),
                    wire.dumps(transaction),
                    str(state),
                    tried,
                    *_error_columns(info),
                ),
            ).fetchone()
            if row is None:  # done already: left alone
                row = db.execute(
                    "SELECT id FROM outbox WHERE merchant_id = %s AND transaction_id = %s",
                    (merchant_id, transaction.transaction_id),
                ).fetchone()
            assert row is not None
            if attempt is not None:
                self._insert_attempts(db, row["id"], [attempt])
            stored = db.execute("SELECT * FROM outbox WHERE id = %s", (row["id"],)).fetchone()
        assert stored is not None
        return _entry(stored)

    def enqueue_many(self, items: Iterable[tuple[str, Transaction]]) -> int:
        """See :meth:`Store.enqueue_many` (one transaction per 5,000 rows)."""
        added = 0
        chunk: list[tuple[Any, ...]] = []

        def flush() -> int:
            with self._tx() as db, db.cursor() as cur:
                self._lock_merchants(db, [item[0] for item in chunk])
                cur.executemany(
                    "INSERT INTO outbox (merchant_id, transaction_id, kind, payload, state, "
                    "attempts, created_at, updated_at, next_attempt_at) "
                    "VALUES (%s, %s, %s, %s, 'pending', 0, now(), now(), now()) "
                    "ON CONFLICT DO NOTHING",
                    chunk,
                )
                return max(cur.rowcount, 0)

        for merchant_id, txn in items:
            chunk.append((merchant_id, txn.transaction_id, str(txn.kind), wire.dumps(txn)))
            if len(chunk) >= 5000:
                added += flush()
                chunk = []
        if chunk:
            added += flush()
        return added

    @staticmethod
    def _lock_merchants(db: psycopg.Connection[Any], merchant_ids: Sequence[str]) -> None:
        # Ids come from a sequence, not in commit order: two enqueues of one merchant could
        # commit 11 before 10, and a claim in between would post 11 first. Enqueues of a
        # merchant therefore take turns (held to commit), so its ids follow commit order.
        # Locks are taken in hash order: two bulk enqueues never deadlock.
        db.execute(
            "SELECT pg_advisory_xact_lock(%s, h) FROM (SELECT DISTINCT hashtext(m) AS h "
            "FROM unnest(%s::text[]) AS m) AS s ORDER BY h",
            (_ENQUEUE_LOCKS, list(merchant_ids)),
        )

    @staticmethod
    def _insert_attempts(
        db: psycopg.Connection[Any], entry_id: int, attempts: Sequence[AttemptRecord]
    ) -> None:
        if not attempts:
            return
        with db.cursor() as cur:
            cur.executemany(
                "INSERT INTO attempts (entry_id, at, outcome, source, latency_ms, worker, "
                "error_class, error_code, error_status, error_message, error_retryable) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        entry_id,
                        _aware(a.at),
                        str(a.outcome),
                        a.source,
                        a.latency_ms,
                        a.worker,
                        *_error_columns(a.error),
                    )
                    for a in attempts
                ],
            )

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
        where = "AND o.merchant_id = %s" if merchant_id else ""
        args = (merchant_id,) if merchant_id else ()
        rows = self._read(
            "SELECT MIN(GREATEST(o.next_attempt_at, o.lease_expires_at, m.paused_until)) AS due "
            "FROM outbox o LEFT JOIN merchants m USING (merchant_id) "
            "WHERE o.id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' "
            f"GROUP BY merchant_id) {where}",
            args,
        )
        due: datetime | None = rows[0]["due"] if rows else None
        return due

    def acquire_merchant(self, merchant_id: str, owner: str, lease_seconds: float) -> bool:
        """See :meth:`Store.acquire_merchant`."""
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO merchants AS m (merchant_id, lease_owner, lease_expires_at) "
                "VALUES (%s, %s, now() + make_interval(secs => %s)) "
                "ON CONFLICT (merchant_id) DO UPDATE SET lease_owner = excluded.lease_owner, "
                "lease_expires_at = excluded.lease_expires_at "
                "WHERE m.lease_owner IS NULL OR m.lease_owner = excluded.lease_owner "
                "OR m.lease_expires_at < now() RETURNING 1",
                (merchant_id, owner, lease_seconds),
            ).fetchone()
            return row is not None

    def release_merchant(self, merchant_id: str, owner: str) -> None:
        """See :meth:`Store.release_merchant`."""
        with self._tx() as db:
            db.execute(
                "UPDATE merchants SET lease_owner = NULL, lease_expires_at = NULL "
                "WHERE merchant_id = %s AND lease_owner = %s",
                (merchant_id, owner),
            )

    def claim(
        self, merchant_id: str, owner: str, *, limit: int, lease_seconds: float
    ) -> list[OutboxEntry]:
        """See :meth:`Store.claim`: the head of the queue, locked with SKIP LOCKED."""
        with self._tx() as db:
            head = [
                row["id"]
                for row in db.execute(
                    "SELECT id FROM outbox WHERE merchant_id = %s AND state = 'pending' "
                    "ORDER BY id LIMIT %s",
                    (merchant_id, limit),
                ).fetchall()
            ]
            if not head:
                return []
            # Rows another transaction holds are skipped, never waited for; the claim then
            # stops at the first of them, so a merchant's queue still goes out in order.
            locked = {
                row["id"]: row
                for row in db.execute(
                    "SELECT id, state, next_attempt_at <= now() AS due, "
                    "(lease_owner IS NOT NULL AND lease_owner <> %s "
                    "AND lease_expires_at > now()) AS leased "
                    "FROM outbox WHERE id = ANY(%s) FOR UPDATE SKIP LOCKED",
                    (owner, head),
                ).fetchall()
            }
            ids: list[int] = []
            for entry_id in head:
                row = locked.get(entry_id)
                if row is None or row["state"] != "pending" or not row["due"] or row["leased"]:
                    break
                ids.append(entry_id)
            if not ids:
                return []
            rows = db.execute(
                "UPDATE outbox SET lease_owner = %s, "
                "lease_expires_at = now() + make_interval(secs => %s) "
                "WHERE id = ANY(%s) RETURNING *",
                (owner, lease_seconds, ids),
            ).fetchall()
            db.execute(
                "UPDATE merchants SET lease_expires_at = now() + make_interval(secs => %s) "
                "WHERE merchant_id = %s AND lease_owner = %s",
                (lease_seconds, merchant_id, owner),
            )
        return [_entry(row) for row in sorted(rows, key=lambda r: int(r["id"]))]

    def mark_done(
        self, entry_id: int, result: PostResult, attempts: Sequence[AttemptRecord]
    ) -> None:
        """See :meth:`Store.mark_done`."""
        stamp = _aware(attempts[-1].at) if attempts else None
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET state = 'done', attempts = attempts + %s, "
                "updated_at = COALESCE(%s, now()), lease_owner = NULL, lease_expires_at = NULL, "
                "order_id = %s, order_number = %s WHERE id = %s",
                (len(attempts), stamp, result.order_id, result.order_number, entry_id),
            )
            self._insert_attempts(db, entry_id, attempts)

    def mark_done_many(
        self, done: Sequence[tuple[int, PostResult, Sequence[AttemptRecord]]]
    ) -> None:
        """See :meth:`Store.mark_done_many`: one transaction for the whole batch."""
        with self._tx() as db:
            for entry_id, result, attempts in done:
                stamp = _aware(attempts[-1].at) if attempts else None
                db.execute(
                    "UPDATE outbox SET state = 'done', attempts = attempts + %s, "
                    "updated_at = COALESCE(%s, now()), lease_owner = NULL, "
                    "lease_expires_at = NULL, order_id = %s, order_number = %s WHERE id = %s",
                    (len(attempts), stamp, result.order_id, result.order_number, entry_id),
                )
                self._insert_attempts(db, entry_id, attempts)

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
        stamp = _aware(last.at) if last is not None else None
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET state = %s, attempts = attempts + %s, "
                "updated_at = COALESCE(%s, now()), "
                "next_attempt_at = COALESCE(%s, %s, now()), lease_owner = NULL, "
                "lease_expires_at = NULL, error_class = %s, error_code = %s, "
                "error_status = %s, error_message = %s, error_retryable = %s "
                "WHERE id = %s AND state = 'pending' AND (lease_owner IS NULL OR lease_owner = %s)",
                (
                    str(state),
                    len(attempts) if counted is None else counted,
                    stamp,
                    _aware(retry_at) if retry_at is not None else None,
                    stamp,
                    *_error_columns(last.error if last is not None else None),
                    entry_id,
                    owner,
                ),
            )
            self._insert_attempts(db, entry_id, attempts)
            row = db.execute("SELECT state FROM outbox WHERE id = %s", (entry_id,)).fetchone()
        return EntryState(row["state"]) if row is not None else state

    def release(self, entry_ids: Sequence[int], owner: str) -> None:
        """See :meth:`Store.release`."""
        if not entry_ids:
            return
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL "
                "WHERE lease_owner = %s AND id = ANY(%s)",
                (owner, list(entry_ids)),
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
            row = db.execute(
                "INSERT INTO merchants AS m (merchant_id, paused_until, pause_kind, pause_reason, "
                "auth_failures) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (merchant_id) DO UPDATE "
                "SET paused_until = excluded.paused_until, pause_kind = excluded.pause_kind, "
                "pause_reason = excluded.pause_reason, auth_failures = CASE "
                "WHEN excluded.pause_kind = 'auth' THEN m.auth_failures + 1 ELSE 0 END "
                "RETURNING *",
                (merchant_id, _aware(until), str(kind), reason, failures),
            ).fetchone()
        assert row is not None
        pause = _pause(row)
        assert pause is not None
        return pause

    def merchant_pause(self, merchant_id: str) -> MerchantPause | None:
        """See :meth:`Store.merchant_pause`."""
        rows = self._read("SELECT * FROM merchants WHERE merchant_id = %s", (merchant_id,))
        return _pause(rows[0]) if rows else None

    def resume_merchant(self, merchant_id: str) -> MerchantPause | None:
        """See :meth:`Store.resume_merchant`."""
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM merchants WHERE merchant_id = %s FOR UPDATE", (merchant_id,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE merchants SET paused_until = NULL, pause_kind = NULL, "
                "pause_reason = NULL, auth_failures = 0 WHERE merchant_id = %s",
                (merchant_id,),
            )
        return _pause(row)

    def paused_until(self, merchant_id: str) -> datetime | None:
        """See :meth:`Store.paused_until` (over or not by the database's clock)."""
        rows = self._read(
            "SELECT paused_until FROM merchants WHERE merchant_id = %s AND paused_until > now()",
            (merchant_id,),
        )
        return rows[0]["paused_until"] if rows else None  # type: ignore[no-any-return]

    def record_budget(self, merchant_id: str, budget: ApiBudget) -> None:
        """See :meth:`Store.record_budget`."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO merchants (merchant_id, budget_remaining, budget_limit, budget_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (merchant_id) DO UPDATE SET "
                "budget_remaining = excluded.budget_remaining, "
                "budget_limit = excluded.budget_limit, budget_at = excluded.budget_at",
                (merchant_id, budget.remaining, budget.limit, _aware(budget.observed_at)),
            )

    # -- reading and operating --------------------------------------------------------------

    def get(self, entry_id: int) -> OutboxEntry | None:
        """See :meth:`Store.get`."""
        rows = self._read("SELECT * FROM outbox WHERE id = %s", (entry_id,))
        return _entry(rows[0]) if rows else None

    def find(self, merchant_id: str, transaction_id: str) -> OutboxEntry | None:
        """See :meth:`Store.find`."""
        rows = self._read(
            "SELECT * FROM outbox WHERE merchant_id = %s AND transaction_id = %s",
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
        sql = "SELECT * FROM outbox WHERE state = ANY(%s) AND id > %s"
        args: list[Any] = [[str(s) for s in states], after_id]
        if merchant_id is not None:
            sql += " AND merchant_id = %s"
            args.append(merchant_id)
        sql += " ORDER BY id LIMIT %s"
        args.append(limit)
        return [_entry(row) for row in self._read(sql, args)]

    def attempts(self, entry_id: int) -> list[AttemptRecord]:
        """See :meth:`Store.attempts`."""
        rows = self._read("SELECT * FROM attempts WHERE entry_id = %s ORDER BY id", (entry_id,))
        return [
            AttemptRecord(
                at=row["at"],
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
        with self._tx() as db:
            cur = db.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = now(), "
                "updated_at = now(), lease_owner = NULL, lease_expires_at = NULL "
                "WHERE state IN ('dead', 'pending') AND id = ANY(%s)",
                (list(entry_ids),),
            )
            return cur.rowcount

    def requeue_dead(self, merchant_id: str | None = None) -> int:
        """See :meth:`Store.requeue_dead`."""
        sql = (
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = now(), "
            "updated_at = now(), lease_owner = NULL, lease_expires_at = NULL "
            "WHERE state = 'dead'"
        )
        args: list[Any] = []
        if merchant_id is not None:
            sql += " AND merchant_id = %s"
            args.append(merchant_id)
        with self._tx() as db:
            return db.execute(sql, args).rowcount  # type: ignore[arg-type]

    def purge(self, *, states: Sequence[EntryState], before: datetime) -> int:
        """See :meth:`Store.purge`."""
        if not states:
            return 0
        with self._tx() as db:
            return db.execute(
                "DELETE FROM outbox WHERE state = ANY(%s) AND updated_at < %s",
                ([str(s) for s in states], _aware(before)),
            ).rowcount

    def stats(self, now: datetime) -> StoreStats:
        """See :meth:`Store.stats`."""
        found: dict[str, dict[str, Any]] = {}
        for row in self._read(
            "SELECT merchant_id, "
            "COUNT(*) FILTER (WHERE state = 'pending') AS pending, "
            "COUNT(*) FILTER (WHERE state = 'pending' AND next_attempt_at <= %s) AS due, "
            "COUNT(*) FILTER (WHERE state = 'dead') AS dead, "
            "COUNT(*) FILTER (WHERE state = 'done') AS done, "
            "COUNT(*) FILTER (WHERE attempts > 1) AS retried, "
            "MIN(created_at) FILTER (WHERE state = 'pending') AS oldest "
            "FROM outbox GROUP BY merchant_id",
            (_aware(now),),
        ):
            found[row["merchant_id"]] = {
                "pending": row["pending"],
                "due": row["due"],
                "dead": row["dead"],
                "done": row["done"],
                "retried": row["retried"],
                "oldest_pending_at": row["oldest"],
            }
        for row in self._read(
            "SELECT o.merchant_id, COUNT(*) AS failed FROM attempts a JOIN outbox o "
            "ON o.id = a.entry_id WHERE a.outcome IN ('retry', 'rate_limited', 'dead', "
            "'auth_failed') GROUP BY o.merchant_id"
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
                    row["budget_remaining"], row["budget_limit"], row["budget_at"]
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
            "SELECT checkpoint FROM checkpoints WHERE merchant_id = %s AND channel = %s",
            (merchant_id, channel),
        )
        return rows[0]["checkpoint"] if rows else None

    def save_checkpoint(
        self, merchant_id: str, channel: str, checkpoint: str, event_ids: Sequence[str] = ()
    ) -> None:
        """See :meth:`Store.save_checkpoint` (also forgets event ids older than a week)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO checkpoints (merchant_id, channel, checkpoint, updated_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (merchant_id, channel) DO UPDATE SET "
                "checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
                (merchant_id, channel, checkpoint),
            )
            if event_ids:
                db.execute(
                    "INSERT INTO seen_events (merchant_id, channel, event_id, seen_at) "
                    "SELECT %s, %s, e, now() FROM unnest(%s::text[]) AS e "
                    "ON CONFLICT DO NOTHING",
                    (merchant_id, channel, list(event_ids)),
                )
            db.execute(
                "DELETE FROM seen_events WHERE merchant_id = %s AND channel = %s "
                "AND seen_at < now() - %s",
                (merchant_id, channel, _SEEN_EVENTS_KEPT),
            )

    def cached_value(self, merchant_id: str, key: str) -> tuple[str, datetime] | None:
        """See :meth:`Store.cached_value`."""
        rows = self._read(
            "SELECT value, saved_at FROM backend_cache WHERE merchant_id = %s AND key = %s",
            (merchant_id, key),
        )
        return (rows[0]["value"], _aware(rows[0]["saved_at"])) if rows else None

    def save_cached_value(self, merchant_id: str, key: str, value: str) -> None:
        """See :meth:`Store.save_cached_value`."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO backend_cache (merchant_id, key, value, saved_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (merchant_id, key) DO UPDATE SET "
                "value = EXCLUDED.value, saved_at = EXCLUDED.saved_at",
                (merchant_id, key, value),
            )

    def drop_cached_value(self, merchant_id: str, key: str) -> None:
        """See :meth:`Store.drop_cached_value`."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM backend_cache WHERE merchant_id = %s AND key = %s",
                (merchant_id, key),
            )

    def commit_events(
        self,
        commits: Sequence[EventCommit],
        *,
        owner: str | None = None,
        lease_seconds: float = 0.0,
        effect: EventEffect | None = None,
    ) -> list[list[str] | None]:
        """See :meth:`Store.commit_events` (the database's clock for the leases; a concurrent
        commit of the same event ids waits on their rows and then finds them seen)."""
        results: list[list[str] | None] = []
        if not commits:
            return results
        with self._tx() as db:
            if effect is None:
                # A pool's grouped checkpoints: three statements for the whole group, not
                # three round trips per commit.
                results = _commit_plain(db, commits, owner, lease_seconds)
            else:
                tx = _PgEventTx(db)
                for commit in commits:
                    if commit.lease is not None:
                        held = db.execute(
                            "UPDATE leases SET expires_at = now() + make_interval(secs => %s) "
                            "WHERE name = %s AND owner = %s AND expires_at > now() RETURNING 1",
                            (lease_seconds, commit.lease, owner),
                        ).fetchone()
                        if held is None:
                            results.append(None)
                            continue
                    fresh: list[str] = []
                    if commit.event_ids:
                        rows = db.execute(
                            "INSERT INTO seen_events (merchant_id, channel, event_id, seen_at) "
                            "SELECT %s, %s, e, now() FROM unnest(%s::text[]) AS e "
                            "ON CONFLICT DO NOTHING RETURNING event_id",
                            (commit.merchant_id, commit.channel, list(commit.event_ids)),
                        ).fetchall()
                        new = {row["event_id"] for row in rows}
                        fresh = [e for e in dict.fromkeys(commit.event_ids) if e in new]
                    if fresh and effect is not None:
                        effect(tx, commit, fresh)
                    db.execute(
                        "INSERT INTO checkpoints (merchant_id, channel, checkpoint, updated_at) "
                        "VALUES (%s, %s, %s, now()) ON CONFLICT (merchant_id, channel) DO UPDATE "
                        "SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
                        (commit.merchant_id, commit.channel, commit.checkpoint),
                    )
                    results.append(fresh)
            if self._purge_due():
                # Forgetting week-old ids is not worth a statement per commit.
                db.execute(
                    "DELETE FROM seen_events WHERE seen_at < now() - %s", (_SEEN_EVENTS_KEPT,)
                )
        return results

    def _purge_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_purge:
            return False
        self._next_purge = now + _PURGE_EVERY
        return True

    def seen_events(self, merchant_id: str, channel: str, event_ids: Sequence[str]) -> set[str]:
        """See :meth:`Store.seen_events`."""
        if not event_ids:
            return set()
        rows = self._read(
            "SELECT event_id FROM seen_events WHERE merchant_id = %s AND channel = %s "
            "AND event_id = ANY(%s)",
            (merchant_id, channel, list(event_ids)),
        )
        return {row["event_id"] for row in rows}

    def bury_event(
        self, merchant_id: str, channel: str, event_id: str, payload: str, error: BaseException
    ) -> None:
        """See :meth:`Store.bury_event`."""
        info = ErrorInfo.from_error(error)
        with self._tx() as db:
            db.execute(
                "INSERT INTO dead_events (merchant_id, channel, event_id, payload, at, "
                "error_class, error_code, error_status, error_message, error_retryable) "
                "VALUES (%s, %s, %s, %s, now(), %s, %s, %s, %s, %s) "
                "ON CONFLICT (merchant_id, channel, event_id) DO UPDATE SET "
                "payload = excluded.payload, at = excluded.at, "
                "error_class = excluded.error_class, error_code = excluded.error_code, "
                "error_status = excluded.error_status, error_message = excluded.error_message, "
                "error_retryable = excluded.error_retryable",
                (merchant_id, channel, event_id, payload, *_error_columns(info)),
            )

    def dead_events(self, merchant_id: str | None = None) -> list[DeadEvent]:
        """See :meth:`Store.dead_events`."""
        sql = "SELECT * FROM dead_events"
        args: tuple[str, ...] = ()
        if merchant_id is not None:
            sql += " WHERE merchant_id = %s"
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
                    row["at"],
                )
            )
        return found

    # -- outgoing webhooks ------------------------------------------------------------------

    def enqueue_webhook(
        self, message_id: str, merchant_id: str, event_type: str, subject: str, body: str
    ) -> bool:
        """See :meth:`Store.enqueue_webhook`."""
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO webhooks (message_id, merchant_id, event_type, subject, body, state) "
                "VALUES (%s, %s, %s, %s, %s, 'pending') ON CONFLICT (message_id) DO NOTHING "
                "RETURNING 1",
                (message_id, merchant_id, event_type, subject, body),
            ).fetchone()
            return row is not None

    def webhook_subject_seen(self, merchant_id: str, subject: str) -> bool:
        """See :meth:`Store.webhook_subject_seen`."""
        rows = self._read(
            "SELECT 1 FROM webhooks WHERE merchant_id = %s AND subject = %s LIMIT 1",
            (merchant_id, subject),
        )
        return bool(rows)

    def claim_webhooks(
        self, owner: str, merchant_ids: Sequence[str], *, limit: int, lease_seconds: float
    ) -> list[WebhookMessage]:
        """See :meth:`Store.claim_webhooks` (``SKIP LOCKED``: workers never take the same)."""
        if not merchant_ids or limit <= 0:
            return []
        with self._tx() as db:
            rows = db.execute(
                "UPDATE webhooks SET lease_owner = %s, "
                "lease_expires_at = now() + make_interval(secs => %s) "
                "WHERE message_id IN (SELECT message_id FROM webhooks WHERE state = 'pending' "
                "AND next_attempt_at <= now() "
                "AND (lease_expires_at IS NULL OR lease_expires_at < now()) "
                "AND merchant_id = ANY(%s) ORDER BY next_attempt_at, message_id LIMIT %s "
                "FOR UPDATE SKIP LOCKED) RETURNING *",
                (owner, lease_seconds, list(merchant_ids), limit),
            ).fetchall()
        found = [_webhook(row) for row in rows]
        found.sort(key=lambda m: (m.next_attempt_at, m.message_id))
        return found

    def webhook_delivered(self, message_id: str, owner: str, status: int) -> bool:
        """See :meth:`Store.webhook_delivered`."""
        with self._tx() as db:
            row = db.execute(
                "UPDATE webhooks SET state = 'delivered', attempts = attempts + 1, "
                "updated_at = now(), delivered_at = now(), last_status = %s, last_error = NULL, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE message_id = %s AND state = 'pending' AND lease_owner = %s RETURNING 1",
                (status, message_id, owner),
            ).fetchone()
            return row is not None

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
        state = WebhookState.PENDING if retry_at is not None else WebhookState.DEAD
        with self._tx() as db:
            row = db.execute(
                "UPDATE webhooks SET state = %s, attempts = attempts + %s, updated_at = now(), "
                "next_attempt_at = COALESCE(%s, now()), last_status = %s, last_error = %s, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE message_id = %s AND state = 'pending' AND lease_owner = %s RETURNING 1",
                (
                    state.value,
                    1 if count else 0,
                    _aware(retry_at) if retry_at is not None else None,
                    status,
                    error,
                    message_id,
                    owner,
                ),
            ).fetchone()
            return state if row is not None else None

    def webhook(self, message_id: str) -> WebhookMessage | None:
        """See :meth:`Store.webhook`."""
        rows = self._read("SELECT * FROM webhooks WHERE message_id = %s", (message_id,))
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
        rows = self._read(
            "SELECT * FROM webhooks WHERE (%s::text IS NULL OR merchant_id = %s) "
            "AND (%s::text IS NULL OR state = %s) "
            "AND (%s::timestamptz IS NULL OR created_at >= %s) "
            "AND (%s::timestamptz IS NULL OR created_at < %s) "
            "ORDER BY created_at DESC, message_id DESC LIMIT %s",
            (
                merchant_id,
                merchant_id,
                state.value if state else None,
                state.value if state else None,
                since,
                since,
                until,
                until,
                limit,
            ),
        )
        return [_webhook(row) for row in rows]

    def replay_webhooks(self, message_ids: Sequence[str]) -> int:
        """See :meth:`Store.replay_webhooks`."""
        if not message_ids:
            return 0
        with self._tx() as db:
            rows = db.execute(
                "UPDATE webhooks SET state = 'pending', attempts = 0, updated_at = now(), "
                "next_attempt_at = now(), lease_owner = NULL, lease_expires_at = NULL "
                "WHERE message_id = ANY(%s) AND state IN ('delivered', 'dead') RETURNING 1",
                (list(message_ids),),
            ).fetchall()
        return len(rows)

    def purge_webhooks(self, *, states: Sequence[WebhookState], before: datetime) -> int:
        """See :meth:`Store.purge_webhooks`."""
        with self._tx() as db:
            rows = db.execute(
                "DELETE FROM webhooks WHERE state = ANY(%s) AND updated_at < %s RETURNING 1",
                ([WebhookState(s).value for s in states], _aware(before)),
            ).fetchall()
        return len(rows)

    def set_webhook_endpoint(self, merchant_id: str, url: str, disabled: str | None) -> None:
        """See :meth:`Store.set_webhook_endpoint`."""
        with self._tx() as db:
            if disabled is None:
                db.execute(
                    "DELETE FROM webhook_endpoints WHERE merchant_id = %s AND url = %s",
                    (merchant_id, url),
                )
            else:
                db.execute(
                    "INSERT INTO webhook_endpoints (merchant_id, url, disabled) "
                    "VALUES (%s, %s, %s) ON CONFLICT (merchant_id, url) DO UPDATE SET "
                    "disabled = excluded.disabled, at = now()",
                    (merchant_id, url, disabled),
                )

    def webhook_endpoint_disabled(self, merchant_id: str, url: str) -> str | None:
        """See :meth:`Store.webhook_endpoint_disabled`."""
        rows = self._read(
            "SELECT disabled FROM webhook_endpoints WHERE merchant_id = %s AND url = %s",
            (merchant_id, url),
        )
        return str(rows[0]["disabled"]) if rows else None

    def disabled_webhook_endpoints(self) -> dict[tuple[str, str], str]:
        """See :meth:`Store.disabled_webhook_endpoints`."""
        rows = self._read("SELECT merchant_id, url, disabled FROM webhook_endpoints")
        return {(row["merchant_id"], row["url"]): row["disabled"] for row in rows}

    # -- named leases -----------------------------------------------------------------------

    def acquire_lease(self, name: str, owner: str, lease_seconds: float) -> bool:
        """See :meth:`Store.acquire_lease` (the database's clock)."""
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO leases AS l (name, owner, expires_at) "
                "VALUES (%s, %s, now() + make_interval(secs => %s)) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE l.owner = excluded.owner OR l.expires_at < now() RETURNING 1",
                (name, owner, lease_seconds),
            ).fetchone()
            return row is not None

    def acquire_leases(self, names: Sequence[str], owner: str, lease_seconds: float) -> set[str]:
        """See :meth:`Store.acquire_leases` (one statement; names in order, so two workers
        locking the same rows never deadlock)."""
        if not names:
            return set()
        with self._tx() as db:
            rows = db.execute(
                "INSERT INTO leases AS l (name, owner, expires_at) "
                "SELECT n, %s, now() + make_interval(secs => %s) "
                "FROM unnest(%s::text[]) AS n ORDER BY n "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE l.owner = excluded.owner OR l.expires_at < now() RETURNING name",
                (owner, lease_seconds, sorted(set(names))),
            ).fetchall()
        return {row["name"] for row in rows}

    def release_lease(self, name: str, owner: str) -> None:
        """See :meth:`Store.release_lease`."""
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE name = %s AND owner = %s", (name, owner))

    def lease_owners(self, prefix: str = "") -> dict[str, str]:
        """See :meth:`Store.lease_owners`."""
        rows = self._read(
            "SELECT name, owner FROM leases WHERE starts_with(name, %s) AND expires_at >= now()",
            (prefix,),
        )
        return {row["name"]: row["owner"] for row in rows}

    def ping(self) -> None:
        """See :meth:`Store.ping`."""
        self._read("SELECT 1")

    def close(self) -> None:
        """See :meth:`Store.close`."""
        if not self._closed.is_set():
            self._closed.set()
            self._pool.close()


def _commit_plain(
    db: psycopg.Connection[dict[str, Any]],
    commits: Sequence[EventCommit],
    owner: str | None,
    lease_seconds: float,
) -> list[list[str] | None]:
    """Commits without an effect in three statements, rows taken in key order (two workers
    never wait on each other's rows crosswise): the same outcome as one at a time (a lost
    lease writes nothing of its commit; an id is new once, to the first commit naming it; the
    last checkpoint of a feed stays)."""
    names = sorted({c.lease for c in commits if c.lease is not None})
    held: set[str] = set()
    if names and owner is not None:
        rows = db.execute(
            "UPDATE leases SET expires_at = now() + make_interval(secs => %s) WHERE name IN ("
            "SELECT name FROM leases WHERE name = ANY(%s) AND owner = %s AND expires_at > now() "
            "ORDER BY name FOR UPDATE) RETURNING name",
            (lease_seconds, names, owner),
        ).fetchall()
        held = {row["name"] for row in rows}
    kept = [c for c in commits if c.lease is None or c.lease in held]
    wanted = sorted({(c.merchant_id, c.channel, e) for c in kept for e in c.event_ids})
    new: set[tuple[str, str, str]] = set()
    if wanted:
        rows = db.execute(
            "INSERT INTO seen_events (merchant_id, channel, event_id, seen_at) "
            "SELECT m, c, e, now() FROM unnest(%s::text[], %s::text[], %s::text[]) "
            "WITH ORDINALITY AS t(m, c, e, i) ORDER BY i "
            "ON CONFLICT DO NOTHING RETURNING merchant_id, channel, event_id",
            ([w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted]),
        ).fetchall()
        new = {(row["merchant_id"], row["channel"], row["event_id"]) for row in rows}
    positions = latest_checkpoints(kept)
    if positions:
        keys = sorted(positions)
        db.execute(
            "INSERT INTO checkpoints (merchant_id, channel, checkpoint, updated_at) "
            "SELECT m, c, p, now() FROM unnest(%s::text[], %s::text[], %s::text[]) "
            "WITH ORDINALITY AS t(m, c, p, i) ORDER BY i "
            "ON CONFLICT (merchant_id, channel) DO UPDATE "
            "SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
            ([k[0] for k in keys], [k[1] for k in keys], [positions[k] for k in keys]),
        )
    return fresh_by_commit(commits, held, new)
