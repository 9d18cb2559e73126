"""The backend cache in the store: values per merchant and key, with their age (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from omsbridge.backend_cache import BackendCache
from omsbridge.store.sqlite import SqliteStore


def test_values_round_trip_per_merchant_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SqliteStore(path) as store:
        store.save_cached_value("M1", "k", "one")
        store.save_cached_value("M1", "k", "two")  # replaced
        store.save_cached_value("M2", "k", "other")
    with SqliteStore(path) as store:
        found = store.cached_value("M1", "k")
        assert found is not None and found[0] == "two"
        assert found[1].tzinfo is not None
        other = store.cached_value("M2", "k")
        assert other is not None and other[0] == "other"
        store.drop_cached_value("M1", "k")
        assert store.cached_value("M1", "k") is None
        assert store.cached_value("M2", "k") is not None


def test_cache_handle_honours_max_age(tmp_path: Path) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with SqliteStore(tmp_path / "s.db", clock=lambda: now[0]) as store:
        cache = BackendCache(lambda: store, "M1")
        cache.put("k", "v")
        # Saved at the store's clock (2026-01-01): far older than an hour by the wall clock.
        assert cache.get("k", max_age=timedelta(hours=1)) is None
        assert cache.get("k", max_age=timedelta(days=36500)) == "v"
        cache.drop("k")
        assert cache.get("k", max_age=timedelta(days=36500)) is None


def test_a_failing_store_is_a_miss_not_an_error() -> None:
    def broken() -> SqliteStore:
        raise OSError("disk gone")

    cache = BackendCache(broken, "M1")
    assert cache.get("k", max_age=timedelta(hours=1)) is None
    cache.put("k", "v")  # logged, not raised
    cache.drop("k")
