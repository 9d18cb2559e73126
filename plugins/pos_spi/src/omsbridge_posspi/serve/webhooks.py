"""Outgoing webhooks, the sending side: sign and deliver what the store's webhook outbox holds.

Messages are recorded by the bridge (:mod:`omsbridge.webhook_outbox`) in the step that imports a
fulfillment order or reports a store's step; the worker runs :class:`WebhookSender`, which

* leases due messages from the store (a sender killed mid-send leaves a lease that runs out:
  the message is sent again, with the same ``webhook-id``: delivery is at least once);
* signs each attempt as the Standard Webhooks specification describes: ``webhook-id``,
  ``webhook-timestamp`` (the attempt's Unix time) and ``webhook-signature`` =
  ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), the key being the base64
  part of the merchant's ``whsec_`` secret;
* counts a 2xx as delivered and anything else (3xx too: redirects are not followed) as a
  failure, retried on the specification's example schedule with jitter (5 s, 5 min, 30 min,
  2 h, 5 h, 10 h, 14 h, 20 h, 24 h), later when a 429 or 503 says ``Retry-After``, and kept as
  a dead letter after the last attempt (``omsbridge webhooks replay`` sends it again);
* disables an endpoint that answers ``410 Gone`` (the specification: the receiver wants no more
  webhooks). Its messages stay pending, not dead, and go out once the endpoint is enabled
  again (``omsbridge webhooks enable``) or the merchant's ``url`` changes.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import logging
import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import attrs
import httpx
from prometheus_client import CollectorRegistry, Counter

from omsbridge.config import Config, Secret, WebhookConfig
from omsbridge.config.webhook import secret_key
from omsbridge.store import Store, WebhookMessage, WebhookState

if TYPE_CHECKING:
    from omsbridge.worker import Worker

__all__ = [
    "DEFAULT_SCHEDULE",
    "DeliverySettings",
    "WebhookSender",
    "run_in_worker",
    "sign",
    "signed_headers",
]

logger = logging.getLogger(__name__)

DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
"""Seconds before the 2nd, 3rd, ... attempt: the specification's example retry schedule."""

_THROTTLED = (429, 503)  # answers whose Retry-After sets the next attempt


def sign(secret: Secret | bytes, message_id: str, timestamp: int, body: str | bytes) -> str:
    """The ``webhook-signature`` value of one attempt: ``v1,<base64 HMAC-SHA256>``."""
    key = secret if isinstance(secret, bytes) else secret_key(secret)
    raw = body if isinstance(body, bytes) else body.encode()
    signed = f"{message_id}.{timestamp}.".encode() + raw
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: Secret, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers (and the content type) of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "content-type": "application/json",
    }


@attrs.frozen
class DeliverySettings:
    """How the sender tries, waits and gives up."""

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    """Waits before each retry; the number of attempts is one more than its length."""
    jitter: float = 0.2
    """Each wait is stretched by up to this fraction, at random (no synchronized retries)."""
    max_retry_after: float = 86400.0
    """A ``Retry-After`` longer than this is cut to it."""
    timeout: float = 15.0
    """Seconds a receiver has to answer (the specification suggests 15 to 30)."""
    lease_seconds: float = 60.0
    """How long a claimed message is this sender's; longer than ``timeout``."""
    batch: int = 8
    """Messages claimed at a time: all of them are sent within one lease (see below)."""
    threads: int = 4
    """Messages sent at a time (a slow receiver does not hold up the others)."""
    idle: float = 1.0
    """Seconds between looks at the store when nothing was due."""

    def __attrs_post_init__(self) -> None:
        # A claimed message whose lease ran out while it still waited for a thread could be
        # claimed and sent by another worker too: a batch must be sent well within one lease.
        rounds = -(-self.batch // max(1, self.threads))
        if self.lease_seconds < rounds * self.timeout + 5:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must exceed {rounds} round(s) of "
                f"timeout ({self.timeout} s) plus 5 s: a batch is sent within one lease"
            )

    @property
    def attempts(self) -> int:
        """Attempts before a message is a dead letter."""
        return len(self.schedule) + 1


def _retry_after(response: httpx.Response, now: datetime) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


class WebhookSender:
    """Sends the due messages of every merchant with a webhook (see the module doc)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        owner: str,
        settings: DeliverySettings | None = None,
        *,
        client: httpx.Client | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.store = store
        self.owner = owner
        self.settings = settings or DeliverySettings()
        self._client = client or httpx.Client(timeout=self.settings.timeout)
        self._owns_client = client is None
        self._clock = clock
        self.deliveries = Counter(
            "omsbridge_webhook_deliveries",
            "Webhook delivery attempts this process made, by outcome (delivered, retry, dead, "
            "disabled: the endpoint answered 410 Gone).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("delivered", "retry", "dead", "disabled"):
            self.deliveries.labels(outcome)  # every series present from the start

    def endpoints(self) -> dict[str, WebhookConfig]:
        """The merchants whose endpoint may be sent to now (configured and not disabled)."""
        configured = {
            merchant_id: merchant.webhook
            for merchant_id, merchant in self.config.merchants.items()
            if merchant.webhook is not None
        }
        if not configured:
            return {}  # a worker without webhooks never asks the store
        disabled = self.store.disabled_webhook_endpoints()
        return {m: hook for m, hook in configured.items() if (m, hook.url) not in disabled}

    def deliver_due(self) -> int:
        """Claim the due messages and send each once; returns how many were tried."""
        endpoints = self.endpoints()
        if not endpoints:
            return 0
        claimed = self.store.claim_webhooks(
            self.owner,
            sorted(endpoints),
            limit=self.settings.batch,
            lease_seconds=self.settings.lease_seconds,
        )
        if not claimed:
            return 0
        if self.settings.threads <= 1 or len(claimed) == 1:
            for message in claimed:
                self.send(message, endpoints[message.merchant_id])
        else:
            workers = min(self.settings.threads, len(claimed))
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda m: self.send(m, endpoints[m.merchant_id]), claimed))
        return len(claimed)

    def send(self, message: WebhookMessage, endpoint: WebhookConfig) -> str:
        """One attempt at one leased message; returns the outcome counted."""
        now = self._clock()
        headers = signed_headers(
            endpoint.secret, message.message_id, int(now.timestamp()), message.body
        )
        extra = {"merchant_id": message.merchant_id}
        try:
            response = self._client.post(
                endpoint.url, content=message.body.encode(), headers=headers
            )
        except httpx.HTTPError as exc:
            # No answer (refused, reset, timed out): it may have arrived; sent again with the
            # same id, and the receiver drops the copy.
            return self._failed(message, None, f"{type(exc).__name__}: no answer", None)
        status = response.status_code
        if 200 <= status < 300:
            self.store.webhook_delivered(message.message_id, self.owner, status)
            logger.info("webhook %s delivered (%d)", message.message_id, status, extra=extra)
            self.deliveries.labels("delivered").inc()
            return "delivered"
        if status == 410:
            reason = (
                f"410 Gone at {now.isoformat(timespec='seconds')} (message {message.message_id})"
            )
            self.store.set_webhook_endpoint(message.merchant_id, endpoint.url, reason)
            self.store.webhook_failed(
                message.message_id,
                self.owner,
                status=410,
                error="410 Gone",
                retry_at=now,
                count=False,
            )
            logger.error(
                "webhook endpoint answered 410 Gone: disabled; its messages wait until "
                "`omsbridge webhooks enable %s`",
                message.merchant_id,
                extra=extra,
            )
            self.deliveries.labels("disabled").inc()
            return "disabled"
        wait = _retry_after(response, now) if status in _THROTTLED else None
        return self._failed(message, status, f"HTTP {status}", wait)

    def _failed(
        self, message: WebhookMessage, status: int | None, error: str, retry_after: float | None
    ) -> str:
        settings = self.settings
        attempts = message.attempts + 1
        extra = {"merchant_id": message.merchant_id}
        if attempts >= settings.attempts:
            self.store.webhook_failed(
                message.message_id, self.owner, status=status, error=error, retry_at=None
            )
            logger.error(
                "webhook %s dead after %d attempts (%s); `omsbridge webhooks replay` sends it again",
                message.message_id,
                attempts,
                error,
                extra=extra,
            )
            self.deliveries.labels("dead").inc()
            return "dead"
        wait = settings.schedule[attempts - 1] * (1 + random.uniform(0, settings.jitter))
        if retry_after is not None:
            wait = max(wait, min(retry_after, settings.max_retry_after))
        retry_at = self._clock() + timedelta(seconds=wait)
        self.store.webhook_failed(
            message.message_id, self.owner, status=status, error=error, retry_at=retry_at
        )
        logger.warning(
            "webhook %s attempt %d failed (%s); again in %.0f s",
            message.message_id,
            attempts,
            error,
            wait,
            extra=extra,
        )
        self.deliveries.labels("retry").inc()
        return "retry"

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop`` is set; a failing store is tried again after a pause."""
        while not stop.is_set():
            try:
                tried = self.deliver_due()
            except Exception:
                logger.exception(
                    "webhook delivery round failed; again in %.1f s", self.settings.idle
                )
                tried = 0
            if tried == 0:
                stop.wait(self.settings.idle)

    def close(self) -> None:
        """Close the HTTP client if this sender made it."""
        if self._owns_client:
            self._client.close()


def run_in_worker(worker: Worker, stop: threading.Event) -> None:
    """The worker task (``omsbridge_register_worker_tasks``): send webhooks until ``stop``."""
    sender = WebhookSender(
        worker.bridge.config, worker.store, worker.job.owner, registry=worker.metrics.registry
    )
    try:
        sender.run(stop)
    finally:
        sender.close()


def describe(message: WebhookMessage) -> Mapping[str, Any]:
    """A message as the CLI shows it (``--json``): everything but the body."""
    return {
        "message_id": message.message_id,
        "merchant_id": message.merchant_id,
        "event_type": message.event_type,
        "subject": message.subject,
        "state": WebhookState(message.state).value,
        "attempts": message.attempts,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "next_attempt_at": message.next_attempt_at.isoformat() if message.next_attempt_at else None,
        "delivered_at": message.delivered_at.isoformat() if message.delivered_at else None,
        "last_status": message.last_status,
        "last_error": message.last_error,
    }
