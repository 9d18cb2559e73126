"""Search cursors every backend can share: opaque to callers, checked strictly when read back.

A cursor is ``c1.`` followed by base64url JSON ``{"q": <the query's criteria>, "after": [...]}``:
the criteria (an :class:`~omsbridge.model.OrderQuery` without its cursor, so a cursor alone
fetches the next page) and the backend's keyset position. Whatever comes back is untrusted
input: its length, alphabet, JSON, nesting, criteria (through ``OrderQuery``'s own checks, so
``page_size`` stays within 1-200) and every position value are checked, and any problem is one
named error, :class:`~omsbridge.errors.InvalidTransaction` at path ``cursor`` with code
``INVALID_CURSOR``, never ``ValueError`` or a traceback.

There is no MAC: a cursor carries nothing the caller could not ask for in a query of its own,
so a forged but well-formed cursor is just another query, and a MAC would need a key shared
by every process that serves the merchant.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from omsbridge import wire
from omsbridge.errors import InvalidTransaction, Issue
from omsbridge.model import OrderQuery
from omsbridge.model.orders import MAX_CURSOR_LENGTH

__all__ = ["MAX_CURSOR_LENGTH", "decode_cursor", "encode_cursor", "position"]

_VERSION = "c1."
_ALPHABET = re.compile(r"^[A-Za-z0-9_-]*$")


def encode_cursor(query: OrderQuery, after: Sequence[str | int | None]) -> str:
    """An opaque cursor continuing ``query`` after the keyset position ``after``."""
    criteria = wire.unstructure(attrs.evolve(query, cursor=None))
    raw = json.dumps({"q": criteria, "after": list(after)}, separators=(",", ":"))
    return _VERSION + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(
    query: OrderQuery,
    after: Sequence[Callable[[Any], Any]],
    *,
    backend: str | None = None,
) -> tuple[OrderQuery, tuple[Any, ...]]:
    """The criteria and keyset position carried by ``query.cursor``.

    ``after`` checks each position value in turn (raise ``ValueError`` to refuse one; see
    :func:`position`). Returns the criteria as an ``OrderQuery`` (its own page size) and the
    checked position; :class:`InvalidTransaction` (``INVALID_CURSOR``) for anything else.
    """
    cursor = query.cursor or ""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError(f"longer than {MAX_CURSOR_LENGTH} characters")
        if not cursor.startswith(_VERSION):
            raise ValueError("not a version this omsbridge writes")
        body = cursor[len(_VERSION) :]
        if not _ALPHABET.match(body):
            raise ValueError("not base64url")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise ValueError("not base64url") from None
        data = wire.parse(raw)
        if not isinstance(data, dict) or set(data) != {"q", "after"}:
            raise ValueError('expected an object with "q" and "after"')
        criteria = wire.structure(data["q"], OrderQuery)
        if criteria.cursor is not None:
            raise ValueError("a cursor inside a cursor")
        values = data["after"]
        if not isinstance(values, list) or len(values) != len(after):
            raise ValueError(f"expected a position of {len(after)} values")
        checked = tuple(check(value) for check, value in zip(after, values, strict=True))
    except InvalidTransaction as exc:
        raise _invalid(backend, "; ".join(str(i) for i in exc.issues)) from None
    except ValueError as exc:
        raise _invalid(backend, str(exc)) from None
    return criteria, checked


def position(kind: type, *, optional: bool = False, max_len: int = 255) -> Callable[[Any], Any]:
    """A check for one position value: ``position(int)``, ``position(str, optional=True)``."""

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"a position value is not a {kind.__name__}")
        if isinstance(value, str) and len(value) > max_len:
            raise ValueError("a position value is too long")
        return value

    return check


def _invalid(backend: str | None, why: str) -> InvalidTransaction:
    return InvalidTransaction(
        [Issue("cursor", f"is not a cursor this search returned ({why})")],
        code="INVALID_CURSOR",
        backend=backend,
    )
