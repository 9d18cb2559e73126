"""What the org already holds of a return: the reconciliation behind exactly-once returns.

A return is four writes that Salesforce offers no idempotency key for: ``submit-return`` (makes
a change order), tagging that change order with ``<txn>#R<n>`` (the order external-id field),
``create-credit-memo`` and ``ensure-refunds-async``. An answer lost after the org committed
(a timeout), a 5xx or a crash of the process between two of them leaves the org ahead of what
the connector knows. Instead of a local journal (which a crash on another machine, or a post
outside the export job, would not have), every retry asks the org, using only fields the
reference confirms (``reference/salesforce/objects``):

* **submit-return** — a change order (``Order.RelatedOrderId`` = the original order) that is
  not tagged yet and whose lines are exactly the planned ones (``OrderItem.OriginalOrderItemId``
  and ``|Quantity|``) is the one a lost attempt made: it is adopted (tagged), not submitted
  again. Only looked for when a planned line already has ``QuantityReturned > 0`` (nothing can
  have been submitted otherwise), so a first return costs no extra call. A change order whose
  ``OrderItemSummaryChange`` rows say ``ChangeType = Cancel`` is never taken;
* **create-credit-memo** — a ``CreditMemo`` whose ``ReferenceEntityId`` is the order summary
  (or the original or change order), created at or after the change order, for the change
  order's amount, and not already recorded by another change order of the same original;
* **ensure-refunds-async** — the credit memo's ``Balance``: 0 means refunded.

What is done is recorded in the change order's ``Description`` (``omsbridge return: submitted``
→ ``credit memo <id>`` → ``refunded <id>``), so a retry of a finished step costs no query.

Limits (the reference is silent; see docs): a return made by someone else in the org, untagged,
with exactly the same lines and quantities, between a lost answer and its retry, would be
adopted as ours; with a real org's asynchronous refunds, a memo whose refund is still being
processed shows a balance and would be asked for again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from omsbridge import Rejected
from omsbridge_salesforce.client import SalesforceClient
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.reading import as_decimal, parse_datetime
from omsbridge_salesforce.soql import soql

__all__ = ["STATE", "ReturnLedger", "memo_of", "state_text"]

STATE = "omsbridge return"
"""Prefix of the progress kept in a return's change-order Description."""

_ZERO = Decimal(0)


def state_text(step: str, memo: str | None = None) -> str:
    """The Description written after ``step`` (``submitted``, ``credit memo``, ``refunded``)."""
    return f"{STATE}: {step}" + (f" {memo}" if memo else "")


def memo_of(state: str | None) -> str | None:
    """The credit memo id a change-order Description records, if any."""
    text = (state or "").strip()
    if not text.startswith(STATE) or not ("credit memo" in text or "refunded" in text):
        return None
    return text.rsplit(" ", 1)[-1] or None


class ReturnLedger:
    """Queries that tell which steps of a return the org already holds."""

    def __init__(self, client: SalesforceClient, config: SalesforceConfig) -> None:
        self._client = client
        self._config = config

    def untagged_change_order(
        self, original_order_id: str, wanted: Mapping[str, Decimal]
    ) -> dict[str, Any] | None:
        """The untagged change order of ``original_order_id`` whose product lines are exactly
        ``wanted`` (item summary id -> quantity), newest first; None when there is none."""
        if not wanted:
            return None
        ext = self._config.order_external_id_field
        found = self._client.queries(
            {
                "items": soql(
                    "SELECT Id, OriginalOrderItemId FROM OrderItemSummary WHERE Id IN {:in}",
                    sorted(wanted),
                ),
                "lines": soql(
                    "SELECT OrderId, OriginalOrderItemId, Quantity FROM OrderItem "
                    f"WHERE Order.RelatedOrderId = {{}} AND Order.{ext} = null",
                    original_order_id,
                ),
            }
        )
        by_item = {row["Id"]: row.get("OriginalOrderItemId") for row in found["items"]}
        target: dict[str, Decimal] = {}
        for summary_item, quantity in wanted.items():
            item = by_item.get(summary_item)
            if not item:
                return None  # cannot tell: never adopt on a guess
            target[item] = target.get(item, _ZERO) + quantity
        orders: dict[str, dict[str, Decimal]] = {}
        for line in found["lines"]:
            lines = orders.setdefault(line["OrderId"], {})
            key = line.get("OriginalOrderItemId") or ""
            lines[key] = lines.get(key, _ZERO) + abs(as_decimal(line.get("Quantity")))
        matching = [order_id for order_id, lines in orders.items() if _same(lines, target)]
        if matching:
            cancels = self._cancels(wanted)
            matching = [order_id for order_id in matching if order_id not in cancels]
        if not matching:
            return None
        rows = self._client.query(
            soql(
                "SELECT Id, Description, CreatedDate FROM Order WHERE Id IN {:in} "
                "ORDER BY CreatedDate DESC",
                matching,
            )
        )
        return rows[0] if rows else None

    def _cancels(self, wanted: Mapping[str, Decimal]) -> set[str]:
        """Change orders that cancelled (not returned) these item summaries, by
        ``OrderItemSummaryChange.ChangeType``: a cancel of the same lines and quantities is
        never taken for a lost return. An org (or emulator) without that object tells nothing."""
        try:
            rows = self._client.query(
                soql(
                    "SELECT ChangeOrderItem.OrderId, ChangeType FROM OrderItemSummaryChange "
                    "WHERE OrderItemSummaryId IN {:in}",
                    sorted(wanted),
                )
            )
        except Rejected as error:
            if error.code != "INVALID_TYPE":
                raise
            return set()
        return {
            str((row.get("ChangeOrderItem") or {}).get("OrderId"))
            for row in rows
            if row.get("ChangeType") == "Cancel"
        }

    def credit_memo(self, summary: Mapping[str, Any], change_order_id: str) -> str | None:
        """The credit memo made from this change order by an attempt whose answer was lost."""
        original = summary.get("OriginalOrderId")
        found = self._client.queries(
            {
                "orders": soql(
                    "SELECT Id, Description, CreatedDate, TotalAmount FROM Order "
                    "WHERE RelatedOrderId = {}",
                    original,
                ),
                "memos": soql(
                    "SELECT Id, CreatedDate, TotalAmount FROM CreditMemo "
                    "WHERE ReferenceEntityId IN {:in} ORDER BY CreatedDate",
                    [summary["Id"], *([original] if original else []), change_order_id],
                ),
            }
        )
        change = next((o for o in found["orders"] if o["Id"] == change_order_id), None)
        if change is None:
            return None
        claimed = {memo_of(o.get("Description")) for o in found["orders"]} - {None}
        since = parse_datetime(change.get("CreatedDate"))
        amount = abs(as_decimal(change.get("TotalAmount")))
        for memo in found["memos"]:
            if memo["Id"] in claimed:
                continue
            if not _not_before(parse_datetime(memo.get("CreatedDate")), since):
                continue
            priced = memo.get("TotalAmount") is not None and change.get("TotalAmount") is not None
            if priced and abs(as_decimal(memo["TotalAmount"])) != amount:
                continue
            return str(memo["Id"])
        return None

    def memo_balance(self, memo_id: str) -> Decimal | None:
        """What is left to refund on a credit memo (None: no such memo)."""
        rows = self._client.query(soql("SELECT Id, Balance FROM CreditMemo WHERE Id = {}", memo_id))
        return as_decimal(rows[0].get("Balance")) if rows else None


def _same(lines: Mapping[str, Decimal], target: Mapping[str, Decimal]) -> bool:
    # Every planned line with its quantity, and nothing else: returns are submitted without
    # shipping reduction, so a change order of ours has no delivery-charge line either.
    return dict(lines) == dict(target)


def _not_before(created: datetime | None, since: datetime | None) -> bool:
    if created is None or since is None:
        return True
    return created >= since
