"""Builders shared by the return and exchange tests: a returnable sale, returns and exchanges
of it, posting until done, and counting what the org holds for it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sf_export_helpers import WHEN

from omsbridge import (
    BackendError,
    CardTender,
    LineItem,
    LineKind,
    OriginalLine,
    PostResult,
    Transaction,
    TransactionKind,
)
from omsbridge_salesforce.backend import SalesforceBackend

D = Decimal


def sale(txn_id: str) -> Transaction:
    """Three units of A at 10.00, paid by card (taken with: fulfilled, so returnable)."""
    line = LineItem(line_number=1, sku="A", quantity=D(3), unit_price=D("10.00"), name="A")
    return Transaction(
        transaction_id=txn_id,
        kind=TransactionKind.SALE,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=(line,),
        total=D("30.00"),
        tenders=(CardTender(D("30.00"), brand="Visa", last4="4242"),),
    )


def returned(order: str, quantity: str = "1") -> LineItem:
    """``quantity`` units of line 1 of ``order`` coming back."""
    return LineItem(
        line_number=1,
        sku="A",
        quantity=D(quantity),
        unit_price=D("10.00"),
        kind=LineKind.RETURN,
        return_reason="Wrong Size",
        original=OriginalLine(order_id=order, line_number=1),
    )


def return_of(txn_id: str, order: str, quantity: int = 1) -> Transaction:
    """A return of ``quantity`` units of A (10.00 each), refunded to the card."""
    total = D("-10.00") * quantity
    return Transaction(
        transaction_id=txn_id,
        kind=TransactionKind.RETURN,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=(returned(order, str(quantity)),),
        total=total,
        tenders=(CardTender(total, brand="Visa", last4="4242"),),
    )


def exchange_of(txn_id: str, order: str) -> Transaction:
    """One unit of A back, one B (25.00) out; the customer pays the difference."""
    new = LineItem(line_number=2, sku="B", quantity=D(1), unit_price=D("25.00"), name="B")
    return Transaction(
        transaction_id=txn_id,
        kind=TransactionKind.EXCHANGE,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=(returned(order), new),
        total=D("15.00"),
        tenders=(CardTender(D("15.00"), brand="Visa", last4="4242"),),
    )


def post_until_done(backend: SalesforceBackend, txn: Transaction, tries: int = 4) -> PostResult:
    """Post like the export job: retry what is retryable; anything else fails the test."""
    for _ in range(tries - 1):
        try:
            return backend.post(txn)
        except BackendError as error:
            assert error.retryable, f"{txn.transaction_id}: {error.code}: {error}"
    return backend.post(txn)


def org_holds(sb: Any, sale_id: str) -> dict[str, Any]:
    """Change orders, credit memos, refunds and the returned quantity of one sale, counted in
    the org's own tables."""
    (original,) = [o for o in sb.store.where("Order") if o.get("POS_Transaction_Id__c") == sale_id]
    (summary,) = sb.store.where("OrderSummary", OriginalOrderId=original["Id"])
    (item,) = [
        i
        for i in sb.store.where("OrderItemSummary", OrderSummaryId=summary["Id"])
        if i["TypeCode"] == "Product"
    ]
    changes = sb.store.where("Order", RelatedOrderId=original["Id"])
    memos = sb.store.where("CreditMemo", ReferenceEntityId=summary["Id"])
    payments = {
        p["Id"] for p in sb.store.where("OrderPaymentSummary", OrderSummaryId=summary["Id"])
    }
    refunds = [r for r in sb.store.where("Refund") if r["OrderPaymentSummaryId"] in payments]
    return {
        "change_orders": len(changes),
        "tags": sorted(str(c.get("POS_Transaction_Id__c")) for c in changes),
        "credit_memos": len(memos),
        "memo_balance": [D(str(m["Balance"])) for m in memos],
        "refunds": len(refunds),
        "refunded": sum((D(str(r["Amount"])) for r in refunds), D(0)),
        "returned": D(str(item["QuantityReturned"])),
    }
