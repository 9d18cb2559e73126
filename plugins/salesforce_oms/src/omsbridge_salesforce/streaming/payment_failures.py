"""Asynchronous payment failures: ``/event/ProcessExceptionEvent``.

``ensure-refunds-async`` and ``ensure-funds-async`` answer at once; a refund or capture that
fails at the gateway later is told only by a ProcessExceptionEvent (``AttachedToId`` the credit
memo, invoice or order summary; ``OrderSummaryId``; ``Message``). The backend follows that
channel with the same feeds as fulfillment events (either transport); the core
:class:`~omsbridge.listen.Listener` reads it as channel ``payment-failures`` (checkpoints,
dedupe on EventUuid) through :class:`PaymentFailureSource` (``omsbridge worker`` holds it,
leased per merchant, like the fulfillment feed: the backend names the channel in
``event_channels`` and builds source and handler in ``event_source``), and
:class:`RecordPaymentFailures`
attaches each failure to the outbox entry of the return or exchange it belongs to (an attempt
in its history: ``omsbridge export show``), counts it, logs it as an error and calls the
``omsbridge_salesforce_payment_failed`` hook (the alert).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from omsbridge.logs import merchant_log
from omsbridge.store.base import AttemptOutcome, AttemptRecord, ErrorInfo, Store
from omsbridge_salesforce.reading import parse_datetime
from omsbridge_salesforce.returns import memo_of
from omsbridge_salesforce.soql import soql

if TYPE_CHECKING:
    from omsbridge_salesforce.backend import SalesforceBackend

__all__ = [
    "PE_CHANNEL",
    "PaymentFailure",
    "PaymentFailureSource",
    "RecordPaymentFailures",
    "failure_from_message",
    "failure_from_record",
]

logger = logging.getLogger(__name__)

PE_CHANNEL = "/event/ProcessExceptionEvent"
"""Salesforce's channel of payment (capture, apply, refund) failures on order summaries."""


@attrs.frozen
class PaymentFailure:
    """One ProcessExceptionEvent (``event_id`` and ``checkpoint`` as a listener needs them)."""

    event_id: str
    checkpoint: str
    order_summary_id: str | None
    attached_to_id: str | None
    background_operation_id: str | None
    exception_type: str | None
    severity: str | None
    message: str
    description: str | None = None
    occurred_at: datetime | None = None


def failure_from_record(
    record: dict[str, Any], event_id: str, checkpoint: str, created: datetime | None
) -> PaymentFailure | None:
    """A decoded ProcessExceptionEvent payload (Pub/Sub) as a :class:`PaymentFailure`."""
    if not record.get("AttachedToId") and not record.get("OrderSummaryId"):
        return None

    def text(name: str) -> str | None:
        value = record.get(name)
        return None if value is None else str(value)

    return PaymentFailure(
        event_id=event_id,
        checkpoint=checkpoint,
        order_summary_id=text("OrderSummaryId"),
        attached_to_id=text("AttachedToId"),
        background_operation_id=text("BackgroundOperationId"),
        exception_type=text("ExceptionType"),
        severity=text("Severity"),
        message=text("Message") or "payment failed",
        description=text("Description"),
        occurred_at=created,
    )


def failure_from_message(message: dict[str, Any], checkpoint: str) -> PaymentFailure | None:
    """A CometD ProcessExceptionEvent message as a :class:`PaymentFailure`."""
    data = message.get("data") or {}
    payload = dict(data.get("payload") or {})
    event = data.get("event") or {}
    uuid = event.get("EventUuid") or payload.get("EventUuid") or f"replay-{event.get('replayId')}"
    return failure_from_record(
        payload, str(uuid), checkpoint, parse_datetime(payload.get("CreatedDate"))
    )


class PaymentFailureSource:
    """What a core ``Listener`` reads for channel ``payment-failures``: the backend's
    ProcessExceptionEvent feed in place of its fulfillment feed."""

    def __init__(self, backend: SalesforceBackend) -> None:
        self.backend = backend
        self.merchant_id = backend.merchant.merchant_id

    def events(self, checkpoint: str | None, wait: float = 0.0) -> Any:
        """Payment failures after ``checkpoint``."""
        return self.backend.payment_failures(checkpoint, wait=wait)

    def watch(self, callback: Any) -> bool:
        """Have the ProcessExceptionEvent feed call ``callback`` when something arrives (a
        listener pool then reads it only then)."""
        self.backend.payment_feed.on_ready = callback
        return True


class RecordPaymentFailures:
    """The listener's handler: attach each failure to its return's or exchange's outbox entry,
    count it, log it and call the alert hook."""

    owner = "salesforce-events"

    def __init__(self, store: Store, plugin_manager: Any = None) -> None:
        self.store = store
        self.plugin_manager = plugin_manager
        self.count = 0
        """Payment failures recorded (the metric)."""

    def __call__(self, source: Any, failures: Sequence[PaymentFailure]) -> None:
        """Record every failure of a batch."""
        backend: SalesforceBackend = source.backend
        log = merchant_log(logger, source.merchant_id)
        for failure in failures:
            transaction_id = transaction_of(backend, failure)
            entry = self.store.find(source.merchant_id, transaction_id) if transaction_id else None
            if entry is not None:
                record = AttemptRecord(
                    at=failure.occurred_at or datetime.now(UTC),
                    outcome=AttemptOutcome.PAYMENT_FAILED,
                    source="salesforce",
                    error=ErrorInfo(
                        "PaymentFailed",
                        f"{failure.message} (ProcessExceptionEvent on {failure.attached_to_id}"
                        f", background operation {failure.background_operation_id})",
                        code="PROCESS_EXCEPTION",
                    ),
                )
                # A done entry stays done: the failure joins its history (export show).
                self.store.mark_failed(entry.entry_id, self.owner, [record], retry_at=None)
            self.count += 1
            backend.payment_failure_count += 1
            log.error(
                "PAYMENT FAILED at the gateway: %s (%s %s, order summary %s)%s",
                failure.message,
                failure.exception_type or "-",
                failure.attached_to_id,
                failure.order_summary_id,
                f"; outbox entry {entry.entry_id} ({transaction_id})"
                if entry is not None
                else "; no outbox entry found for it",
            )
            hook = getattr(
                getattr(self.plugin_manager, "hook", None),
                "omsbridge_salesforce_payment_failed",
                None,
            )
            if hook is not None:
                hook(
                    merchant_id=source.merchant_id,
                    failure=failure,
                    transaction_id=transaction_id,
                    entry_id=entry.entry_id if entry is not None else None,
                )


def transaction_of(backend: SalesforceBackend, failure: PaymentFailure) -> str | None:
    """The POS transaction whose return or exchange the failure belongs to: the change order
    whose recorded credit memo is ``AttachedToId`` (or, for excess funds, the summary's latest
    change order), read from its external-id tag (``<transaction>#R<n>``)."""
    if not failure.order_summary_id:
        return None
    client = backend.client
    summaries = client.query(
        soql("SELECT OriginalOrderId FROM OrderSummary WHERE Id = {}", failure.order_summary_id)
    )
    original = summaries[0].get("OriginalOrderId") if summaries else None
    if not original:
        return None
    ext = backend.config.order_external_id_field
    orders = client.query(
        soql(
            f"SELECT Id, Description, CreatedDate, {ext} FROM Order "
            "WHERE RelatedOrderId = {} ORDER BY CreatedDate",
            original,
        )
    )
    tagged = [o for o in orders if o.get(ext)]
    chosen = next(
        (o for o in tagged if memo_of(o.get("Description")) == failure.attached_to_id), None
    )
    if chosen is None and failure.attached_to_id == failure.order_summary_id and tagged:
        chosen = tagged[-1]
    if chosen is None:
        return None
    return str(chosen[ext]).rsplit("#", 1)[0]
