"""Transactions omsbridge itself just decoded and checked, so a backend need not check them again.

A backend re-checks a transaction's invariants before it writes anything, because an object
built around its constructor (or changed after it was built) may break them. That costs as much
CPU as building the order graph. The export job and ``omsbridge post`` decode the transaction
from JSON (every check runs there) and hand it straight to the backend: they mark it here, and
a backend may skip its re-check for a marked object. Marks are per object identity and vanish
with the object; nothing else marks, so an object from elsewhere is always checked.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, TypeVar

__all__ = ["is_checked", "mark_checked"]

T = TypeVar("T")

_marks: dict[int, weakref.ref[Any]] = {}
_lock = threading.Lock()


def mark_checked(transaction: T) -> T:
    """Mark an object omsbridge has just built from JSON (all checks ran); returns it."""
    key = id(transaction)

    def forget(_ref: weakref.ref[Any], key: int = key) -> None:
        with _lock:
            if _marks.get(key) is _ref:
                del _marks[key]

    with _lock:
        _marks[key] = weakref.ref(transaction, forget)
    return transaction


def is_checked(transaction: Any) -> bool:
    """Whether this very object was marked by :func:`mark_checked` (and is still alive)."""
    ref = _marks.get(id(transaction))
    return ref is not None and ref() is transaction
