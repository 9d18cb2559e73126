"""attrs validators for backend settings classes; their errors carry the field's name, so
``omsbridge config check`` prints ``merchants.ID.<backend>.<field>: <problem>``.

    @attrs.frozen
    class MySettings:
        base_url: str = attrs.field(validator=http_url())
        timeout: float = attrs.field(default=10.0, validator=positive())
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import attrs

from omsbridge.errors import FieldError

__all__ = ["http_url", "one_of", "positive", "setting"]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def setting(check: Callable[[Any], str | None]) -> Validator:
    """Make an attrs validator from ``check(value) -> problem or None``."""

    def validate(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        problem = check(value)
        if problem:
            raise FieldError(attribute.name, problem)

    return validate


def positive() -> Validator:
    """The number must be > 0."""
    return setting(lambda v: None if v > 0 else f"must be > 0, got {v}")


def one_of(choices: Iterable[Any]) -> Validator:
    """The value must be one of ``choices``."""
    allowed = tuple(choices)
    return setting(
        lambda v: (
            None if v in allowed else f"must be one of {', '.join(map(str, allowed))}, got {v!r}"
        )
    )


def http_url(*, https_only: bool = False) -> Validator:
    """The value must be an absolute http(s) URL (https only when asked)."""

    def check(value: Any) -> str | None:
        parts = urlsplit(value) if isinstance(value, str) else None
        schemes = ("https",) if https_only else ("http", "https")
        if parts is None or parts.scheme not in schemes or not parts.netloc:
            return f"must be an absolute {' or '.join(schemes)} URL, got {value!r}"
        return None

    return setting(check)
