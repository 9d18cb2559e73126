"""Every shipped example transaction posts on the local Salesforce sandbox, on every org profile
the contract suite runs (except what the backend declares it does not offer), and reads back
normalized: ``post``'s order id is what ``get_order`` shows, ``placed_at`` keeps the POS's zone,
a return named by the POS order number finds its original."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omsbridge import Capability, Transaction, TransactionKind, wire
from omsbridge.config import parse_config
from omsbridge.registry import BackendRegistry
from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce.contract_harness import SalesforceHarness

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "transactions"


def _stores(txns: list[Transaction]) -> set[str]:
    found = {t.store_id for t in txns}
    for txn in txns:
        found |= {line.fulfillment.store_id for line in txn.lines if line.fulfillment.store_id}
    return found


@pytest.fixture(params=SalesforceHarness.variants)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A sandbox of one org profile (the contract harness's), its stores set up, and the
    backend built from that profile's merchant settings through omsbridge's config loader."""
    harness = SalesforceHarness(live=True, workdir=tmp_path)
    harness.variant = request.param
    harness.start()
    try:
        harness.reset()
        merchant = harness.merchant()
        table: dict[str, Any] = {"backend": "salesforce", "salesforce": harness.settings()}
        table.update(locale=merchant.locale, region=merchant.region, currency=merchant.currency)
        config = parse_config(
            {"merchants": {merchant.merchant_id: table}},
            base_dir=tmp_path,
            registry=BackendRegistry.from_plugins(),
        )
        backend = SalesforceBackend(config.merchants[merchant.merchant_id].settings, merchant)
        try:
            yield harness, backend
        finally:
            backend.close()
    finally:
        harness.stop()


def test_every_example_transaction_posts(shop: tuple[Any, SalesforceBackend]) -> None:
    harness, backend = shop
    txns = [wire.loads(f.read_text(), Transaction) for f in sorted(EXAMPLES.glob("*.json"))]
    assert txns, f"no examples in {EXAMPLES}"
    records = [
        {"attributes": {"type": "Location"}, "Name": f"Store {store}", "LocationType": "Store",
         "IsInventoryLocation": True, "POS_Store_Id__c": store}
        for store in sorted(_stores(txns) - {"STORE-101", "STORE-202"})
    ]  # fmt: skip
    answer = harness._rest("POST", "/composite/sobjects", {"allOrNone": True, "records": records})
    assert all(row.get("success") for row in answer), answer
    txns.sort(key=lambda t: t.kind != TransactionKind.SALE)  # sales first: returns find them
    posted = 0
    for txn in txns:
        unreferenced = any(line.kind == "RETURN" and line.original is None for line in txn.lines)
        if unreferenced and Capability.POST_UNREFERENCED_RETURN not in backend.capabilities:
            continue  # declared not offered (a no-receipt return)
        result = backend.post(txn)
        assert result.created, txn.transaction_id
        shown = backend.get_order(result.order_id)
        assert shown.order_id == result.order_id, txn.transaction_id
        if txn.kind == TransactionKind.RETURN:
            original = txn.lines[0].original
            assert original is not None
            assert shown.order_number == original.order_id, (
                f"{txn.transaction_id}: the return names {original.order_id}, post answered "
                f"{shown.order_number}"
            )
        else:
            assert shown.transaction_id == txn.transaction_id
            assert shown.placed_at == txn.created_at
            assert shown.placed_at.utcoffset() == txn.created_at.utcoffset(), (
                f"{txn.transaction_id}: placed_at {shown.placed_at.isoformat()} lost the zone of "
                f"{txn.created_at.isoformat()}"
            )
            if txn.order_number:
                assert shown.order_number == txn.order_number
            assert shown.store_id == txn.store_id
        posted += 1
    assert posted == len(txns) - 1, "only the no-receipt return is left out"
