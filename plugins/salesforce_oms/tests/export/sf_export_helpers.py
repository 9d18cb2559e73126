"""Builders shared by the export tests: sales of varied shapes, configs, counting orders."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from omsbridge import (
    CardTender,
    CashTender,
    Customer,
    LineItem,
    MerchantContext,
    Secret,
    TaxLine,
    Transaction,
    TransactionKind,
)
from omsbridge_salesforce.client import SalesforceClient
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce_sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME

PASSWORD_ENV = "SF_EXPORT_TEST_PASSWORD"
SECRET_ENV = "SF_EXPORT_TEST_SECRET"
WHEN = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
EXTERNAL_ID = "POS_Transaction_Id__c"


def make_sale(txn_id: str, n: int) -> Transaction:
    """A sale whose shape depends on ``n``: 1-3 taxed lines, card or cash, a customer or not."""
    lines = tuple(
        LineItem(
            line_number=k,
            sku=f"SKU-{(n + k) % 12:02d}",
            quantity=Decimal(1 + k % 2),
            unit_price=Decimal("12.50"),
            name=f"Product {(n + k) % 12}",
            taxes=(TaxLine("Sales Tax", Decimal("1.00"), Decimal("0.08")),),
        )
        for k in range(1, 2 + n % 3)
    )
    total = sum((line.total for line in lines), Decimal(0))
    tender: Any = (
        CardTender(total, brand="Visa", last4="4242", auth_code="A1")
        if n % 2
        else CashTender(total)
    )
    customer = Customer(email=f"shopper{n % 7}@example.com", first_name="Sam", last_name="Lee")
    return Transaction(
        transaction_id=txn_id,
        kind=TransactionKind.SALE,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=lines,
        total=total,
        tenders=(tender,),
        customer=customer if n % 4 == 0 else None,
        register_id="R1",
    )


def make_sales(count: int, prefix: str) -> list[Transaction]:
    """``count`` sales ``{prefix}-0001``... of varied shapes."""
    return [make_sale(f"{prefix}-{i:04d}", i) for i in range(1, count + 1)]


def sf_config(url: str, **overrides: Any) -> SalesforceConfig:
    """A password-flow config for the sandbox at ``url``."""
    values: dict[str, Any] = {
        "url_base": url,
        "client_id": CLIENT_ID,
        "client_secret": Secret(CLIENT_SECRET, "test"),
        "username": USERNAME,
        "password": Secret(PASSWORD, "test"),
        "allow_insecure_sandbox_url": True,
        "custom_fields": [],
        "read_timeout": 10.0,
        # The sandbox's default org (som): its flow makes the summary and fulfils take-with lines.
        "order_summary_creation": "flow",
        "take_with_fulfillment": "flow",
        "multi_currency": True,
    }
    values.update(overrides)
    return SalesforceConfig(**values)


def merchant(merchant_id: str = "SHOP") -> MerchantContext:
    """A merchant context like the config file below gives."""
    return MerchantContext(merchant_id, "en_US", "US", "USD")


def write_config(path: Path, url: str, merchants: list[str], *, read_timeout: float = 10.0) -> Path:
    """An omsbridge.toml with the given merchants on the sandbox; the store next to it."""
    parts = ['[store]\npath = "outbox.db"\n']
    for merchant_id in merchants:
        parts.append(
            f"[merchants.{merchant_id}]\n"
            'backend = "salesforce"\nlocale = "en_US"\nregion = "US"\ncurrency = "USD"\n\n'
            f"[merchants.{merchant_id}.salesforce]\n"
            f'url_base = "{url}"\nallow_insecure_sandbox_url = true\n'
            f'username = "{USERNAME}"\npassword = {{ env = "{PASSWORD_ENV}" }}\n'
            f'client_id = "{CLIENT_ID}"\nclient_secret = {{ env = "{SECRET_ENV}" }}\n'
            f"read_timeout = {read_timeout}\nconnect_timeout = 2.0\n"
            # The sandbox's default org (som): see sf_config.
            'order_summary_creation = "flow"\ntake_with_fulfillment = "flow"\n'
            "multi_currency = true\n"
        )
    path.write_text("\n".join(parts))
    return path


def orders_by_external_id(url: str) -> list[str]:
    """The transaction id of every Order in the org, one entry per Order (SOQL)."""
    client = SalesforceClient(sf_config(url))
    try:
        rows = client.query(f"SELECT Id, {EXTERNAL_ID} FROM Order WHERE {EXTERNAL_ID} != null")
        return [str(row[EXTERNAL_ID]) for row in rows]
    finally:
        client.close()


def count(url: str, sobject: str) -> int:
    """``SELECT COUNT() FROM sobject`` over the API."""
    client = SalesforceClient(sf_config(url))
    try:
        return client.query_page(f"SELECT COUNT() FROM {sobject}").total_size
    finally:
        client.close()
