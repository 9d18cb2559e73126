"""Builders shared by the export tests: sales of varied shapes, configs, counting orders."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

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
        "person_accounts": True,
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
            "multi_currency = true\nperson_accounts = true\n"
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


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_export(config: Path, *, max_time: float = 40) -> subprocess.Popen[bytes]:
    """``omsbridge export run --drain`` in its own process (to be SIGKILLed)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omsbridge",
            "export",
            "run",
            "--config",
            str(config),
            "--drain",
            "--max-time",
            str(max_time),
            "--lease",
            "1",
            "--claim-size",
            "10",
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )


def sandbox_in_process(tmp_path: Path, faults: list[dict[str, Any]]) -> Iterator[str]:
    """Serve a sandbox org in its own process (``omsbridge sandbox salesforce``, state in
    ``tmp_path/org.db``) with these fault rules; yield its URL; stop it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "omsbridge", "sandbox", "salesforce", "--port", str(port)]
    command += ["--state", str(tmp_path / "org.db"), "--rng-seed", "3"]
    for fault in faults:
        command += ["--fault", json.dumps(fault)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/__sandbox__/info", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the sandbox did not start: {proc.communicate()[1].decode()[-2000:]}")
        time.sleep(0.05)
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
