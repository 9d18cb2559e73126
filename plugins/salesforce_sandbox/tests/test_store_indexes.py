"""The store's equality and case-folded indexes stay consistent with its tables.

Every lookup here runs with ``check_indexes`` on, so besides the explicit assertions each
indexed answer is also compared with a full scan of the table (AssertionError on any
difference, order included).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sf_sandbox_helpers import Api, in_process_client, node, order_graph, post_graph, sale

from omsbridge_salesforce_sandbox import SalesforceSandbox, soql
from omsbridge_salesforce_sandbox.schema import default_schema
from omsbridge_salesforce_sandbox.store import Store


def _store(path: Path | None = None) -> Store:
    store = Store(default_schema(), path)
    store.check_indexes = True
    return store


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["Id"] for r in records]


def _add(store: Store, type_name: str, **fields: Any) -> str:
    rec_id = store.new_id(type_name)
    store.insert(type_name, {"Id": rec_id, "IsDeleted": False, **fields})
    return rec_id


def test_insert_update_and_delete_keep_the_equality_index_in_step() -> None:
    store = _store()
    order_a = _add(store, "Order", Status="Draft")
    order_b = _add(store, "Order", Status="Draft")
    first = _add(store, "OrderItem", OrderId=order_a, Quantity=Decimal(1))
    # Build the index now, so the writes below have to maintain it.
    assert _ids(store.where("OrderItem", OrderId=order_a)) == [first]
    second = _add(store, "OrderItem", OrderId=order_b, Quantity=Decimal(2))
    third = _add(store, "OrderItem", OrderId=order_a, Quantity=Decimal(3))
    assert _ids(store.where("OrderItem", OrderId=order_a)) == [first, third]
    assert _ids(store.where("OrderItem", OrderId=order_b)) == [second]

    # Moving a record to another parent: results stay in insertion order, not move order.
    store.update("OrderItem", second, {"OrderId": order_a})
    assert _ids(store.where("OrderItem", OrderId=order_a)) == [first, second, third]
    assert store.where("OrderItem", OrderId=order_b) == []

    # Several conditions, numeric equality across types (Decimal == int), a missing field.
    assert _ids(store.where("OrderItem", OrderId=order_a, Quantity=2)) == [second]
    assert _ids(store.where("OrderItem", OrderId=order_a, Description=None)) == [
        first,
        second,
        third,
    ]

    # Soft delete: gone from where(), still there for where_in(include_deleted=True).
    store.update("OrderItem", first, {"IsDeleted": True})
    assert _ids(store.where("OrderItem", OrderId=order_a)) == [second, third]
    assert _ids(store.where_in("OrderItem", "OrderId", [order_a])) == [second, third]
    assert _ids(store.where_in("OrderItem", "OrderId", [order_a], include_deleted=True)) == [
        first,
        second,
        third,
    ]
    assert _ids(store.where_in("OrderItem", "OrderId", [order_b, order_a])) == [second, third]

    # Passing the whole record back (what Dml.update does) changes nothing in the index.
    whole = dict(store.get("OrderItem", third) or {})
    whole["Quantity"] = Decimal(5)
    store.update("OrderItem", third, whole)
    assert _ids(store.where("OrderItem", OrderId=order_a, Quantity=5)) == [third]
    store.verify_indexes()


def test_inserting_over_an_existing_id_replaces_it_in_place() -> None:
    store = _store()
    order_a = _add(store, "Order", Status="Draft")
    order_b = _add(store, "Order", Status="Draft")
    first = _add(store, "OrderItem", OrderId=order_a)
    second = _add(store, "OrderItem", OrderId=order_b)
    assert _ids(store.where("OrderItem", OrderId=order_b)) == [second]
    store.insert("OrderItem", {"Id": first, "IsDeleted": False, "OrderId": order_b})
    assert store.where("OrderItem", OrderId=order_a) == []
    assert _ids(store.where("OrderItem", OrderId=order_b)) == [first, second]  # kept its place
    store.verify_indexes()


def test_unhashable_values_are_still_found() -> None:
    store = _store()
    tagged = _add(store, "Account", Name="a", Tags=["x"])
    plain = _add(store, "Account", Name="b", Tags="x")
    assert _ids(store.where("Account", Tags="x")) == [plain]
    assert _ids(store.where("Account", Tags=["x"])) == [tagged]
    store.update("Account", tagged, {"Tags": "x"})
    assert _ids(store.where("Account", Tags="x")) == [tagged, plain]
    store.verify_indexes()


def test_case_folded_index_matches_like_the_unique_check() -> None:
    store = _store()
    first = _add(store, "Order", POS_Transaction_Id__c="T-Abc")
    _add(store, "Order", POS_Transaction_Id__c=None)
    assert _ids(store.where_folded("Order", "POS_Transaction_Id__c", "t-aBC")) == [first]
    store.update("Order", first, {"POS_Transaction_Id__c": "T-other"})
    assert store.where_folded("Order", "POS_Transaction_Id__c", "T-ABC") == []
    assert _ids(store.where_folded("Order", "POS_Transaction_Id__c", "t-OTHER")) == [first]
    # The exact index stays case-sensitive, like the scan it replaces.
    assert store.where("Order", POS_Transaction_Id__c="t-other") == []
    store.verify_indexes()


def test_rolled_back_transaction_restores_the_indexes() -> None:
    store = _store()
    order = _add(store, "Order", Status="Draft", POS_Transaction_Id__c="T-1")
    kept = _add(store, "OrderItem", OrderId=order)
    assert _ids(store.where("OrderItem", OrderId=order)) == [kept]
    assert _ids(store.where_folded("Order", "POS_Transaction_Id__c", "t-1")) == [order]
    other = _add(store, "Order", Status="Draft")
    with pytest.raises(RuntimeError), store.transaction():
        added = _add(store, "OrderItem", OrderId=order)
        store.update("OrderItem", kept, {"OrderId": other})
        store.update("Order", order, {"POS_Transaction_Id__c": "T-2"})
        with store.transaction():
            store.update("OrderItem", added, {"OrderId": other})
        assert _ids(store.where("OrderItem", OrderId=other)) == [kept, added]
        assert store.where_folded("Order", "POS_Transaction_Id__c", "T-1") == []
        raise RuntimeError("the graph failed")
    assert store.get("OrderItem", added) is None
    assert _ids(store.where("OrderItem", OrderId=order)) == [kept]
    assert store.where("OrderItem", OrderId=other) == []
    assert _ids(store.where_folded("Order", "POS_Transaction_Id__c", "t-1")) == [order]
    assert store.where_folded("Order", "POS_Transaction_Id__c", "t-2") == []
    # The rolled-back id is handed out again; the re-inserted record goes last.
    again = _add(store, "OrderItem", OrderId=order)
    assert again == added
    assert _ids(store.where("OrderItem", OrderId=order)) == [kept, again]
    store.verify_indexes()


def test_index_built_inside_a_transaction_survives_its_rollback() -> None:
    store = _store()
    order = _add(store, "Order", Status="Draft")
    kept = _add(store, "OrderItem", OrderId=order)
    with pytest.raises(RuntimeError), store.transaction():
        _add(store, "OrderItem", OrderId=order)
        assert len(store.where("OrderItem", OrderId=order)) == 2  # first use: built here
        raise RuntimeError
    assert _ids(store.where("OrderItem", OrderId=order)) == [kept]
    store.verify_indexes()


def test_restart_from_the_state_file_rebuilds_the_indexes(tmp_path: Path) -> None:
    path = tmp_path / "org.sqlite"
    store = _store(path)
    order = _add(store, "Order", Status="Draft", POS_Transaction_Id__c="T-9")
    items = [_add(store, "OrderItem", OrderId=order) for _ in range(3)]
    assert _ids(store.where("OrderItem", OrderId=order)) == items
    store.update("OrderItem", items[1], {"OrderId": None})

    reopened = _store(path)  # a new process on the same file
    assert _ids(reopened.where("OrderItem", OrderId=order)) == [items[0], items[2]]
    assert _ids(reopened.where_folded("Order", "POS_Transaction_Id__c", "t-9")) == [order]

    # reload() (what restart does) re-reads the file, here changed behind the store's back.
    assert _ids(store.where("OrderItem", OrderId=order)) == [items[0], items[2]]
    reopened.update("OrderItem", items[0], {"OrderId": None})
    newer = _add(reopened, "OrderItem", OrderId=order)
    reopened.update("Order", order, {"POS_Transaction_Id__c": "T-10"})
    store.reload()
    assert _ids(store.where("OrderItem", OrderId=order)) == [items[2], newer]
    assert store.where_folded("Order", "POS_Transaction_Id__c", "t-9") == []
    assert _ids(store.where_folded("Order", "POS_Transaction_Id__c", "t-10")) == [order]
    store.verify_indexes()

    # clear() starts the numbering over: the same ids come back for other records.
    store.clear()
    assert store.where("OrderItem", OrderId=order) == []
    again = _add(store, "Order", Status="Draft")
    assert again == order
    assert store.where("OrderItem", OrderId=order) == []
    store.verify_indexes()
    store.close()
    reopened.close()


def test_random_writes_and_rollbacks_match_a_scan() -> None:
    """Many random inserts, parent moves, deletes and failed transactions; every lookup is
    checked against a scan (check_indexes) and a final sweep checks every parent."""
    rng = random.Random(7)
    store = _store()
    parents = [_add(store, "Order", Status="Draft") for _ in range(5)]
    children: list[str] = []
    for step in range(400):
        try:
            with store.transaction():
                for _ in range(rng.randint(1, 4)):
                    action = rng.random()
                    if action < 0.4 or not children:
                        child = _add(store, "OrderItem", OrderId=rng.choice(parents))
                        children.append(child)
                    elif action < 0.8:
                        store.update(
                            "OrderItem",
                            rng.choice(children),
                            {"OrderId": rng.choice([*parents, None])},
                        )
                    else:
                        store.update("OrderItem", rng.choice(children), {"IsDeleted": True})
                    store.where("OrderItem", OrderId=rng.choice(parents))
                if rng.random() < 0.3:
                    raise RuntimeError(f"roll back step {step}")
        except RuntimeError:
            children = [c for c in children if store.get("OrderItem", c, include_deleted=True)]
        store.verify_indexes()
    for parent in [*parents, None]:
        store.where("OrderItem", OrderId=parent)
        store.where_in("OrderItem", "OrderId", [parent], include_deleted=True)


# --- through the sandbox ---------------------------------------------------------------------


@pytest.fixture
def checked_app(demo_app: Api) -> Iterator[Api]:
    """The in-process demo org with every index lookup cross-checked against a scan, and
    every index compared with a rebuilt one at the end."""
    demo_app.sandbox.store.check_indexes = True
    yield demo_app
    demo_app.sandbox.store.verify_indexes()


def test_failed_graph_leaves_no_trace_in_the_indexes(checked_app: Api) -> None:
    api = checked_app
    store = api.sandbox.store
    done = sale(api, txn="T-ok")
    counts = {t: len(store.all(t)) for t in ("Order", "OrderItem", "OrderItemTaxLineItem")}
    bad = order_graph(api.sandbox.demo, "bad", txn="T-bad")
    bad_pay = next(n for n in bad["compositeRequest"] if n["referenceId"] == "refPay")
    del bad_pay["body"]["Amount"]  # fails late: order, items and taxes were written first
    result = post_graph(api, bad)
    assert result["graphs"][0]["isSuccessful"] is False
    assert store.where_folded("Order", "POS_Transaction_Id__c", "T-bad") == []
    assert {t: len(store.all(t)) for t in counts} == counts
    orders = [o["Id"] for o in store.all("Order")]
    assert len(store.where_in("OrderItem", "OrderId", orders)) == counts["OrderItem"]
    assert api.rows("SELECT Id FROM Order WHERE POS_Transaction_Id__c = 'T-bad'") == []
    # The unique check does not see the rolled-back order: the same transaction id posts.
    again = sale(api, txn="t-BAD")
    assert again["summary_id"] is not None
    # ... and the unique check still refuses a real duplicate (case-sensitive field: exact).
    dup = post_graph(api, order_graph(api.sandbox.demo, txn="T-ok"))
    assert node(dup, 0, "refOrder")["body"][0]["errorCode"] == "DUPLICATE_VALUE"
    assert done["order_id"] in node(dup, 0, "refOrder")["body"][0]["message"]


def test_order_rollups_and_summary_children_through_the_indexes(checked_app: Api) -> None:
    api = checked_app
    first = sale(api, txn="T-1")
    second = sale(api, txn="T-2", lines=(("SNK-RUN-42", 1),))
    store = api.sandbox.store
    for ids_ in (first, second):
        order = store.get("Order", ids_["order_id"])
        assert order is not None
        items = store.where("OrderItem", OrderId=ids_["order_id"])
        assert order["TotalAmount"] == sum(
            (i["TotalLineAmount"] + i["TotalAdjustmentAmount"] for i in items), Decimal(0)
        )
        summaries = store.where("OrderSummary", OriginalOrderId=ids_["order_id"])
        assert _ids(summaries) == [ids_["summary_id"]]
    assert len(store.where("OrderItemSummary", OrderSummaryId=second["summary_id"])) == 1


def test_upsert_matches_external_ids_ignoring_case(checked_app: Api) -> None:
    api = checked_app
    # Location.POS_Store_Id__c: unique, not case-sensitive (setup package).
    body = {"Name": "Seven", "LocationType": "Store"}
    created = api.patch("sobjects/Location/POS_Store_Id__c/Store-7", body)
    assert created.status_code == 201
    rec_id = created.json()["id"]
    updated = api.patch("sobjects/Location/POS_Store_Id__c/STORE-7", {"Name": "Seven b"})
    assert updated.status_code == 200 and updated.json()["id"] == rec_id
    got = api.get("sobjects/Location/POS_Store_Id__c/store-7")
    assert got.status_code == 200 and got.json()["Name"] == "Seven b"


def test_upsert_matches_case_sensitive_external_ids_exactly(checked_app: Api) -> None:
    api = checked_app
    # Account.POS_Customer_Id__c: unique and case-sensitive (setup package).
    created = api.patch("sobjects/Account/POS_Customer_Id__c/Cust-7", {"Name": "Seven"})
    assert created.status_code == 201
    other = api.patch("sobjects/Account/POS_Customer_Id__c/CUST-7", {"Name": "Other"})
    assert other.status_code == 201 and other.json()["id"] != created.json()["id"]
    assert api.get("sobjects/Account/POS_Customer_Id__c/cust-7").status_code == 404


def test_upsert_with_several_matches_after_a_restart(tmp_path: Path) -> None:
    from omsbridge_salesforce_sandbox import custom_field

    legacy = custom_field("Legacy_Id__c", external_id=True, unique=False)
    state = str(tmp_path / "org.sqlite")
    options: dict[str, Any] = {"custom_fields": {"Account": [legacy]}, "state_path": state}
    sandbox = SalesforceSandbox(**options)
    api = Api(in_process_client(sandbox), sandbox)
    for name in ("one", "two"):
        api.create("Account", {"Name": name, "Legacy_Id__c": "L-1"})
    assert api.patch("sobjects/Account/Legacy_Id__c/l-1", {"Name": "x"}).status_code == 300
    api.http.close()
    sandbox.close()
    reopened = SalesforceSandbox(**options)
    reopened.store.check_indexes = True
    api = Api(in_process_client(reopened), reopened)
    assert api.patch("sobjects/Account/Legacy_Id__c/L-1", {"Name": "x"}).status_code == 300
    single = api.patch("sobjects/Account/Legacy_Id__c/L-2", {"Name": "two"})
    assert single.status_code == 201
    assert api.patch("sobjects/Account/Legacy_Id__c/l-2", {"Name": "2"}).status_code == 200
    api.http.close()
    reopened.close()


def test_sandbox_restart_with_state_file_keeps_lookups_right(tmp_path: Path) -> None:
    sandbox = SalesforceSandbox(seed="demo", state_path=str(tmp_path / "org.sqlite"))
    sandbox.store.check_indexes = True
    api = Api(in_process_client(sandbox), sandbox)
    before = sale(api, txn="T-before")
    sandbox.restart()
    api = Api(in_process_client(sandbox), sandbox)
    after = sale(api, txn="T-after")
    store = sandbox.store
    for ids_ in (before, after):
        assert _ids(store.where("OrderSummary", OriginalOrderId=ids_["order_id"])) == [
            ids_["summary_id"]
        ]
    dup = post_graph(api, order_graph(sandbox.demo, txn="T-before"))
    assert node(dup, 0, "refOrder")["body"][0]["errorCode"] == "DUPLICATE_VALUE"
    store.verify_indexes()
    api.http.close()
    sandbox.close()


# --- SOQL narrowing ---------------------------------------------------------------------------


QUERIES = [
    "SELECT Id, Quantity FROM OrderItem WHERE OrderId = '{order}'",
    "SELECT Id FROM OrderItem WHERE OrderId = '{order15}'",
    "SELECT Id FROM OrderItem WHERE OrderId IN ('{order}', '{other}') ORDER BY Quantity DESC",
    "SELECT Id FROM OrderItem WHERE Quantity > 0 AND OrderId = '{order}' LIMIT 1",
    "SELECT Id FROM OrderItem WHERE OrderId = '{order}' OR OrderId = '{other}'",
    "SELECT Id FROM OrderItem WHERE NOT (OrderId = '{order}')",
    "SELECT Id FROM OrderItem WHERE OrderId != '{order}'",
    "SELECT Id FROM OrderItem WHERE OrderId = null",
    "SELECT Id FROM OrderItem WHERE Order.Id = '{order}'",
    "SELECT Id FROM OrderItem WHERE Id = '{item}'",
    "SELECT COUNT() FROM OrderItem WHERE OrderId = '{order}'",
    "SELECT Id FROM Order WHERE POS_Transaction_Id__c = 't-1'",
    "SELECT Id, (SELECT Id FROM OrderItems) FROM Order WHERE Id IN ('{order}', '{other}')",
    "SELECT Id FROM OrderItemSummary WHERE OrderSummaryId = '{summary}' ORDER BY LineNumber",
]


def test_index_conjunct_only_for_exact_top_level_conditions() -> None:
    schema = default_schema()

    def conjunct(text: str) -> Any:
        return soql.index_conjunct(soql.compile_query(schema, text).where)

    order = "801000000000001AAA"
    assert conjunct(f"SELECT Id FROM OrderItem WHERE OrderId = '{order}'") == ("OrderId", [order])
    assert conjunct(f"SELECT Id FROM OrderItem WHERE Quantity > 1 AND OrderId IN ('{order}')") == (
        "OrderId",
        [order],
    )
    for where in (
        f"OrderId = '{order}' OR Quantity > 1",
        f"NOT (OrderId = '{order}')",
        f"OrderId != '{order}'",
        "OrderId = null",
        f"Order.Id = '{order}'",
        "Type = 'x'",  # case-insensitive comparison: never narrowed
        "OrderId LIKE '801%'",
    ):
        assert conjunct(f"SELECT Id FROM OrderItem WHERE {where}") is None, where


def test_narrowed_queries_answer_like_full_scans(checked_app: Api, tmp_path: Path) -> None:
    api = checked_app
    first = sale(api, txn="T-1")
    second = sale(api, txn="T-2", lines=(("SNK-RUN-42", 1), ("TOTE-CNV", 3)))
    store = api.sandbox.store
    item = store.where("OrderItem", OrderId=second["order_id"])[1]["Id"]
    store.update("OrderItem", item, {"IsDeleted": True})  # soft-deleted rows stay right too
    values = {
        "order": first["order_id"],
        "order15": first["order_id"][:15],
        "other": second["order_id"],
        "item": item,
        "summary": second["summary_id"],
    }
    for template in QUERIES:
        text = template.format(**values)
        for deleted in (False, True):
            narrowed = api.sandbox.rest.run_query(text, include_deleted=deleted, version="62.0")
            plain = _scan_query(api.sandbox, text, deleted)
            assert narrowed.records == plain.records, text
            assert narrowed.total_size == plain.total_size, text


def _scan_query(sandbox: SalesforceSandbox, text: str, deleted: bool) -> Any:
    """Run *text* through an evaluator without index narrowing (the reference answer)."""
    original = soql.Evaluator.__init__

    def no_candidates(self: soql.Evaluator, *args: Any, **kwargs: Any) -> None:
        kwargs["candidates"] = None
        original(self, *args, **kwargs)

    try:
        soql.Evaluator.__init__ = no_candidates  # type: ignore[method-assign]
        return sandbox.rest.run_query(text, include_deleted=deleted, version="62.0")
    finally:
        soql.Evaluator.__init__ = original  # type: ignore[method-assign]
