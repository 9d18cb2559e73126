"""Durable state: the outbox of transactions waiting for their OMS, and event checkpoints.

>>> store = open_store(config.store)       # SqliteStore for a file path
"""

from __future__ import annotations

from omsbridge.config import StoreConfig
from omsbridge.store.base import (
    AttemptOutcome,
    AttemptRecord,
    DeadEvent,
    EntryState,
    ErrorInfo,
    MerchantPause,
    MerchantStats,
    OutboxEntry,
    PauseKind,
    Store,
    StoreStats,
)
from omsbridge.store.sqlite import SqliteStore

__all__ = [
    "AttemptOutcome",
    "AttemptRecord",
    "DeadEvent",
    "EntryState",
    "ErrorInfo",
    "MerchantPause",
    "MerchantStats",
    "OutboxEntry",
    "PauseKind",
    "SqliteStore",
    "Store",
    "StoreStats",
    "open_store",
]


def open_store(config: StoreConfig) -> Store:
    """Open the store a config names (today always a SQLite file; a PostgreSQL store plugs in
    here without any caller changing)."""
    return SqliteStore(config.path)
