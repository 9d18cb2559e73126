"""BORIS on the sandbox: an online (seeded, shipped) order found from the store, returned in the
store and refunded to the card it was paid with."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from omni_helpers import WebShop

from omsbridge import (
    Bridge,
    CardTender,
    LineItem,
    LineKind,
    OrderQuery,
    OriginalLine,
    TaxLine,
    Transaction,
    TransactionKind,
)

D = Decimal


def test_boris_search_detail_return_and_refund_to_the_card(bridge: Bridge, shop: WebShop) -> None:
    merchant = bridge.for_merchant("DEMO")
    online = shop.demo["orders"][2]  # Amanda's belt, shipped from the warehouse
    # Search from the store: by the customer's last name, then by the order number.
    page = merchant.search_orders(OrderQuery(last_name="Freeman"))
    assert online["order_number"] in {h.order_number for h in page.hits}
    (hit,) = merchant.search_orders(OrderQuery(order_number=online["order_number"])).hits
    assert (hit.email, hit.item_count, hit.total) == ("amanda.freeman@example.com", 1, D("57.19"))
    # The detail the associate sees: the line, what can be returned, the card it was paid by.
    detail = merchant.get_order(hit.order_id)
    (belt,) = detail.lines
    assert (belt.sku, belt.quantity_fulfilled, belt.quantity_returned) == (
        "BELT-LTH-90",
        D(1),
        D(0),
    )
    (card,) = [p for p in detail.payments if p.method != "Refund"]
    assert card.amount == hit.total and card.last4 == "1111"
    # The return in the store (the item and its tax), refunded to that card.
    returned = Transaction(
        transaction_id="BORIS-1",
        kind=TransactionKind.RETURN,
        created_at=datetime.now(UTC),
        currency="USD",
        store_id="store-001",
        lines=(
            LineItem(
                1,
                "BELT-LTH-90",
                D(1),
                D("45.00"),
                kind=LineKind.RETURN,
                return_reason="Wrong Size",
                taxes=(TaxLine("Sales Tax", D("3.60"), D("0.08")),),
                original=OriginalLine(order_id=hit.order_id, line_number=1),
            ),
        ),
        total=D("-48.60"),
        tenders=(CardTender(D("-48.60"), brand="Visa", last4="1111"),),
    )
    result = merchant.post(returned)
    assert result.created
    after = merchant.get_order(hit.order_id)
    assert after.lines[0].quantity_returned == D(1)
    refunds = [p for p in after.payments if p.method == "Refund"]
    assert [p.amount for p in refunds] == [D("-48.60")]
    # The refund went to the original payment: the card's payment summary shows it.
    (summary,) = shop.rows(
        "SELECT RefundedAmount, Method FROM OrderPaymentSummary "
        f"WHERE OrderSummary.OriginalOrderId = '{hit.order_id}'"
    )
    assert summary["RefundedAmount"] == 48.6
    # Posting the same return again changes nothing.
    again = merchant.post(returned)
    assert not again.created
    assert [
        p.amount for p in merchant.get_order(hit.order_id).payments if p.method == "Refund"
    ] == [D("-48.60")]
