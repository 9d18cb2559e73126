"""SOQL literals, escaped exactly as Salesforce's "Quoted String Escape Sequences" page says.

Every value that goes into a query passes through here, so a search for ``O'Brien`` or
``%' OR Name LIKE '`` is matched literally and can never change the query::

    soql("SELECT Id FROM Account WHERE PersonEmail = {}", email)
    soql("SELECT Id FROM Order WHERE Name LIKE {:like}", "Amanda")   # 'Amanda%'
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "escape", "escape_like", "in_list", "like", "literal", "looks_like_id", "quote", "soql",
]  # fmt: skip

# Backslash must be replaced first so the backslashes added for the other characters are
# not doubled again.
_ESCAPES = (
    ("\\", "\\\\"),
    ("'", "\\'"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\b", "\\b"),
    ("\f", "\\f"),
)


def escape(value: str) -> str:
    """Escape a string for use inside single quotes (not in LIKE: see :func:`escape_like`)."""
    for raw, escaped in _ESCAPES:
        value = value.replace(raw, escaped)
    return value


def escape_like(value: str) -> str:
    """Escape a string for use inside a LIKE pattern: also ``%`` and ``_`` become literal."""
    return escape(value).replace("%", "\\%").replace("_", "\\_")


def quote(value: str) -> str:
    """A quoted string literal: ``O'Brien`` -> ``'O\\'Brien'``."""
    return f"'{escape(value)}'"


def like(value: str, *, prefix: bool = True, contains: bool = False) -> str:
    """A LIKE pattern matching ``value`` literally: as a prefix (default), a substring, or whole."""
    core = escape_like(value)
    if contains:
        return f"'%{core}%'"
    return f"'{core}%'" if prefix else f"'{core}'"


def literal(value: Any) -> str:
    """Any Python value as a SOQL literal (strings quoted, dates unquoted in UTC, null...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a datetime in SOQL must be timezone-aware")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"cannot put a {type(value).__name__} into SOQL")


def in_list(values: Iterable[Any]) -> str:
    """``('a','b')`` for an IN clause; refuses an empty list (SOQL has no empty IN)."""
    items = [literal(v) for v in values]
    if not items:
        raise ValueError("an IN list needs at least one value")
    return "(" + ",".join(items) + ")"


class _Formatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "like":
            return like(str(value))
        if format_spec == "contains":
            return like(str(value), contains=True)
        if format_spec == "in":
            return in_list(value)
        if format_spec == "literal":
            return literal(value)
        if format_spec:
            raise ValueError(f"unknown SOQL format spec {format_spec!r}")
        return literal(value)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion:
            raise ValueError("conversions (!r, !s) are not allowed in SOQL templates")
        return value


_FORMATTER = _Formatter()


def soql(template: str, *args: Any, **kwargs: Any) -> str:
    """Fill a SOQL template; every value becomes a literal (``{:like}``, ``{:in}`` for LIKE/IN)."""
    return _FORMATTER.vformat(template, args, kwargs)


_ID_SHAPE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def looks_like_id(value: str) -> bool:
    """Whether ``value`` is a Salesforce record id (15 chars, or 18 with a valid checksum).

    A string that is not an id must never be compared with an Id field: Salesforce refuses
    the whole query.
    """
    if not _ID_SHAPE.match(value):
        return False
    if len(value) == 15:
        return True
    suffix = ""
    for chunk in (value[0:5], value[5:10], value[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _CHECKSUM[bits]
    return suffix == value[15:]
