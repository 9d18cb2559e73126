"""The outbox admin over HTTP, for the ``[serve.admin]`` client: what ``omsbridge export list``,
``show`` and ``retry`` do on the command line.

``GET /admin/outbox?state=dead&merchant=SHOPNOW&limit=50&after=0``, ``GET /admin/outbox/{id}``
(with its attempts and transaction), ``POST /admin/outbox/{id}/retry``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import attrs

from omsbridge.store import EntryState, OutboxEntry, Store
from omsbridge_posspi.server.errors import ApiError

__all__ = ["entry_detail", "list_entries", "retry_entry"]

_MAX_LIMIT = 500


def _plain(_: Any, __: Any, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    return value


def _entry(entry: OutboxEntry) -> dict[str, Any]:
    data = attrs.asdict(entry, value_serializer=_plain)
    data.pop("payload")
    return data


def list_entries(store: Store, args: Mapping[str, str]) -> dict[str, Any]:
    """Entries in the asked states (default pending and dead), oldest first, one page."""
    states_text = args.get("state", "pending,dead")
    try:
        states = [EntryState(s.strip()) for s in states_text.split(",") if s.strip()]
    except ValueError:
        known = ", ".join(s.value for s in EntryState)
        raise ApiError(
            400,
            "INVALID_REQUEST",
            f"state must be among {known}, got {states_text!r}",
            field="state",
        ) from None
    limit = _whole(args, "limit", 100, 1, _MAX_LIMIT)
    after = _whole(args, "after", 0, 0, 2**62)
    entries = store.entries(
        states=states, merchant_id=args.get("merchant") or None, limit=limit, after_id=after
    )
    items = [_entry(e) for e in entries]
    return {"items": items, "next_after": items[-1]["entry_id"] if len(items) == limit else None}


def entry_detail(store: Store, entry_id: int) -> dict[str, Any]:
    """One entry with its attempts and the stored transaction."""
    entry = store.get(entry_id)
    if entry is None:
        raise ApiError(404, "NOT_FOUND", f"no outbox entry {entry_id}")
    data = _entry(entry)
    data["attempts_history"] = [
        attrs.asdict(a, value_serializer=_plain) for a in store.attempts(entry_id)
    ]
    data["transaction"] = json.loads(entry.payload)
    return data


def retry_entry(store: Store, entry_id: int) -> dict[str, Any]:
    """Make a dead (or backed-off) entry pending and due now; the export job posts it next."""
    entry = store.get(entry_id)
    if entry is None:
        raise ApiError(404, "NOT_FOUND", f"no outbox entry {entry_id}")
    if entry.state == EntryState.DONE:
        raise ApiError(409, "ALREADY_POSTED", f"outbox entry {entry_id} is posted already")
    store.requeue([entry_id])
    updated = store.get(entry_id)
    assert updated is not None
    return _entry(updated)


def _whole(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = args.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ApiError(
            400,
            "INVALID_REQUEST",
            f"{name} must be a whole number from {low} to {high}, got {text!r}",
            field=name,
        )
    return int(text)
