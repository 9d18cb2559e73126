"""Builders shared by the Salesforce backend tests: configs, transactions, sandbox backends."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from omsbridge import (
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
    LineItem,
    LineKind,
    MerchantContext,
    OriginalLine,
    Secret,
    TaxLine,
    Transaction,
    TransactionKind,
)
from omsbridge_salesforce.config import SalesforceConfig

D = Decimal
WHEN = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
MERCHANT = MerchantContext("SHOPNOW20140910", "en_US", "US", "USD")


SOM_SETTINGS: dict[str, Any] = {
    "order_summary_creation": "flow",
    "take_with_fulfillment": "flow",
    "multi_currency": True,
    "person_accounts": True,
}
"""What suits the sandbox's default org (the ``som`` profile): a multicurrency org whose flow
creates the order summary and fulfils take-with lines on activation."""


def config(url: str = "https://ps--uat.my.salesforce.com", **overrides: Any) -> SalesforceConfig:
    """A valid password-flow config (sandbox demo credentials), with overrides."""
    values: dict[str, Any] = {
        "url_base": url,
        "client_id": "3MVG9omsbridgeSandboxConsumerKey",
        "client_secret": Secret("sandbox-consumer-secret", "test"),
        "username": "integration@omsbridge.sandbox",
        "password": Secret("sandbox-password", "test"),
        "allow_insecure_sandbox_url": url.startswith("http://"),
        "api_version": "v62.0",
        "custom_fields": [],
        "read_timeout": 10.0,
        **SOM_SETTINGS,
    }
    values.update(overrides)
    return SalesforceConfig(**values)


def line(n: int, sku: str = "SKU-1", qty: str = "1", price: str = "10.00", **kw: Any) -> LineItem:
    """A sale line."""
    return LineItem(
        line_number=n,
        sku=sku,
        quantity=D(qty),
        unit_price=D(price),
        name=kw.pop("name", f"Product {sku}"),
        **kw,
    )


def sale(
    lines: list[LineItem],
    *,
    tenders: list[Any] | None = None,
    txn_id: str = "T-1",
    customer: Customer | None = None,
    adjustments: tuple[Adjustment, ...] = (),
    charges: tuple[Charge, ...] = (),
    when: datetime = WHEN,
) -> Transaction:
    """A SALE whose total is computed; paid by one card unless tenders are given."""
    total = _total(lines, adjustments, charges)
    if tenders is None:
        tenders = [CardTender(total, brand="Visa", last4="4242", auth_code="A1")]
    return Transaction(
        transaction_id=txn_id,
        kind=TransactionKind.SALE,
        created_at=when,
        currency="USD",
        store_id="store-001",
        lines=tuple(lines),
        total=total,
        tenders=tuple(tenders),
        adjustments=adjustments,
        charges=charges,
        customer=customer,
        register_id="R1",
    )


def _total(
    lines: list[LineItem], adjustments: tuple[Adjustment, ...], charges: tuple[Charge, ...]
) -> Decimal:
    return (
        sum((li.signed_total for li in lines), D(0))
        + sum((a.amount for a in adjustments), D(0))
        + sum((c.total for c in charges), D(0))
    )


def customer(email: str = "pat@example.com") -> Customer:
    """A known shopper."""
    return Customer(email=email, first_name="Pat", last_name="O'Brien", phone="+1 555 0100")


def ship_to() -> Address:
    """A delivery address."""
    return Address(
        line1="1 Market St",
        city="San Francisco",
        country="US",
        region="CA",
        postal_code="94105",
        name="Pat O'Brien",
    )


def online() -> Fulfillment:
    """Endless aisle: shipped to the customer."""
    return Fulfillment(FulfillmentType.ONLINE, "DEFAULT", ship_to=ship_to())


def pickup_later() -> Fulfillment:
    """In-store order picked up later."""
    return Fulfillment(FulfillmentType.IN_STORE, "PICKUP_LATER", store_id="store-001")


def tax(amount: str, rate: str | None = "0.08") -> TaxLine:
    """A sales tax."""
    return TaxLine("Sales Tax", D(amount), D(rate) if rate else None)


def promo(amount: str) -> Adjustment:
    """A promotion (negative amount)."""
    return Adjustment(AdjustmentType.PROMOTION, D(amount), description="Promo")


def delivery(amount: str, fulfillment: Fulfillment) -> Charge:
    """A delivery charge."""
    return Charge(ChargeType.DELIVERY, D(amount), fulfillment=fulfillment, name="Shipping")


def cash(amount: Decimal) -> CashTender:
    """Cash."""
    return CashTender(amount)


def wallet(amount: Decimal) -> DigitalWalletTender:
    """Apple Pay."""
    return DigitalWalletTender(amount, wallet="apple_pay")


def return_txn(
    txn_id: str,
    order_id: str,
    lines: list[tuple[int, str, str, str]],
    *,
    when: datetime = WHEN,
    line_ids: dict[int, str] | None = None,
) -> Transaction:
    """A RETURN of (original line number, sku, qty, price) lines, refunded to card."""
    items = []
    for n, (orig, sku, qty, price) in enumerate(lines, start=1):
        items.append(
            LineItem(
                line_number=n,
                sku=sku,
                quantity=D(qty),
                unit_price=D(price),
                kind=LineKind.RETURN,
                return_reason="Wrong Size",
                original=OriginalLine(
                    order_id=order_id, line_number=orig, line_id=(line_ids or {}).get(orig)
                ),
            )
        )
    total = -sum((i.total for i in items), D(0))
    return Transaction(
        transaction_id=txn_id,
        kind=TransactionKind.RETURN,
        created_at=when,
        currency="USD",
        store_id="store-001",
        lines=tuple(items),
        total=total,
        tenders=(CardTender(total, brand="Visa", last4="4242"),),
    )
