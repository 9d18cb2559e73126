"""What ReturnLedger takes for a lost return's change order or credit memo, on answers shaped
like Salesforce's (a stub client: the sandbox has no OrderItemSummaryChange records)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sf_export_helpers import sf_config

from omsbridge import Rejected
from omsbridge_salesforce.returns import ReturnLedger, memo_of, state_text

D = Decimal


class StubClient:
    """Answers queries by the sObject they select from; records what was asked."""

    def __init__(self, tables: dict[str, list[dict[str, Any]] | Exception]) -> None:
        self.tables = tables
        self.asked: list[str] = []

    def _answer(self, text: str) -> list[dict[str, Any]]:
        self.asked.append(text)
        table = text.split(" FROM ", 1)[1].split()[0]
        rows = self.tables[table]
        if isinstance(rows, Exception):
            raise rows
        return rows

    def query(self, text: str) -> list[dict[str, Any]]:
        return self._answer(text)

    def queries(self, named: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        return {name: self._answer(text) for name, text in named.items()}


def ledger(tables: dict[str, Any]) -> tuple[ReturnLedger, StubClient]:
    client = StubClient(tables)
    return ReturnLedger(client, sf_config("https://x.my.salesforce.com")), client  # type: ignore[arg-type]


ITEMS = [
    {"Id": "10u1", "OriginalOrderItemId": "802A"},
    {"Id": "10u2", "OriginalOrderItemId": "802B"},
]


def change_lines(order: str, *lines: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"OrderId": order, "OriginalOrderItemId": i, "Quantity": D(q)} for i, q in lines]


def test_an_untagged_change_order_with_exactly_the_planned_lines_is_taken() -> None:
    found, client = ledger(
        {
            "OrderItemSummary": ITEMS,
            "OrderItem": change_lines("801X", ("802A", "-1"))
            + change_lines("801Y", ("802A", "-1"), ("802B", "-1"))
            + change_lines("801Z", ("802A", "-2")),
            "OrderItemSummaryChange": [],
            "Order": [{"Id": "801Y", "Description": None, "CreatedDate": "2026-11-21T18:00:00Z"}],
        }
    )
    taken = found.untagged_change_order("801O", {"10u1": D(1), "10u2": D(1)})
    assert taken is not None and taken["Id"] == "801Y"
    assert "'801Y'" in client.asked[-1] and "801X" not in client.asked[-1]


def test_a_cancel_of_the_same_lines_is_not_a_lost_return() -> None:
    found, _ = ledger(
        {
            "OrderItemSummary": ITEMS,
            "OrderItem": change_lines("801C", ("802A", "-1")),
            "OrderItemSummaryChange": [
                {"ChangeOrderItem": {"OrderId": "801C"}, "ChangeType": "Cancel"}
            ],
            "Order": [{"Id": "801C", "Description": None, "CreatedDate": None}],
        }
    )
    assert found.untagged_change_order("801O", {"10u1": D(1)}) is None


def test_without_order_item_summary_change_the_lines_decide() -> None:
    missing = Rejected("no such sObject", code="INVALID_TYPE", backend="salesforce")
    found, _ = ledger(
        {
            "OrderItemSummary": ITEMS,
            "OrderItem": change_lines("801C", ("802A", "-1")),
            "OrderItemSummaryChange": missing,
            "Order": [{"Id": "801C", "Description": None, "CreatedDate": None}],
        }
    )
    taken = found.untagged_change_order("801O", {"10u1": D(1)})
    assert taken is not None and taken["Id"] == "801C"
    other = Rejected("denied", code="INSUFFICIENT_ACCESS", backend="salesforce")
    found, _ = ledger({**found._client.tables, "OrderItemSummaryChange": other})  # type: ignore[attr-defined]
    with pytest.raises(Rejected):
        found.untagged_change_order("801O", {"10u1": D(1)})


def test_the_credit_memo_of_a_change_order() -> None:
    summary = {"Id": "1Os1", "OriginalOrderId": "801O"}
    orders = [
        {
            "Id": "801A",
            "Description": state_text("refunded", "50gA"),
            "CreatedDate": "2026-11-21T10:00:00.000+0000",
            "TotalAmount": D("-10.00"),
        },
        {
            "Id": "801B",
            "Description": state_text("submitted"),
            "CreatedDate": "2026-11-21T11:00:00.000+0000",
            "TotalAmount": D("-10.00"),
        },
    ]
    memos = [
        {"Id": "50gA", "CreatedDate": "2026-11-21T10:00:01.000+0000", "TotalAmount": D("10.00")},
        {"Id": "50gOld", "CreatedDate": "2026-11-21T10:30:00.000+0000", "TotalAmount": D("10.00")},
        {"Id": "50gOther", "CreatedDate": "2026-11-21T11:00:01.000+0000", "TotalAmount": D("7.00")},
        {"Id": "50gB", "CreatedDate": "2026-11-21T11:00:02.000+0000", "TotalAmount": D("10.00")},
    ]
    found, _ = ledger({"Order": orders, "CreditMemo": memos})
    # 50gA is claimed by 801A, 50gOld is older than 801B, 50gOther is another amount.
    assert found.credit_memo(summary, "801B") == "50gB"
    found, _ = ledger({"Order": orders, "CreditMemo": memos[:3]})
    assert found.credit_memo(summary, "801B") is None


def test_the_progress_text() -> None:
    assert memo_of(state_text("submitted")) is None
    assert memo_of(state_text("credit memo", "50gX")) == "50gX"
    assert memo_of(state_text("refunded", "50gX")) == "50gX"
    assert memo_of("a note someone wrote about a credit memo") is None
    assert memo_of(None) is None
