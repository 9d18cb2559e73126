"""Invariant checking shared by the model classes: collect every problem, then raise once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from omsbridge.errors import InvalidTransaction, Issue

# ISO 4217 currencies whose minor unit is not 2 digits; all others are taken as 2.
_MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


def minor_units(currency: str) -> int:
    """How many decimal places amounts in ``currency`` may carry."""
    return _MINOR_UNITS.get(currency, 2)


class Checker:
    """Collects :class:`Issue` objects for one object under construction."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def fail(self, path: str, message: str) -> None:
        """Record a problem at ``path``."""
        self.issues.append(Issue(path, message))

    def require(self, ok: bool, path: str, message: str) -> bool:
        """Record ``message`` at ``path`` unless ``ok``; return ``ok``."""
        if not ok:
            self.fail(path, message)
        return ok

    def text(self, value: Any, path: str, *, optional: bool = False, max_len: int = 255) -> None:
        """Check a non-blank string of at most ``max_len`` characters."""
        if value is None:
            self.require(optional, path, "is required")
        elif not isinstance(value, str):
            self.fail(path, f"must be a string, got {type(value).__name__}")
        elif not value.strip():
            self.fail(path, "must not be blank")
        elif len(value) > max_len:
            self.fail(path, f"must be at most {max_len} characters, got {len(value)}")

    def decimal(
        self,
        value: Any,
        path: str,
        *,
        optional: bool = False,
        positive: bool = False,
        non_negative: bool = False,
        places: int | None = None,
    ) -> bool:
        """Check a finite Decimal (never a float), optionally > 0, >= 0 or with at most N places."""
        if value is None:
            return self.require(optional, path, "is required")
        if isinstance(value, bool) or not isinstance(value, Decimal):
            self.fail(path, f"must be a decimal number, got {type(value).__name__}")
            return False
        if not value.is_finite():
            self.fail(path, f"must be a finite number, got {value}")
            return False
        if positive and value <= 0:
            self.fail(path, f"must be > 0, got {value}")
            return False
        if non_negative and value < 0:
            self.fail(path, f"must be >= 0, got {value}")
            return False
        if places is not None and _places(value) > places:
            self.fail(path, f"must have at most {places} decimal places, got {value}")
            return False
        return True

    def aware(self, value: Any, path: str, *, optional: bool = False) -> None:
        """Check a timezone-aware datetime."""
        if value is None:
            self.require(optional, path, "is required")
        elif not isinstance(value, datetime):
            self.fail(path, f"must be a datetime, got {type(value).__name__}")
        elif value.tzinfo is None or value.utcoffset() is None:
            self.fail(path, "must include a timezone offset (e.g. 2026-11-22T10:15:00+01:00)")

    def day(self, value: Any, path: str) -> None:
        """Check an optional calendar date."""
        if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
            self.fail(path, f"must be a date, got {type(value).__name__}")

    def nested(self, prefix: str, errors: Iterable[Issue]) -> None:
        """Adopt issues raised by a nested object, prefixing their paths."""
        for issue in errors:
            self.fail(join(prefix, issue.path), issue.message)

    def done(self) -> None:
        """Raise :class:`InvalidTransaction` carrying every recorded issue, if any."""
        if self.issues:
            raise InvalidTransaction(self.issues)


def join(prefix: str, path: str) -> str:
    """Join two path parts: ``join("lines[2]", "quantity") == "lines[2].quantity"``."""
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def indexed(name: str, items: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """Yield ``("name[i]", item)`` pairs for error paths."""
    for i, item in enumerate(items):
        yield f"{name}[{i}]", item


def money_sum(values: Iterable[Decimal]) -> Decimal:
    """Sum Decimals starting from Decimal 0 (so an empty sum is Decimal, not int)."""
    return sum(values, Decimal(0))
