"""Deterministic test data: fixed ids, times, stores and customers per scenario.

Recorded request bodies are matched on replay, so nothing here depends on the clock or on
randomness: a scenario's ``ref`` (its id without ``test_``) names its transactions
(``CT-sale-cash-1``), its customer (``sale-cash@contract.example``) and its times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from omsbridge.model import (
    Address,
    Adjustment,
    AdjustmentType,
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
    OriginalLine,
    TaxLine,
    Tender,
    Transaction,
    TransactionKind,
)

__all__ = [
    "CURRENCY",
    "EPOCH",
    "OTHER_STORE",
    "PACIFIC",
    "PICKUP_LATER",
    "STORE",
    "TAKE_WITH",
    "at",
    "customer",
    "line",
    "online",
    "returned",
    "transaction",
]

PACIFIC = timezone(timedelta(hours=-8))
"""A register's zone that is not UTC: ``placed_at`` must come back in it."""

STORE = "STORE-101"
"""The store every POS transaction is rung up in, and that fulfillment orders are routed to."""
OTHER_STORE = "STORE-202"
"""Another store, to prove fulfillment orders are filtered by store."""
CURRENCY = "USD"
EPOCH = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
"""The fixed time scenarios count from."""

TAKE_WITH = Fulfillment()
PICKUP_LATER = Fulfillment(FulfillmentType.IN_STORE, "PICKUP_LATER", store_id=STORE)
SHIP_TO = Address(
    line1="1 Harbour Way", city="Portland", region="OR", postal_code="97201", country="US"
)


def online(ship_to: Address = SHIP_TO) -> Fulfillment:
    """Endless aisle: shipped to the customer from elsewhere (``ONLINE-DEFAULT``)."""
    return Fulfillment(FulfillmentType.ONLINE, "DEFAULT", ship_to=ship_to)


def at(minutes: int) -> datetime:
    """A fixed time, ``minutes`` after :data:`EPOCH`."""
    return EPOCH + timedelta(minutes=minutes)


def customer(ref: str) -> Customer:
    """The scenario's own customer: unique email, last name and customer id, so searches find
    exactly this scenario's orders."""
    return Customer(
        customer_id=f"CUST-{ref}",
        email=f"{ref}@contract.example",
        first_name="Robin",
        last_name=f"Lane-{ref}",
        phone="+1-503-555-0100",
    )


def _d(value: str | Decimal | int) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def line(
    number: int,
    sku: str,
    quantity: str | int = 1,
    unit_price: str = "10.00",
    *,
    tax: str | None = None,
    discount: str | None = None,
    fulfillment: Fulfillment = TAKE_WITH,
    name: str | None = None,
) -> LineItem:
    """A SALE line; ``tax`` and ``discount`` are amounts (a discount is given positive here)."""
    return LineItem(
        line_number=number,
        sku=sku,
        quantity=_d(quantity),
        unit_price=_d(unit_price),
        name=name or f"Item {sku}",
        line_id=f"L{number}",
        taxes=(TaxLine("Sales tax", _d(tax), rate=Decimal("0.08")),) if tax else (),
        adjustments=(
            (Adjustment(AdjustmentType.PROMOTION, -_d(discount), description="Promo"),)
            if discount
            else ()
        ),
        fulfillment=fulfillment,
    )


def returned(
    number: int,
    sku: str,
    quantity: str | int = 1,
    unit_price: str = "10.00",
    *,
    tax: str | None = None,
    order_id: str | None = None,
    original_line: int | None = None,
    original_line_id: str | None = None,
    reason: str = "DAMAGED",
) -> LineItem:
    """A RETURN line; with ``order_id`` it is a return with receipt naming the original order and
    its line, by the backend's line number or by the POS line id it was sold under."""
    original = (
        OriginalLine(order_id=order_id, line_number=original_line, line_id=original_line_id)
        if order_id is not None
        else None
    )
    return LineItem(
        line_number=number,
        sku=sku,
        quantity=_d(quantity),
        unit_price=_d(unit_price),
        name=f"Item {sku}",
        kind=LineKind.RETURN,
        line_id=f"R{number}",
        taxes=(TaxLine("Sales tax", _d(tax), rate=Decimal("0.08")),) if tax else (),
        return_reason=reason,
        original=original,
    )


_TenderSpec = str | tuple[str, str]


def _tender(kind: str, amount: Decimal) -> Tender:
    if kind == "card":
        return CardTender(amount, brand="VISA", last4="4242", auth_code="A1B2C3")
    if kind == "cash":
        return CashTender(amount)
    if kind == "wallet":
        return DigitalWalletTender(amount, wallet="APPLE_PAY", last4="1881")
    if kind == "gift":
        return GiftCardTender(amount, last4="9012")
    raise ValueError(f"unknown tender kind {kind!r}")


def transaction(
    ref: str,
    lines: Sequence[LineItem],
    *,
    n: int = 1,
    tenders: Iterable[_TenderSpec] = ("card",),
    customer: Customer | None = None,
    charges: Sequence[Charge] = (),
    minutes: int | None = None,
    order_number: str | None = None,
    zone: timezone | None = None,
) -> Transaction:
    """A transaction ``CT-<ref>-<n>`` whose total is computed from its lines and charges.

    ``tenders`` are kinds (``card``, ``cash``, ``wallet``, ``gift``), or ``(kind, amount)``
    pairs; the last plain kind takes what is left. For a refund the amounts are negative.
    ``order_number`` is the POS order number; ``zone`` the register's UTC offset (the same
    instant, written in that zone; UTC when not given).
    """
    kinds = {item.kind for item in lines}
    kind = (
        TransactionKind.EXCHANGE
        if kinds == {LineKind.SALE, LineKind.RETURN}
        else TransactionKind.RETURN
        if kinds == {LineKind.RETURN}
        else TransactionKind.SALE
    )
    total = sum((item.signed_total for item in lines), Decimal(0)) + sum(
        (c.total for c in charges), Decimal(0)
    )
    specs = list(tenders) if total != 0 else []
    fixed = [(k, _d(a)) for k, a in (s for s in specs if isinstance(s, tuple))]
    rest = total - sum((a for _, a in fixed), Decimal(0))
    built: list[Tender] = [_tender(k, a) for k, a in fixed]
    plain = [s for s in specs if isinstance(s, str)]
    if plain:
        built.append(_tender(plain[-1], rest))
    return Transaction(
        transaction_id=f"CT-{ref}-{n}",
        kind=kind,
        created_at=at(minutes if minutes is not None else n).astimezone(zone or UTC),
        order_number=order_number,
        currency=CURRENCY,
        store_id=STORE,
        lines=tuple(lines),
        total=total,
        tenders=tuple(built),
        charges=tuple(charges),
        customer=customer,
        register_id="REG-1",
        associate_id="EMP-7",
        locale="en_US",
        region="US",
    )


def delivery_charge(amount: str = "7.95", fulfillment: Fulfillment | None = None) -> Charge:
    """A delivery charge for an endless-aisle group."""
    return Charge(
        ChargeType.DELIVERY, _d(amount), fulfillment=fulfillment or online(), name="Ground"
    )
