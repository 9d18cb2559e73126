"""Outgoing webhooks, the recording side: what happened becomes a message in the store's outbox.

The bridge records a message in the same step that hands an imported fulfillment order to the
POS (:meth:`Merchant.deliver`, called by the listener before it stores its checkpoint) and after a
store's fulfillment step reached the OMS (:meth:`Merchant.update_fulfillment`). A failure to
record raises, so the listener handles its batch again rather than move on without the message.

The message id is derived from the event itself (merchant, what it is about, its content), never
from the time or a counter: recording the same event twice (a batch handled again after a
crash) finds the message kept already and sends nothing new. That id is the ``webhook-id`` of
every attempt and replay, so receivers deduplicate on it, as the Standard Webhooks
specification asks. Sending (signing, retries, dead letters) is the worker's job; see the
pos-spi distribution's ``omsbridge_posspi.serve.webhooks``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from omsbridge import wire
from omsbridge.config.webhook import WebhookConfig
from omsbridge.model import FulfillmentOrder, FulfillmentUpdate
from omsbridge.store import Store

__all__ = ["message_id", "record_fulfillment_order", "record_fulfillment_update"]


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def message_id(merchant_id: str, kind: str, subject: str, data: Any) -> str:
    """The stable id of one event: the same event always gets the same id (no ``.`` in it, as
    the specification requires of ``webhook-id``)."""
    digest = hashlib.sha256(
        "\x00".join((merchant_id, kind, subject, _canonical(data))).encode()
    ).hexdigest()
    return f"msg_{digest[:32]}"


def _body(event_type: str, occurred: datetime, data: dict[str, Any]) -> str:
    # Compact JSON: the body is signed and sent byte for byte as stored.
    payload = {
        "type": event_type,
        "timestamp": occurred.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def record_fulfillment_order(
    store: Store,
    merchant_id: str,
    config: WebhookConfig,
    fulfillment_order: FulfillmentOrder,
    *,
    now: datetime | None = None,
) -> str | None:
    """Keep a ``fulfillment_order.created`` (first message about it) or ``.updated`` message;
    returns its id, or None when the endpoint did not subscribe to that event type."""
    order = wire.unstructure(fulfillment_order)
    subject = fulfillment_order.fulfillment_order_id
    # The id leaves the type out: a batch handled again after a crash finds the first message
    # (then called "created") and must not add an "updated" one.
    msg_id = message_id(merchant_id, "fulfillment_order", subject, order)
    if store.webhook(msg_id) is not None:
        return msg_id
    seen = store.webhook_subject_seen(merchant_id, subject)
    event_type = "fulfillment_order.updated" if seen else "fulfillment_order.created"
    if not config.wants(event_type):
        return None
    data = {"merchant_id": merchant_id, "fulfillment_order": order}
    body = _body(event_type, now or datetime.now(UTC), data)
    store.enqueue_webhook(msg_id, merchant_id, event_type, subject, body)
    return msg_id


def record_fulfillment_update(
    store: Store,
    merchant_id: str,
    config: WebhookConfig,
    update: FulfillmentUpdate,
    *,
    now: datetime | None = None,
) -> str | None:
    """Keep a ``fulfillment_order.status_reported`` message (a store's step reached the OMS);
    returns its id, or None when the endpoint did not subscribe to it."""
    event_type = "fulfillment_order.status_reported"
    if not config.wants(event_type):
        return None
    data = wire.unstructure(update)
    subject = update.fulfillment_order_id
    msg_id = message_id(merchant_id, "fulfillment_update", subject, data)
    occurred = update.occurred_at or now or datetime.now(UTC)
    body = _body(event_type, occurred, {"merchant_id": merchant_id, "update": data})
    store.enqueue_webhook(msg_id, merchant_id, event_type, subject, body)
    return msg_id
