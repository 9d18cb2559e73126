"""A store written by the previous version (schema 1) opens, gains the pause columns, and works."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from omsbridge.store import PauseKind, SqliteStore
from omsbridge.store.sqlite import SCHEMA_VERSION


def test_schema_1_store_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE merchants (
            merchant_id TEXT PRIMARY KEY, lease_owner TEXT, lease_expires_at TEXT,
            paused_until TEXT, budget_remaining INTEGER, budget_limit INTEGER, budget_at TEXT
        );
        INSERT INTO merchants (merchant_id, paused_until) VALUES ('A', '2000-01-01T00:00:00+00:00');
        """
    )
    db.commit()
    db.close()
    with SqliteStore(path) as store:
        old = store.merchant_pause("A")
        assert old is not None and old.kind == PauseKind.RATE_LIMIT and old.failures == 0
        until = datetime.now(UTC) + timedelta(minutes=1)
        first = store.pause_merchant("A", until, kind=PauseKind.AUTH, reason="AuthFailed: x")
        second = store.pause_merchant("A", until, kind=PauseKind.AUTH, reason="AuthFailed: x")
        assert (first.failures, second.failures) == (1, 2)
        assert store.resume_merchant("A") == second
        assert store.merchant_pause("A") is None
        [[version]] = store._read("SELECT value FROM meta WHERE key = 'schema_version'")
    assert int(version) == SCHEMA_VERSION == 2
