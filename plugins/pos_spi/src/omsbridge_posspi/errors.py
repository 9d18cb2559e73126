"""Map SPI answers into the core error taxonomy (:mod:`omsbridge.errors`).

=======  ==========================  ===============================================
status   raised                      meaning
=======  ==========================  ===============================================
400      ``InvalidTransaction``      bad input; ``issues`` name each field
401/403  ``AuthFailed``              credentials refused (after one token refresh)
404      ``NotFound``                no such order, line or fulfillment order
409      ``Conflict``                state conflict, or idempotency key reused
422      ``Rejected``                business rule refused it; ``code`` says which
429      ``RateLimited``             ``retry_after`` from the Retry-After header
5xx      ``TransientBackendError``   try again (a post is safe to repeat)
timeout  ``TransientBackendError``   outcome unknown (a post is safe to repeat)
=======  ==========================  ===============================================
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from omsbridge.errors import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidTransaction,
    Issue,
    NotFound,
    RateLimited,
    Rejected,
    TransientBackendError,
)

__all__ = ["BACKEND", "error_for_status", "parse_retry_after"]

BACKEND = "pos-spi"

_BY_STATUS: dict[int, type[BackendError]] = {
    401: AuthFailed,
    403: AuthFailed,
    404: NotFound,
    409: Conflict,
    422: Rejected,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date), if given."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(
    status: int,
    body: Any,
    *,
    operation: str,
    retry_after: str | None = None,
) -> BackendError:
    """The core error for an SPI error answer (``body`` is the parsed JSON, or text, or None)."""
    fields: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    code = fields.get("code") if isinstance(fields.get("code"), str) else f"HTTP_{status}"
    detail = fields.get("message")
    if not isinstance(detail, str) or not detail:
        detail = body.strip()[:200] if isinstance(body, str) and body.strip() else "no details"
    message = f"{operation}: {status} {code}: {detail}"
    kwargs: dict[str, Any] = {"code": code, "status": status, "backend": BACKEND}
    if status == 400:
        return InvalidTransaction(_issues(fields, detail), **kwargs)
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(retry_after), **kwargs)
    if status >= 500:
        return TransientBackendError(message, **kwargs)
    return _BY_STATUS.get(status, Rejected)(message, **kwargs)


def _issues(fields: Mapping[str, Any], detail: str) -> list[Issue]:
    listed = fields.get("issues")
    if isinstance(listed, list) and listed:
        return [
            Issue(str(item.get("path") or ""), str(item.get("message") or detail))
            for item in listed
            if isinstance(item, Mapping)
        ]
    field = fields.get("field")
    return [Issue(field if isinstance(field, str) else "", detail)]
