"""Through the bridge, on a plain org (no flow, default settings): a take-with sale is
returnable in the store, and an exchange of it goes through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from omni_helpers import Pos, bridge_for, config_file

from omsbridge import (
    Bridge,
    CardTender,
    LineItem,
    LineKind,
    OriginalLine,
    Transaction,
    TransactionKind,
)
from omsbridge_salesforce_sandbox import SalesforceSandbox, SandboxServer

D = Decimal
STORE_FIELD = "POS_Store_Id__c"


@pytest.fixture
def plain() -> Iterator[SandboxServer]:
    """An org of the ``som-minimal`` profile: the setup package, no flow, one currency."""
    sandbox = SalesforceSandbox(seed="demo", long_poll_timeout=0.3, org_profile="som-minimal")
    server = SandboxServer(sandbox, close_sandbox=True).start()
    yield server
    server.stop()
    assert not sandbox.internal_errors, sandbox.internal_errors[0]


@pytest.fixture
def plain_bridge(tmp_path: Path, plain: SandboxServer, pos: Pos) -> Iterator[Bridge]:
    path = config_file(tmp_path / "omsbridge.toml", plain.url, som=False, store_field=STORE_FIELD)
    with bridge_for(path, pos) as bridge:
        yield bridge


def _txn(
    txn_id: str, kind: TransactionKind, lines: tuple[LineItem, ...], total: str
) -> Transaction:
    return Transaction(
        transaction_id=txn_id,
        kind=kind,
        created_at=datetime.now(UTC),
        currency="USD",
        store_id="store-001",
        lines=lines,
        total=D(total),
        tenders=(CardTender(D(total), brand="Visa", last4="4242"),),
    )


def test_take_with_sale_is_returned_and_exchanged_in_the_store(
    plain_bridge: Bridge, plain: SandboxServer
) -> None:
    merchant = plain_bridge.for_merchant("DEMO")
    tee = LineItem(1, "TEE-BLK-M", D(2), D("25.00"))
    sold = merchant.post(_txn("PLAIN-1", TransactionKind.SALE, (tee,), "50.00"))
    detail = merchant.get_order(sold.order_id)
    assert detail.line(1).quantity_fulfilled == D(2)  # the connector fulfilled it at the store
    (fo,) = plain.sandbox.store.where("FulfillmentOrder", OrderId=sold.order_id)
    assert fo["FulfilledFromLocationId"] == plain.sandbox.demo["locations"]["store-001"]

    def back(n: int) -> LineItem:
        return LineItem(
            n,
            "TEE-BLK-M",
            D(1),
            D("25.00"),
            kind=LineKind.RETURN,
            return_reason="Wrong Size",
            original=OriginalLine(order_id=sold.order_id, line_number=1),
        )

    returned = _txn("PLAIN-R1", TransactionKind.RETURN, (back(1),), "-25.00")
    assert merchant.post(returned).created
    belt = LineItem(2, "BELT-LTH-90", D(1), D("45.00"))
    exchanged = merchant.post(_txn("PLAIN-X1", TransactionKind.EXCHANGE, (back(1), belt), "20.00"))
    assert exchanged.created
    after = merchant.get_order(sold.order_id).line(1)
    assert after.quantity_returned == D(2)
    # The exchange's new take-with belt is returnable too.
    new = merchant.get_order(exchanged.order_id)
    assert new.line(1).quantity_fulfilled == D(1)
