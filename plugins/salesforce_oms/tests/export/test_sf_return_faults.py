"""Returns and exchanges exactly once when any of their steps fails (issue 11, item 2).

Each step of a return — ``submit-return``, tagging the change order, ``create-credit-memo``,
``ensure-refunds-async`` — meets, once, a 503 (nothing done), a timeout before the org did it,
or a timeout after the org committed it (the lost answer). The transaction is then posted
again, as the export job would, until it succeeds; the org must hold exactly one change order
(tagged), one credit memo and one refund for it, and the original line's returned quantity
must be what the POS returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sf_export_helpers import sf_config
from sf_return_helpers import exchange_of, org_holds, post_until_done, return_of, sale

from omsbridge import MerchantContext
from omsbridge_salesforce.backend import SalesforceBackend

D = Decimal
STEPS = {
    "submit-return": {"path": "*/actions/submit-return"},
    "tag": {"path": "*/sobjects/Order/*", "method": "PATCH"},
    "create-credit-memo": {"path": "*/actions/create-credit-memo"},
    "ensure-refunds": {"path": "*/async-actions/ensure-refunds-async"},
}
FAULTS = {
    "503": {"kind": "error", "status": 503},
    "timeout": {"kind": "timeout", "hold_seconds": 0.5},
    "lost-answer": {"kind": "timeout", "hold_seconds": 0.5, "after_commit": True},
}


@pytest.fixture
def shop(sf_sandbox: Any) -> Iterator[SalesforceBackend]:
    """A backend whose reads time out after 0.25 s (the faults hold answers 0.5 s)."""
    backend = SalesforceBackend(
        sf_config(sf_sandbox.url, read_timeout=0.25), MerchantContext("SHOP", currency="USD")
    )
    yield backend
    backend.close()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", STEPS)
def test_return_is_exactly_once_when_a_step_fails(
    shop: SalesforceBackend, sf_sandbox: Any, step: str, fault: str
) -> None:
    sb = sf_sandbox.sandbox
    shop.post(sale("S-1"))
    sb.add_fault(**FAULTS[fault], **STEPS[step], count=1)
    result = post_until_done(shop, return_of("R-1", "S-1"))
    assert not sb.faults.list(), "the fault never fired"
    expected = {
        "change_orders": 1,
        "tags": ["R-1#R1"],
        "credit_memos": 1,
        "memo_balance": [D(0)],
        "refunds": 1,
        "refunded": D("10.00"),
        "returned": D(1),
    }
    assert org_holds(sb, "S-1") == expected
    # The return folds into its original: post answers the sale's order, not the change order.
    assert result.order_id == sb.store.where("Order", POS_Transaction_Id__c="S-1")[0]["Id"]
    again = shop.post(return_of("R-1", "S-1"))  # posted once more: nothing new
    assert not again.created and again.order_id == result.order_id
    assert org_holds(sb, "S-1") == expected


@pytest.mark.parametrize("fault", ["503", "lost-answer"])
@pytest.mark.parametrize("step", [*STEPS, "graph"])
def test_exchange_is_exactly_once_when_a_step_fails(
    shop: SalesforceBackend, sf_sandbox: Any, step: str, fault: str
) -> None:
    sb = sf_sandbox.sandbox
    shop.post(sale("S-1"))
    where = STEPS.get(step) or {"path": "*/composite/graph"}  # graph: the exchange's sale
    sb.add_fault(**FAULTS[fault], **where, count=1)
    result = post_until_done(shop, exchange_of("EX-1", "S-1"))
    assert not sb.faults.list(), "the fault never fired"
    held = org_holds(sb, "S-1")
    assert held["change_orders"] == held["credit_memos"] == held["refunds"] == 1
    assert held["tags"] == ["EX-1#R1"] and held["returned"] == D(1)
    new = [o for o in sb.store.where("Order") if o.get("POS_Transaction_Id__c") == "EX-1"]
    assert [o["Id"] for o in new] == [result.order_id]
    assert not shop.post(exchange_of("EX-1", "S-1")).created
    assert org_holds(sb, "S-1") == held


def test_two_returns_of_one_line_each_lose_their_answer(
    shop: SalesforceBackend, sf_sandbox: Any
) -> None:
    """The issue's return A: 1 of a 3-unit line, submit committed and the answer lost, twice
    on the same line; each return still ends as one change order, memo and refund."""
    sb = sf_sandbox.sandbox
    shop.post(sale("S-1"))
    for txn_id in ("R-A", "R-B"):
        sb.add_fault(
            "timeout", path="*/actions/submit-return", after_commit=True, hold_seconds=0.5, count=1
        )
        sb.add_fault(
            "timeout", path="*/sobjects/Order/*", method="PATCH", hold_seconds=0.5, count=1
        )
        post_until_done(shop, return_of(txn_id, "S-1"))
    held = org_holds(sb, "S-1")
    assert held["tags"] == ["R-A#R1", "R-B#R1"]
    assert (held["change_orders"], held["credit_memos"], held["refunds"]) == (2, 2, 2)
    assert held["returned"] == D(2) and held["refunded"] == D("20.00")


def test_a_whole_line_returned_whose_answer_was_lost_is_refunded(
    shop: SalesforceBackend, sf_sandbox: Any
) -> None:
    """The issue's return B: all 3 units back, submit-return committed and its answer lost.
    Nothing is returnable any more, yet the return must finish (memo, refund), not die with
    RETURN_NOT_POSSIBLE."""
    sb = sf_sandbox.sandbox
    shop.post(sale("S-1"))
    sb.add_fault(
        "timeout", path="*/actions/submit-return", after_commit=True, hold_seconds=0.5, count=1
    )
    sb.add_fault("error", status=503, path="*/sobjects/Order/*", method="PATCH", count=3)
    result = post_until_done(shop, return_of("R-1", "S-1", quantity=3), tries=6)
    assert not sb.faults.list()
    held = org_holds(sb, "S-1")
    assert held["tags"] == ["R-1#R1"] and held["returned"] == D(3)
    assert (held["credit_memos"], held["refunds"], held["refunded"]) == (1, 1, D("30.00"))
    assert held["memo_balance"] == [D(0)] and not result.created
