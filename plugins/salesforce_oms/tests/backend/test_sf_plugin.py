"""Plugin wiring, the graph hookspec, and the search SOQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sf_backend_helpers import config

from omsbridge import Capability, OrderQuery
from omsbridge.errors import InvalidTransaction
from omsbridge.plugins import new_plugin_manager
from omsbridge.registry import BackendRegistry
from omsbridge_salesforce import plugin
from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce.search import decode_cursor, encode_cursor, search_soql


def test_plugin_registers_backend_and_hookspec() -> None:
    pm = new_plugin_manager()
    pm.register(plugin, name="salesforce")
    plugin.omsbridge_add_hookspecs(plugin_manager=pm)
    assert pm.hook.omsbridge_salesforce_order_graph.has_spec()
    registry = BackendRegistry.from_plugins(pm)
    assert registry.get("salesforce") is SalesforceBackend
    assert Capability.EVENTS in SalesforceBackend.capabilities  # FOStatusChangedEvent (issue 6)
    assert Capability.POST_EXCHANGE in SalesforceBackend.capabilities


def test_entry_point_plugin_loads() -> None:
    registry = BackendRegistry.from_plugins()
    assert "salesforce" in registry


def test_search_soql_escapes_every_criterion() -> None:
    query = OrderQuery(
        order_number="1' OR Id != '",
        email="o'brien@example.com",
        first_name="A_%",
        last_name="O'Brien",
        placed_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    text, size, _ = search_soql(config(), query)
    assert "OrderNumber = '1\\' OR Id != \\''" in text
    assert "BillingEmailAddress = 'o\\'brien@example.com'" in text
    assert "Account.FirstName LIKE 'A\\_\\%%'" in text
    assert "OriginalOrder.Name LIKE '% O\\'Brien%'" in text
    assert "OrderedDate >= 2026-01-01T00:00:00Z" in text
    assert text.endswith("LIMIT 21") and size == 20


def test_cursor_carries_the_criteria() -> None:
    query = OrderQuery(email="a@example.com", page_size=5)
    cursor = encode_cursor(
        query,
        {"OrderedDate": "2026-11-20T15:30:00.000+0000", "OrderNumber": "00000105", "Id": "1Os"},
    )
    carried, after = decode_cursor(OrderQuery(cursor=cursor))
    assert carried.email == "a@example.com" and carried.page_size == 5
    assert after == ("2026-11-20T15:30:00.000+0000", "00000105")
    text, size, _ = search_soql(config(), OrderQuery(cursor=cursor))
    assert "BillingEmailAddress = 'a@example.com'" in text
    assert "OrderNumber < '00000105'" in text and size == 5


def test_customer_id_search_uses_the_configured_order_field() -> None:
    stored = config(order_customer_id_field="POS_Customer_Id__c")
    text, _, _ = search_soql(stored, OrderQuery(customer_id="CUST-1'x"))
    assert "(OriginalOrder.POS_Customer_Id__c = 'CUST-1\\'x')" in text
    account = "001000000000001AAA"
    text, _, _ = search_soql(stored, OrderQuery(customer_id=account))
    assert (
        f"(OriginalOrder.POS_Customer_Id__c = '{account}' OR AccountId = '{account}' "
        f"OR OriginalOrder.BillToContactId = '{account}')"
    ) in text
    with pytest.raises(InvalidTransaction) as caught:
        search_soql(config(), OrderQuery(customer_id="CUST-1"))
    assert caught.value.code == "INVALID_CUSTOMER_ID"
    assert "POS_Customer_Id__c" not in search_soql(config(), OrderQuery(customer_id=account))[0]


def _old_style(payload: object) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "state",
    [
        {"after": [1, 2, 3]},  # was ValueError: too many values to unpack
        {"after": ["not a date", "1"]},  # was ValueError from fromisoformat
        {"after": [5, "1"]},  # was AttributeError/TypeError in parse_datetime
        {"n": "x", "after": [None, "1"]},  # was ValueError: int("x")
        {"n": [1], "after": [None, "1"]},  # was TypeError
        {"n": 100000, "after": [None, "1"]},  # was LIMIT 100001
        {"placed_from": 5, "after": [None, "1"]},  # was TypeError
        {"placed_from": "x", "after": [None, "1"]},  # was ValueError
    ],
)
def test_a_malformed_cursor_is_invalid_never_a_crash(state) -> None:
    """Issue 11 item 7: each of these raised a Python error (or paged past 200) before."""
    for cursor in (_old_style(state), _old_style({"q": {"email": "a@x.io", **state}})):
        with pytest.raises(InvalidTransaction) as caught:
            search_soql(config(), OrderQuery(cursor=cursor))
        assert caught.value.code == "INVALID_CURSOR"
        assert caught.value.issues[0].path == "cursor"
    q = {"email": "a@x.io", "page_size": state.get("n", 5)}
    if "placed_from" in state:
        q["placed_from"] = state["placed_from"]
    current = "c1." + _old_style({"q": q, "after": state["after"]})
    with pytest.raises(InvalidTransaction) as caught:
        search_soql(config(), OrderQuery(cursor=current))
    assert caught.value.code == "INVALID_CURSOR"
