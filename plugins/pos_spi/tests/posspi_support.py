"""Helpers shared by the tests: backends for the reference server, and transactions to post."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from omsbridge import Secret
from omsbridge.model import (
    CashTender,
    Customer,
    Fulfillment,
    LineItem,
    LineKind,
    OriginalLine,
    Transaction,
    TransactionKind,
)
from omsbridge.spi import MerchantContext
from omsbridge_posspi import AuthMethod, PosSpiBackend, PosSpiConfig, SpiAuth
from omsbridge_posspi.server import DEFAULT_API_KEY, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

TAKE_WITH = Fulfillment()
CUSTOMER = Customer(
    customer_id="C-7", email="grace@example.com", first_name="Grace", last_name="Hopper"
)


def make_backend(url: str, *, timeout: float = 5.0, **auth: object) -> PosSpiBackend:
    """A backend for the reference server, with API-key auth unless told otherwise."""
    settings = SpiAuth(**auth) if auth else SpiAuth(api_key=Secret(DEFAULT_API_KEY, "test"))
    return PosSpiBackend(PosSpiConfig(url, settings, timeout=timeout), MerchantContext("TEST"))


def oauth_settings(secret: str = DEFAULT_CLIENT_SECRET, url: str = "") -> dict[str, object]:
    """Keyword arguments of SpiAuth for OAuth2 client credentials against ``url``."""
    return {
        "type": AuthMethod.OAUTH2,
        "token_url": f"{url}/oauth/token",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": Secret(secret, "test"),
        "scope": "orders",
    }


def sale(
    transaction_id: str = "T-1",
    *,
    lines: Sequence[tuple[str, str, str]] = (("SKU-A", "2", "10.00"),),
    customer: Customer | None = CUSTOMER,
    fulfillment: Fulfillment = TAKE_WITH,
    created_at: datetime | None = None,
    order_number: str | None = None,
) -> Transaction:
    """A cash sale of ``(sku, quantity, unit_price)`` lines, numbered 1.. with ids L1.."""
    items = tuple(
        LineItem(
            i,
            sku,
            Decimal(qty),
            Decimal(price),
            name=f"Item {sku}",
            line_id=f"L{i}",
            fulfillment=fulfillment,
        )
        for i, (sku, qty, price) in enumerate(lines, start=1)
    )
    total = sum((line.total for line in items), Decimal(0))
    return Transaction(
        transaction_id=transaction_id,
        kind=TransactionKind.SALE,
        created_at=created_at or datetime.now(UTC),
        currency="USD",
        store_id="STORE-1",
        lines=items,
        total=total,
        tenders=(CashTender(total),),
        customer=customer,
        order_number=order_number,
    )


def return_of(
    transaction_id: str,
    original_order: str,
    *,
    sku: str = "SKU-A",
    quantity: str = "1",
    unit_price: str = "10.00",
    line_id: str | None = None,
    line_number: int | None = None,
) -> Transaction:
    """A cash refund returning one line of ``original_order``."""
    line = LineItem(
        1,
        sku,
        Decimal(quantity),
        Decimal(unit_price),
        kind=LineKind.RETURN,
        line_id="R1",
        return_reason="Too small",
        original=OriginalLine(original_order, line_number=line_number, line_id=line_id),
    )
    return Transaction(
        transaction_id=transaction_id,
        kind=TransactionKind.RETURN,
        created_at=datetime.now(UTC),
        currency="USD",
        store_id="STORE-1",
        lines=(line,),
        total=-line.total,
        tenders=(CashTender(-line.total),),
        customer=CUSTOMER,
    )
