"""Invariant checking shared by the model classes: collect every problem, then raise once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import (
    Clamped,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
    localcontext,
)
from typing import Any

from omsbridge.errors import InvalidTransaction, Issue

# ISO 4217 currencies whose minor unit is not 2 digits; all others are taken as 2.
_MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


MAX_INTEGER_DIGITS = 16
"""Digits a number may have before its decimal point (Salesforce currency and quantity fields
are precision 18, scale 2: 16 integer digits)."""

MAX_PLACES = 6
"""Decimal places a quantity or rate may have (an amount is held to its currency's)."""

MAX_WRITTEN_DIGITS = 40
"""Digits (and exponent) a number may be written with, trailing zeros included."""

# Every number is written with at most 40 digits, so a product of two has at most 80 and a sum
# of any realistic count of those far fewer than 200: 200 digits never round. Rounded/Inexact still trap, so a bug that let a
# bigger number through fails loudly instead of rounding a total.
_EXACT = Context(
    prec=200,
    Emax=999,
    Emin=-999,
    traps=[
        Clamped,
        DivisionByZero,
        Inexact,
        InvalidOperation,
        Overflow,
        Rounded,
        Subnormal,
        Underflow,
    ],
)


def exact() -> AbstractContextManager[Context]:
    """A local Decimal context in which money arithmetic is exact or raises, never rounds."""
    return localcontext(_EXACT)


def describe(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words: ``a number (5)``, ``an array``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        text = str(value)
        return f"a number ({text if len(text) <= 30 else text[:27] + '...'})"
    if isinstance(value, str):
        shown = json.dumps(value if len(value) <= 30 else value[:27] + "...", ensure_ascii=False)
        return f"a string ({shown})"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def _not_decimal(value: Any) -> str:
    if isinstance(value, float):  # only from Python callers: JSON numbers are read as Decimal
        return f"a float ({value!r}), which cannot hold money exactly"
    return describe(value)


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
            self.fail(path, f"must be a string, got {describe(value)}")
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
            self.fail(path, f"must be a decimal number, got {_not_decimal(value)}")
            return False
        if not value.is_finite():
            self.fail(path, f"must be a finite number, got {value}")
            return False
        if integer_digits(value) > MAX_INTEGER_DIGITS:
            self.fail(
                path,
                f"must have at most {MAX_INTEGER_DIGITS} digits before the decimal point, "
                f"got {_short(value)}",
            )
            return False
        if positive and value <= 0:
            self.fail(path, f"must be > 0, got {value}")
            return False
        if non_negative and value < 0:
            self.fail(path, f"must be >= 0, got {value}")
            return False
        allowed = MAX_PLACES if places is None else places
        if decimal_places(value) > allowed:
            self.fail(path, f"must have at most {allowed} decimal places, got {_short(value)}")
            return False
        _, digits, exponent = value.as_tuple()
        if (
            len(digits) > MAX_WRITTEN_DIGITS
            or not isinstance(exponent, int)
            or abs(exponent) > MAX_WRITTEN_DIGITS
        ):
            # 1.000...0 or 0E-5000: a fine value, written with more digits than arithmetic on
            # it should have to carry.
            self.fail(
                path,
                f"must be written with at most {MAX_WRITTEN_DIGITS} digits, got {_short(value)}",
            )
            return False
        return True

    def aware(self, value: Any, path: str, *, optional: bool = False) -> None:
        """Check a timezone-aware datetime."""
        if value is None:
            self.require(optional, path, "is required")
        elif not isinstance(value, datetime):
            self.fail(path, f"must be a date-time, got {describe(value)}")
        elif value.tzinfo is None or value.utcoffset() is None:
            self.fail(path, "must include a timezone offset (e.g. 2026-11-22T10:15:00+01:00)")

    def day(self, value: Any, path: str) -> None:
        """Check an optional calendar date."""
        if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
            self.fail(path, f"must be a date, got {describe(value)}")

    def nested(self, prefix: str, errors: Iterable[Issue]) -> None:
        """Adopt issues raised by a nested object, prefixing their paths."""
        for issue in errors:
            self.fail(join(prefix, issue.path), issue.message)

    def done(self) -> None:
        """Raise :class:`InvalidTransaction` carrying every recorded issue, if any."""
        if self.issues:
            # One value checked by two rules (a total's digits, then its currency's places)
            # must not be reported twice.
            raise InvalidTransaction(dict.fromkeys(self.issues))


def join(prefix: str, path: str) -> str:
    """Join two path parts: ``join("lines[2]", "quantity") == "lines[2].quantity"``."""
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def decimal_places(value: Decimal) -> int:
    """Significant decimal places of a finite Decimal (``1.50`` has 1), computed without any
    context, so nothing is rounded first."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0 or not any(digits):
        return 0
    trailing = 0
    for digit in reversed(digits):
        if digit != 0 or trailing >= -exponent:
            break
        trailing += 1
    return max(0, -exponent - trailing)


def integer_digits(value: Decimal) -> int:
    """Digits of a finite Decimal before its decimal point (``0.5`` has 0), without a context."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0
    return max(0, len(digits) + exponent - _leading_zeros(digits))


def _leading_zeros(digits: tuple[int, ...]) -> int:
    count = 0
    for digit in digits:
        if digit:
            break
        count += 1
    return count


def _short(value: Decimal) -> str:
    """A number for an error message, cut short when it is very long."""
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-12:]}"


def indexed(name: str, items: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """Yield ``("name[i]", item)`` pairs for error paths."""
    for i, item in enumerate(items):
        yield f"{name}[{i}]", item


def money_sum(values: Iterable[Decimal]) -> Decimal:
    """Sum Decimals exactly, starting from Decimal 0 (so an empty sum is Decimal, not int)."""
    with exact():
        return sum(values, Decimal(0))
