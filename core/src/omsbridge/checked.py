"""Transactions omsbridge itself just decoded and checked, so a backend need not check them again.

A backend re-checks a transaction's invariants before it writes anything, because an object
built around its constructor (or changed after it was built) may break them. That costs as much
CPU as building the order graph. The export job and ``omsbridge post`` decode the transaction
from JSON (every check runs there) and hand it straight to the backend: they mark it here, and
a backend may skip its re-check for a marked object. Marks are per object identity and vanish
with the object; nothing else marks, so an object from elsewhere is always checked.

The export job also keeps the outbox's JSON with the mark when it was read as written: a backend
that sends the native JSON (pos-spi) posts those bytes rather than decoding the transaction and
encoding it again (:func:`native_json`).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, TypeVar

__all__ = ["is_checked", "mark_checked", "native_json"]

T = TypeVar("T")

# id -> (a weak reference to the object, the native JSON it was decoded from or None)
_marks: dict[int, tuple[weakref.ref[Any], str | None]] = {}
_lock = threading.Lock()


def mark_checked(transaction: T, *, native: str | None = None) -> T:
    """Mark an object omsbridge has just built from JSON (all checks ran); returns it.

    ``native``: that JSON, when it is what :func:`omsbridge.wire.dumps` writes for this object
    (the outbox's payload, read as written: :func:`omsbridge.trusted.loads_as_written`). A
    backend whose request body is the native JSON may then send it as is
    (:func:`native_json`) instead of encoding the object again.
    """
    key = id(transaction)

    def forget(_ref: weakref.ref[Any], key: int = key) -> None:
        with _lock:
            mark = _marks.get(key)
            if mark is not None and mark[0] is _ref:
                del _marks[key]

    with _lock:
        _marks[key] = (weakref.ref(transaction, forget), native)
    return transaction


def is_checked(transaction: Any) -> bool:
    """Whether this very object was marked by :func:`mark_checked` (and is still alive)."""
    mark = _marks.get(id(transaction))
    return mark is not None and mark[0]() is transaction


def native_json(transaction: Any) -> str | None:
    """The native JSON this very object was decoded from, if :func:`mark_checked` was given it
    (the export job's transactions); None for any other object, which is encoded as usual."""
    mark = _marks.get(id(transaction))
    if mark is None or mark[0]() is not transaction:
        return None
    return mark[1]
