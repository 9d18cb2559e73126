"""A merchant's outgoing webhook: ``[merchants.<id>.webhook]`` (where and what to push).

::

    [merchants.SHOPNOW.webhook]
    url = "https://pos.example.com/hooks/omsbridge"
    secret = { env = "SHOPNOW_WEBHOOK_SECRET" }   # "whsec_" + base64 of 24 to 64 random bytes
    events = ["fulfillment_order.created", "fulfillment_order.updated"]   # default: all

Messages are signed as the Standard Webhooks specification describes; the secret is a secret
reference like every other secret of the config, checked here (prefix, base64, length) so a
mistyped secret is a load-time error, not a stream of deliveries the receiver rejects.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from omsbridge.config.secrets import Secret, resolve_secret
from omsbridge.errors import Issue
from omsbridge.wire import describe

__all__ = ["WEBHOOK_EVENTS", "WebhookConfig", "parse_webhook", "secret_key"]

WEBHOOK_EVENTS: tuple[str, ...] = (
    "fulfillment_order.created",
    "fulfillment_order.updated",
    "fulfillment_order.status_reported",
)
"""The event types omsbridge pushes: an imported fulfillment order seen for the first time, seen
again with a changed state, and a store's fulfillment step (pick, pack, ready, ...) that reached
the OMS."""

_SECRET_PREFIX = "whsec_"
_MIN_KEY, _MAX_KEY = 24, 64  # bytes, as the specification asks of a signing secret
_KEYS = ("url", "secret", "events")


@attrs.frozen
class WebhookConfig:
    """Where a merchant's webhooks go, the key they are signed with, and which events."""

    url: str
    secret: Secret = attrs.field(repr=False)
    events: tuple[str, ...] = WEBHOOK_EVENTS

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribed to ``event_type``."""
        return event_type in self.events


def secret_key(secret: Secret) -> bytes:
    """The HMAC key of a ``whsec_`` secret (its base64 part, decoded)."""
    text = secret.reveal()
    if text.startswith(_SECRET_PREFIX):
        text = text[len(_SECRET_PREFIX) :]
    return base64.b64decode(text, validate=True)


def _secret_problem(secret: Secret) -> str | None:
    # Never quote the value: only what is wrong with it.
    if not secret.reveal().startswith(_SECRET_PREFIX):
        return f'must be a Standard Webhooks secret ("{_SECRET_PREFIX}" + base64), it has no prefix'
    try:
        key = secret_key(secret)
    except (binascii.Error, ValueError):
        return f'the part after "{_SECRET_PREFIX}" is not valid base64'
    if not _MIN_KEY <= len(key) <= _MAX_KEY:
        return f"must decode to {_MIN_KEY} to {_MAX_KEY} bytes, it decodes to {len(key)}"
    return None


def parse_webhook(
    table: Any, prefix: str, base_dir: Path, issues: list[Issue]
) -> WebhookConfig | None:
    """Check a ``[merchants.<id>.webhook]`` table; problems go to ``issues`` under ``prefix``."""
    if not isinstance(table, Mapping):
        issues.append(Issue(prefix, f"must be a table, got {describe(table)}"))
        return None
    before = len(issues)
    for key in table:
        if key not in _KEYS:
            issues.append(Issue(f"{prefix}.{key}", f"unknown key (expected {', '.join(_KEYS)})"))
    url = table.get("url")
    if url is None:
        issues.append(Issue(f"{prefix}.url", "is required (the POS endpoint, https://...)"))
    elif not isinstance(url, str):
        issues.append(Issue(f"{prefix}.url", f"expected a URL, got {describe(url)}"))
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            issues.append(Issue(f"{prefix}.url", "must be an http:// or https:// URL with a host"))
        elif parts.username or parts.password:
            issues.append(Issue(f"{prefix}.url", "must not carry a user or password"))
    secret: Secret | None = None
    if "secret" not in table:
        issues.append(Issue(f"{prefix}.secret", 'is required ({ env = "VAR" } or { file = ... })'))
    else:
        try:
            secret = resolve_secret(table["secret"], base_dir)
        except ValueError as exc:
            issues.append(Issue(f"{prefix}.secret", str(exc)))
        else:
            problem = _secret_problem(secret)
            if problem:
                issues.append(Issue(f"{prefix}.secret", f"{problem} (from {secret.source})"))
    events = _events(table.get("events"), f"{prefix}.events", issues)
    if len(issues) > before or secret is None or not isinstance(url, str):
        return None
    return WebhookConfig(url=url, secret=secret, events=events)


def _events(raw: Any, path: str, issues: list[Issue]) -> tuple[str, ...]:
    if raw is None:
        return WEBHOOK_EVENTS
    known = ", ".join(WEBHOOK_EVENTS)
    if not isinstance(raw, list) or not raw:
        issues.append(Issue(path, f"must be a non-empty list of event types ({known})"))
        return ()
    for value in raw:
        if not isinstance(value, str) or value not in WEBHOOK_EVENTS:
            shown = repr(value)[:40] if isinstance(value, str) else describe(value)
            issues.append(Issue(path, f"unknown event type {shown}; expected any of {known}"))
            return ()
    return tuple(dict.fromkeys(raw))
