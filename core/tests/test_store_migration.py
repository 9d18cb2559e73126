"""A store written by the previous version (schema 1) opens, gains the pause columns, and works."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

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
    assert int(version) == SCHEMA_VERSION == 4


def test_postgres_schema_is_versioned_and_migrated_once(pg_server):
    import psycopg

    from omsbridge.store.postgres import (
        MIGRATIONS,
        PostgresStore,
        SchemaError,
        migrate,
        schema_version,
    )

    url = pg_server.new_database()
    assert schema_version(url) == 0
    with pytest.raises(SchemaError, match="store migrate"):
        PostgresStore(url, auto_migrate=False)
    assert migrate(url) == (0, [v for v, _, _ in MIGRATIONS])
    assert migrate(url) == (MIGRATIONS[-1][0], [])
    PostgresStore(url, auto_migrate=False).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO omsbridge_schema (version, description) VALUES (99, 'future')")
    with pytest.raises(SchemaError, match="newer"):
        migrate(url)


def test_store_migrate_command(pg_server, tmp_path):
    from click.testing import CliRunner

    from omsbridge.cli import cli

    url = pg_server.new_database()
    config = tmp_path / "c.toml"
    merchant = '[merchants.A]\nbackend = "pos-spi"\n[merchants.A.pos-spi]\nbase_url = "http://127.0.0.1:1"\nauth = { type = "api_key", api_key = { env = "HOME" } }\n'
    config.write_text(f'[store]\nurl = "{url}"\n{merchant}')
    runner = CliRunner()
    first = runner.invoke(cli, ["store", "migrate", "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert "schema 0 -> 4 (applied 1, 2, 3, 4)" in first.output
    again = runner.invoke(cli, ["store", "migrate", "--config", str(config)])
    assert "schema 4, up to date" in again.output
    config.write_text(f'[store]\nurl = "mysql://x"\n{merchant}')
    bad = runner.invoke(cli, ["store", "migrate", "--config", str(config)])
    assert bad.exit_code == 1 and "store.url: must be a postgresql:// connection URL" in bad.stderr
