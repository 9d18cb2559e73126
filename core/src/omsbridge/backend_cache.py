"""A merchant's durable cache for its backend (looked-up record ids), kept in the bridge's store.

Backends find it as ``MerchantContext.cache`` (None when the bridge has no store). It is a
cache: a failure to read or write it is logged and treated as a miss, never as an error of the
operation that used it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omsbridge.store import Store

__all__ = ["BackendCache"]

log = logging.getLogger(__name__)


class BackendCache:
    """String values by key for one merchant, each with the time it was saved."""

    def __init__(self, store: Callable[[], Store], merchant_id: str) -> None:
        self._store = store
        self._merchant_id = merchant_id

    def __repr__(self) -> str:
        return f"BackendCache(merchant_id={self._merchant_id!r})"

    def get(self, key: str, max_age: timedelta) -> str | None:
        """The value saved under ``key`` if it is younger than ``max_age``, else None."""
        try:
            found = self._store().cached_value(self._merchant_id, key)
        except Exception as exc:
            log.warning("backend cache %r not read: %s: %s", key, type(exc).__name__, exc)
            return None
        if found is None:
            return None
        value, saved_at = found
        return value if datetime.now(UTC) - saved_at <= max_age else None

    def put(self, key: str, value: str) -> None:
        """Save ``value`` under ``key`` (replacing what was there)."""
        try:
            self._store().save_cached_value(self._merchant_id, key, value)
        except Exception as exc:
            log.warning("backend cache %r not saved: %s: %s", key, type(exc).__name__, exc)

    def drop(self, key: str) -> None:
        """Forget ``key`` (what it held turned out stale)."""
        try:
            self._store().drop_cached_value(self._merchant_id, key)
        except Exception as exc:
            log.warning("backend cache %r not dropped: %s: %s", key, type(exc).__name__, exc)
