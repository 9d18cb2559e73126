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
    EventCommit,
    EventEffect,
    EventTx,
    MerchantPause,
    MerchantStats,
    OutboxEntry,
    PauseKind,
    Store,
    StoreStats,
    WebhookMessage,
    WebhookState,
)
from omsbridge.store.sqlite import SqliteStore

__all__ = [
    "AttemptOutcome",
    "AttemptRecord",
    "DeadEvent",
    "EntryState",
    "ErrorInfo",
    "EventCommit",
    "EventEffect",
    "EventTx",
    "MerchantPause",
    "MerchantStats",
    "OutboxEntry",
    "PauseKind",
    "SqliteStore",
    "Store",
    "StoreStats",
    "WebhookMessage",
    "WebhookState",
    "open_store",
]


def open_store(config: StoreConfig) -> Store:
    """Open the store a config names: PostgreSQL for a ``url`` (needs ``omsbridge[postgres]``),
    else the SQLite file at ``path``."""
    if config.url is not None:
        from omsbridge.store.postgres import PostgresStore  # psycopg only when asked for

        return PostgresStore(config.url)
    return SqliteStore(config.path)
