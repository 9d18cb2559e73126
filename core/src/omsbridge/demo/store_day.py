"""A realistic store day, as transactions and operations any backend can run.

Sales with each tender, a mixed cart, an endless-aisle order, an in-store order picked up later,
a return against an earlier sale, an exchange, a cancellation and searches. Transaction ids carry
a run stamp so repeated runs never collide.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs

from omsbridge.bridge import Merchant
from omsbridge.model import (
    Address,
    CancelLine,
    CardTender,
    CashTender,
    Charge,
    ChargeType,
    Customer,
    DigitalWalletTender,
    Fulfillment,
    FulfillmentType,
    GiftCardTender,
    LineItem,
    LineKind,
    OrderQuery,
    OriginalLine,
    TaxLine,
    Tender,
    Transaction,
    TransactionKind,
)
from omsbridge.spi import Capability

__all__ = ["Step", "store_day"]

TAX_RATE = Decimal("0.0863")
CENT = Decimal("0.01")
STORE = "STORE-0042"
JANE = Customer(
    customer_id="C-100234", email="jane.doe@example.com", first_name="Jane", last_name="Doe"
)
SAM = Customer(
    customer_id="C-100871", email="sam.obrien@example.com", first_name="Sam", last_name="O'Brien"
)
SHIP_TO = Address(
    line1="500 Market St",
    city="San Francisco",
    region="CA",
    postal_code="94105",
    country="US",
    name="Jane Doe",
)
ONLINE = Fulfillment(
    FulfillmentType.ONLINE, ship_to=SHIP_TO, location_id="DC-WEST", shipping_method="GROUND"
)
PICKUP_LATER = Fulfillment(FulfillmentType.IN_STORE, "PICKUP_LATER", store_id=STORE)


@attrs.define
class Step:
    """One thing the store does; ``run`` returns details for the summary."""

    name: str
    needs: Capability
    run: Callable[[Merchant, dict[str, Any]], dict[str, Any]]


def _line(n: int, sku: str, name: str, qty: int, price: str, **kw: Any) -> LineItem:
    unit = Decimal(price)
    tax = (unit * qty * TAX_RATE).quantize(CENT)
    return LineItem(
        line_number=n, line_id=f"L{n}", sku=sku, name=name, quantity=Decimal(qty), unit_price=unit,
        taxes=(TaxLine("CA Sales Tax", tax, rate=TAX_RATE),), **kw,
    )  # fmt: skip


def _txn(
    stamp: str,
    seq: int,
    kind: TransactionKind,
    lines: tuple[LineItem, ...],
    tenders: Callable[[Decimal], tuple[Tender, ...]],
    *,
    customer: Customer | None = None,
    charges: tuple[Charge, ...] = (),
) -> Transaction:
    total = sum((line.signed_total for line in lines), Decimal(0)) + sum(
        (c.total for c in charges), Decimal(0)
    )
    when = datetime(2026, 11, 22, 9, 0, tzinfo=timezone(timedelta(hours=-8))) + timedelta(
        minutes=17 * seq
    )
    return Transaction(
        transaction_id=f"DEMO-{stamp}-{seq:03d}", kind=kind, created_at=when, currency="USD",
        store_id=STORE, register_id="REG-3", associate_id="A-1187", locale="en_US", region="US",
        lines=lines, total=total, tenders=tenders(total), customer=customer, charges=charges,
        order_number=f"{stamp}-{seq:03d}",
    )  # fmt: skip


def _card(amount: Decimal) -> tuple[Tender, ...]:
    return (
        CardTender(
            amount, brand="VISA", last4="4242", auth_code="A1B2C3", gateway_reference="pi_demo_1"
        ),
    )


def _post(
    key: str, make: Callable[[dict[str, Any]], Transaction]
) -> Callable[[Merchant, dict[str, Any]], dict[str, Any]]:
    def run(merchant: Merchant, state: dict[str, Any]) -> dict[str, Any]:
        txn = make(state)
        result = merchant.post(txn)
        state[key] = (txn, result)
        return {"transaction_id": txn.transaction_id, "order_id": result.order_id,
                "order_number": result.order_number, "total": f"{txn.total} {txn.currency}"}  # fmt: skip

    return run


def store_day(stamp: str) -> list[Step]:
    """The demo's steps for one merchant, in order."""

    def sale(
        seq: int,
        lines: tuple[LineItem, ...],
        tenders: Callable[[Decimal], tuple[Tender, ...]],
        **kw: Any,
    ) -> Callable[[dict[str, Any]], Transaction]:
        return lambda state: _txn(stamp, seq, TransactionKind.SALE, lines, tenders, **kw)

    def returned(state: dict[str, Any]) -> Transaction:
        original, result = state["card_sale"]
        sold = original.lines[1]
        line = _line(1, sold.sku, sold.name or sold.sku, 1, str(sold.unit_price), kind=LineKind.RETURN,
                     return_reason="Wrong size",
                     original=OriginalLine(result.order_id, line_number=sold.line_number, line_id=sold.line_id,
                                           purchased_quantity=sold.quantity))  # fmt: skip
        return _txn(stamp, 10, TransactionKind.RETURN, (line,), _card, customer=JANE)

    def exchange(state: dict[str, Any]) -> Transaction:
        original, result = state["card_sale"]
        sold = original.lines[0]
        back = _line(1, sold.sku, sold.name or sold.sku, 1, str(sold.unit_price), kind=LineKind.RETURN,
                     return_reason="Exchange for size M",
                     original=OriginalLine(result.order_id, line_number=sold.line_number, line_id=sold.line_id,
                                           purchased_quantity=sold.quantity))  # fmt: skip
        new = _line(2, "SKU-JACKET-M-BLUE", "Rain Jacket M Blue", 1, "139.00")
        return _txn(
            stamp,
            11,
            TransactionKind.EXCHANGE,
            (back, new),
            lambda t: (CashTender(t),),
            customer=JANE,
        )

    def cancel_pickup(merchant: Merchant, state: dict[str, Any]) -> dict[str, Any]:
        _, result = state["pickup_later"]
        done = merchant.cancel_order(result.order_id, reason="Customer changed their mind")
        return {"order_id": result.order_id, "cancelled_lines": len(done.cancelled)}

    def cancel_line(merchant: Merchant, state: dict[str, Any]) -> dict[str, Any]:
        txn, result = state["endless_aisle"]
        # The OMS numbers lines its own way (the seed's LineNumber note): find ours by POS line id.
        wanted = txn.lines[1]
        order = merchant.get_order(result.order_id)
        ours = [x for x in order.lines if x.external_line_id == wanted.line_id]
        line = (ours or [x for x in order.lines if x.sku == wanted.sku])[0]
        done = merchant.cancel_items(
            result.order_id, [CancelLine(line.line_number, Decimal(1))], reason="Out of stock"
        )
        return {
            "order_id": result.order_id,
            "cancelled": [f"line {c.line_number} x{c.quantity}" for c in done.cancelled],
        }

    def search(merchant: Merchant, state: dict[str, Any]) -> dict[str, Any]:
        _, card = state["card_sale"]
        by_number = merchant.search_orders(
            OrderQuery(order_number=card.order_number or card.order_id)
        )
        by_email = merchant.search_orders(OrderQuery(email=JANE.email, page_size=3))
        by_name = merchant.search_orders(OrderQuery(last_name="O'Brien"))
        found = {h.order_id for h in by_number.hits}
        if card.order_id not in found:
            raise AssertionError(f"search by order number did not find {card.order_id}")
        return {"by_order_number": len(by_number.hits), "by_email_first_page": len(by_email.hits),
                "by_last_name_obrien": len(by_name.hits)}  # fmt: skip

    def detail(merchant: Merchant, state: dict[str, Any]) -> dict[str, Any]:
        _, card = state["card_sale"]
        order = merchant.get_order(card.order_id)
        return {"order_id": order.order_id, "status": order.status, "lines": len(order.lines),
                "returned": str(sum((line.quantity_returned for line in order.lines), Decimal(0)))}  # fmt: skip

    jacket = _line(1, "SKU-JACKET-L", "Rain Jacket L", 1, "129.00")
    socks = _line(2, "SKU-SOCKS", "Wool Socks", 3, "12.00")
    shipping = Charge(
        ChargeType.DELIVERY, Decimal("9.95"), fulfillment=ONLINE, name="Ground shipping"
    )
    return [
        Step("cash sale (anonymous)", Capability.POST_SALE, _post("cash", sale(1, (_line(1, "SKU-TSHIRT-M", "Logo T-Shirt M", 2, "19.99"),), lambda t: (CashTender(t),)))),
        Step("card sale", Capability.POST_SALE, _post("card_sale", sale(2, (jacket, socks), _card, customer=JANE))),
        Step("digital wallet sale", Capability.POST_SALE, _post("wallet", sale(3, (_line(1, "SKU-MUG", "Coffee Mug", 1, "15.00"),), lambda t: (DigitalWalletTender(t, wallet="APPLE_PAY"),), customer=SAM))),
        Step("split tender (gift card + card)", Capability.POST_SALE, _post("split", sale(4, (_line(1, "SKU-BOOTS-9", "Hiking Boots 9", 1, "189.00"),), lambda t: (GiftCardTender(Decimal("50.00"), last4="7731"), *_card(t - Decimal("50.00"))), customer=SAM))),
        Step("mixed cart (take-with + ship + pickup later)", Capability.POST_SALE, _post("mixed", sale(5, (_line(1, "SKU-CAP", "Trail Cap", 1, "25.00"), _line(2, "SKU-STOVE", "Camp Stove", 1, "119.00", fulfillment=ONLINE), _line(3, "SKU-LANTERN", "LED Lantern", 2, "30.00", fulfillment=PICKUP_LATER)), _card, customer=JANE, charges=(shipping,)))),
        Step("endless aisle order", Capability.POST_SALE, _post("endless_aisle", sale(6, (_line(1, "SKU-TENT-4P", "4-Person Tent", 1, "349.00", fulfillment=ONLINE), _line(2, "SKU-STAKES", "Tent Stakes", 2, "9.00", fulfillment=ONLINE)), _card, customer=JANE, charges=(shipping,)))),
        Step("in-store order, pickup later", Capability.POST_SALE, _post("pickup_later", sale(7, (_line(1, "SKU-SOFA-GREY", "3-Seat Sofa Grey", 1, "899.00", fulfillment=PICKUP_LATER),), _card, customer=SAM))),
        Step("return with receipt", Capability.POST_RETURN, _post("return", returned)),
        Step("exchange", Capability.POST_EXCHANGE, _post("exchange", exchange)),
        Step("cancel the pickup-later order", Capability.CANCEL_ORDER, cancel_pickup),
        Step("cancel one line of the endless-aisle order", Capability.CANCEL_ITEMS, cancel_line),
        Step("search orders (number, email, last name)", Capability.SEARCH_ORDERS, search),
        Step("order detail of the card sale", Capability.GET_ORDER, detail),
    ]  # fmt: skip
