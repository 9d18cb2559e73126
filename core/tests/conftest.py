"""Core test fixtures: a plugin manager and registry with the in-memory test backends only."""

from __future__ import annotations

import json
import os

import pytest
from fakes import MemoryPlugin
from paths import EXAMPLES

from omsbridge import BackendRegistry
from omsbridge.plugins import new_plugin_manager


@pytest.fixture
def pm():
    """A plugin manager with only the test plugin (no entry points loaded)."""
    manager = new_plugin_manager()
    manager.register(MemoryPlugin(), name="memory-plugin")
    return manager


@pytest.fixture
def registry(pm):
    """The registry built from the test plugin."""
    return BackendRegistry.from_plugins(pm)


@pytest.fixture
def example():
    """Load an example transaction as plain JSON data by file stem."""

    def load(name: str) -> dict:
        return json.loads((EXAMPLES / f"{name}.json").read_text())

    return load


# -- the stores: every store test runs on SQLite and on PostgreSQL ------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for this test session. In CI (``CI`` set) a missing PostgreSQL is a
    failure, never a skip; elsewhere the PostgreSQL tests are skipped without it."""
    from pgserver import PgServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL is not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PgServer(bin_dir)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request):
    """Which store implementation a test runs on."""
    return request.param


@pytest.fixture
def store_section(store_kind, request):
    """The config's ``[store]`` table for ``store_kind`` (a fresh database for PostgreSQL)."""
    if store_kind == "sqlite":
        return '[store]\npath = "state/outbox.db"\n'
    server = request.getfixturevalue("pg_server")
    return f'[store]\nurl = "{server.new_database()}"\n'


@pytest.fixture
def make_store(store_kind, request, tmp_path):
    """Open stores of ``store_kind``; each call opens another connection to the same store."""
    from omsbridge.store import SqliteStore

    opened = []
    url = None
    if store_kind == "postgres":
        url = request.getfixturevalue("pg_server").new_database()

    def make(**options):
        if url is None:
            store = SqliteStore(tmp_path / "store.db", **options)
        else:
            from omsbridge.store.postgres import PostgresStore

            store = PostgresStore(url, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
