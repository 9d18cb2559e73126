"""The SOQL subset: tokenizer, parser, binder, evaluator and Salesforce's error texts."""

from __future__ import annotations

from typing import Any

import pytest
from sf_sandbox_helpers import Api

from omsbridge_salesforce_sandbox.errors import SalesforceError
from omsbridge_salesforce_sandbox.schema import default_schema
from omsbridge_salesforce_sandbox.soql import compile_query, decode_string, tokenize


@pytest.fixture
def people(demo_app: Api) -> Api:
    """Accounts with awkward names, a date and a number to filter on."""
    api = demo_app
    for name, number in [
        ("O'Brien", "A-1"),
        ("Back\\slash", "A-2"),
        ("100% Cotton", "A-3"),
        ("under_score", "A-4"),
        ("Line\nBreak", None),
        ("Zed", "Z-1"),
    ]:
        api.create("Account", {"Name": name, "AccountNumber": number})
    return api


def _names(api: Api, where: str, obj: str = "Account") -> list[str]:
    return sorted(r["Name"] for r in api.rows(f"SELECT Name FROM {obj} WHERE {where}"))


def _error(api: Api, soql: str) -> dict[str, Any]:
    response = api.get("query", params={"q": soql})
    assert response.status_code == 400, response.text
    return response.json()[0]


def test_string_escapes(people: Api) -> None:
    assert _names(people, r"Name = 'O\'Brien'") == ["O'Brien"]
    assert _names(people, r"Name = 'Back\\slash'") == ["Back\\slash"]
    assert _names(people, r"Name = 'Line\nBreak'") == ["Line\nBreak"]
    assert _names(people, r"Name = 'o\'brien'") == ["O'Brien"]  # = is case-insensitive
    assert _names(people, r"Name = 'O\u0027Brien'") == ["O'Brien"]
    bad = _error(people, r"SELECT Name FROM Account WHERE Name = 'a\qb'")
    assert bad["errorCode"] == "MALFORMED_QUERY" and "Illegal character sequence" in bad["message"]
    outside_like = _error(people, r"SELECT Name FROM Account WHERE Name = '100\%'")
    assert outside_like["errorCode"] == "MALFORMED_QUERY"
    assert decode_string(r"a\%b", like=True) == [("a", False), ("%", True), ("b", False)]


def test_like_wildcards_and_their_escapes(people: Api) -> None:
    assert _names(people, "Name LIKE 'o%'") == ["O'Brien"]
    assert _names(people, "Name LIKE '%cotton'") == ["100% Cotton"]
    assert _names(people, r"Name LIKE '100\%%'") == ["100% Cotton"]
    assert _names(people, r"Name LIKE '100\%'") == []
    assert _names(people, "Name LIKE 'under_score'") == ["under_score"]
    assert _names(people, "Name LIKE 'under_scor_'") == ["under_score"]
    assert _names(people, r"Name LIKE 'under\_score'") == ["under_score"]
    assert _names(people, r"Name LIKE 'under\_scor\_'") == []
    assert _names(people, "Name LIKE 'Z_d'") == ["Zed"]


def test_operators_boolean_logic_and_parentheses(people: Api) -> None:
    assert _names(people, "AccountNumber IN ('A-1', 'Z-1')") == ["O'Brien", "Zed"]
    not_in = _names(people, "AccountNumber NOT IN ('A-1', 'A-2', 'A-3', 'A-4', 'Z-1')")
    assert "Line\nBreak" in not_in  # SOQL's NOT IN keeps nulls
    assert _names(people, "AccountNumber = null AND Name LIKE 'Line%'") == ["Line\nBreak"]
    assert "Line\nBreak" not in _names(people, "AccountNumber != null")
    assert _names(people, "AccountNumber > 'A-3' AND AccountNumber <= 'Z-1'") == [
        "Zed",
        "under_score",
    ]
    assert _names(people, "AccountNumber >= 'Z-1' OR AccountNumber < 'A-2'") == ["O'Brien", "Zed"]
    assert _names(people, "AccountNumber <> 'Z-1' AND (Name = 'Zed' OR Name = 'O\\'Brien')") == [
        "O'Brien"
    ]
    assert _names(people, "NOT Name LIKE '%e%' AND AccountNumber != null") == [
        "100% Cotton",
        "Back\\slash",
    ]
    assert _names(people, "NOT (Name = 'Zed' OR AccountNumber = null) AND Name LIKE 'O%'") == [
        "O'Brien"
    ]
    mixed = _error(people, "SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'")
    assert mixed["errorCode"] == "MALFORMED_QUERY"


def test_numbers_booleans_dates_datetimes(demo_app: Api) -> None:
    api = demo_app
    api.sandbox.set_token_lifetime(0)  # 0 = never expires; this test moves the clock
    api.login()
    demo = api.sandbox.demo
    prices = api.rows(
        "SELECT UnitPrice FROM PricebookEntry WHERE UnitPrice > 40 AND "
        f"Pricebook2Id = '{demo['pricebook_id']}' ORDER BY UnitPrice DESC"
    )
    assert [r["UnitPrice"] for r in prices] == [120.0, 45.0]
    assert api.rows("SELECT Id FROM PricebookEntry WHERE UnitPrice = 7.95")
    assert len(api.rows("SELECT Id FROM Product2 WHERE IsActive = true")) == 7
    assert api.rows("SELECT Id FROM Product2 WHERE IsActive = false") == []
    today = api.sandbox.clock.now().date().isoformat()
    assert len(api.rows(f"SELECT Id FROM Order WHERE EffectiveDate = {today}")) == 3
    assert api.rows(f"SELECT Id FROM Order WHERE EffectiveDate > {today}") == []
    assert len(api.rows("SELECT Id FROM Order WHERE CreatedDate > 2020-01-01T00:00:00Z")) == 3
    assert len(api.rows("SELECT Id FROM Order WHERE CreatedDate >= 2020-01-01T00:00:00+01:00")) == 3
    assert len(api.rows("SELECT Id FROM Order WHERE CreatedDate = TODAY")) == 3
    assert len(api.rows("SELECT Id FROM Order WHERE EffectiveDate = LAST_N_DAYS:3")) == 3
    assert api.rows("SELECT Id FROM Order WHERE CreatedDate = YESTERDAY") == []
    assert api.rows("SELECT Id FROM Order WHERE CreatedDate >= TOMORROW") == []
    api.sandbox.clock.advance(5 * 86400)
    assert api.rows("SELECT Id FROM Order WHERE CreatedDate = LAST_N_DAYS:3") == []
    assert len(api.rows("SELECT Id FROM Order WHERE CreatedDate < LAST_N_DAYS:3")) == 3
    assert api.rows("SELECT Id FROM Order WHERE CreatedDate = NEXT_N_DAYS:2") == []
    quoted_date = _error(api, "SELECT Id FROM Order WHERE EffectiveDate = '2026-01-01'")
    assert quoted_date["errorCode"] == "INVALID_FIELD"
    assert "must be of type date and should not be enclosed in quotes" in quoted_date["message"]
    quoted_bool = _error(api, "SELECT Id FROM Product2 WHERE IsActive = 'true'")
    assert "type boolean" in quoted_bool["message"]
    unquoted = _error(api, "SELECT Id FROM Product2 WHERE Name = 5")
    assert "type string and should be enclosed in quotes" in unquoted["message"]
    assert _error(api, "SELECT Id FROM Product2 WHERE Id = 'abc'") == {
        "message": "\nSELECT Id FROM Product2 WHERE Id = 'abc'\n"
        "                                   ^\nERROR at Row:1:Column:36\n"
        "invalid ID field: abc",
        "errorCode": "INVALID_QUERY_FILTER_OPERATOR",
    }
    textarea = _error(api, "SELECT Id FROM Product2 WHERE Description = 'x'")
    assert "can not be filtered" in textarea["message"]


def test_ids_match_in_15_or_18_characters(demo_app: Api) -> None:
    product = demo_app.sandbox.demo["products"]["TEE-BLK-M"]
    for literal in (product, product[:15]):
        rows = demo_app.rows(f"SELECT Id FROM Product2 WHERE Id = '{literal}'")
        assert [r["Id"] for r in rows] == [product]


def test_order_by_nulls_limit_offset(people: Api) -> None:
    asc = [
        r["AccountNumber"]
        for r in people.rows(
            "SELECT AccountNumber FROM Account WHERE Name != 'DEMO-en_US-US' AND IsPersonAccount = "
            "false ORDER BY AccountNumber"
        )
    ]
    assert asc[0] is None and asc[1:] == ["A-1", "A-2", "A-3", "A-4", "Z-1"]
    desc = [
        r["AccountNumber"]
        for r in people.rows(
            "SELECT AccountNumber FROM Account WHERE IsPersonAccount = false AND Name != "
            "'DEMO-en_US-US' ORDER BY AccountNumber DESC"
        )
    ]
    assert desc[-1] is None and desc[0] == "Z-1"
    nulls_first = [
        r["AccountNumber"]
        for r in people.rows(
            "SELECT AccountNumber FROM Account WHERE IsPersonAccount = false AND Name != "
            "'DEMO-en_US-US' ORDER BY AccountNumber DESC NULLS FIRST"
        )
    ]
    assert nulls_first[0] is None
    paged = [
        r["AccountNumber"]
        for r in people.rows(
            "SELECT AccountNumber FROM Account WHERE AccountNumber != null "
            "ORDER BY AccountNumber ASC NULLS LAST LIMIT 2 OFFSET 1"
        )
    ]
    assert paged == ["A-2", "A-3"]
    multi = people.rows("SELECT Name FROM Product2 ORDER BY Family DESC, Name ASC LIMIT 3")
    assert [r["Name"] for r in multi] == [
        "Runner Sneaker - 42",
        "Standard Shipping",
        "Store Pickup",
    ]


def test_count_and_aggregate_count(demo_app: Api) -> None:
    assert demo_app.query("SELECT COUNT() FROM Product2") == {
        "totalSize": 7,
        "done": True,
        "records": [],
    }
    assert (
        demo_app.query("select count() from Product2 WHERE Family = 'Delivery'")["totalSize"] == 2
    )
    agg = demo_app.query("SELECT COUNT(Id) FROM Product2")
    assert agg["records"] == [{"attributes": {"type": "AggregateResult"}, "expr0": 7}]
    named = demo_app.query("SELECT COUNT(Id) n FROM Product2")
    assert named["records"][0]["n"] == 7


def test_relationship_fields_and_child_subqueries(demo_app: Api) -> None:
    api = demo_app
    rows = api.rows(
        "SELECT Id, OrderSummary.Account.PersonEmail, DeliveryMethod.Name, "
        "FulfilledFromLocation.warehouseID__c, FulfilledFromLocation.Name, "
        "(SELECT Quantity, OrderItemSummary.StockKeepingUnit "
        "FROM FulfillmentOrderLineItems ORDER BY Quantity) "
        "FROM FulfillmentOrder WHERE FulfilledFromLocation.warehouseID__c = 'store-001'"
    )
    assert len(rows) == 1
    fo = rows[0]
    assert list(fo) == [
        "attributes",
        "Id",
        "OrderSummary",
        "DeliveryMethod",
        "FulfilledFromLocation",
        "FulfillmentOrderLineItems",
    ]
    assert fo["FulfilledFromLocation"]["attributes"]["type"] == "Location"
    assert fo["FulfilledFromLocation"]["warehouseID__c"] == "store-001"
    assert fo["FulfilledFromLocation"]["Name"] == "Downtown Store"
    assert fo["OrderSummary"]["Account"]["PersonEmail"] == "amanda.freeman@example.com"
    lines = fo["FulfillmentOrderLineItems"]
    assert lines["totalSize"] == 3 and lines["done"] is True
    assert {r["OrderItemSummary"]["StockKeepingUnit"] for r in lines["records"]} == {
        "TEE-BLK-M",
        "TOTE-CNV",
        "DELIVERY-PICKUP",
    }
    empty_child = api.rows("SELECT Id, (SELECT Id FROM Contacts) FROM Account LIMIT 1")
    assert empty_child[0]["Contacts"] is None  # Salesforce answers null, not an empty list
    acct = api.create("Contact", {"LastName": "Orphan"})
    orphan = api.rows(f"SELECT Id, Account.Name FROM Contact WHERE Id = '{acct}'")
    assert orphan[0]["Account"] is None
    by_email = api.rows("SELECT Id FROM Account WHERE PersonEmail = 'amanda.freeman@example.com'")
    assert len(by_email) == 1
    odm = api.rows("SELECT Id FROM FulfillmentOrder WHERE DeliveryMethod.Name = 'Store Pickup'")
    assert len(odm) == 2
    prefixed = api.rows("SELECT Account.Name FROM Account WHERE Account.Name = 'DEMO-en_US-US'")
    assert prefixed[0]["Name"] == "DEMO-en_US-US"
    canonical = api.rows(
        "SELECT name, STOCKKEEPINGUNIT FROM product2 WHERE stockkeepingunit = 'tee-blk-m'"
    )
    assert set(canonical[0]) == {"attributes", "Name", "StockKeepingUnit"}


def test_query_all_sees_deleted_rows(demo_app: Api) -> None:
    acct = demo_app.create("Account", {"Name": "Soon Gone"})
    assert demo_app.delete(f"sobjects/Account/{acct}").status_code == 204
    assert demo_app.rows("SELECT Id FROM Account WHERE Name = 'Soon Gone'") == []
    deleted = demo_app.query(
        "SELECT Id, IsDeleted FROM Account WHERE Name = 'Soon Gone'", all_rows=True
    )
    assert deleted["records"][0]["IsDeleted"] is True


def test_error_messages_match_salesforce(demo_app: Api) -> None:
    # Recorded: Snowfakery's real INVALID_TYPE answer, byte for byte.
    assert _error(demo_app, "SELECT Xyzzy FROM Xyzzy") == {
        "message": "\nSELECT Xyzzy FROM Xyzzy\n                  ^\nERROR at Row:1:Column:19\n"
        "sObject type 'Xyzzy' is not supported. If you are attempting to use a "
        "custom object, be sure to append the '__c' after the entity name. Please "
        "reference your WSDL or the describe call for the appropriate names.",
        "errorCode": "INVALID_TYPE",
    }
    bad_field = _error(demo_app, "SELECT Id, Nope FROM Account")
    assert bad_field["errorCode"] == "INVALID_FIELD"
    assert bad_field["message"].startswith(
        "\nSELECT Id, Nope FROM Account\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Nope' on entity 'Account'."
    )
    relation = _error(demo_app, "SELECT FulfilledToLocation.warehouseID__c FROM FulfillmentOrder")
    assert relation["errorCode"] == "INVALID_FIELD"
    assert "Didn't understand relationship 'FulfilledToLocation'" in relation["message"]
    multi_line = _error(demo_app, "SELECT Id\nFROM Account\nWHERE Foo = 1")
    assert "ERROR at Row:3:Column:7" in multi_line["message"]
    for soql in (
        "SELECT FROM Account",
        "SELECT Id FROM",
        "SELECT Id FROM Account WHERE",
        "SELECT Id FROM Account LIMIT x",
        "SELECT Id FROM Account GROUP BY Name",
        "SELECT Id FROM Account WHERE Name = 'unterminated",
        "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)",
        "SELECT MAX(Name) FROM Account",
        "SELECT Id, Id FROM Account",
        "SELECT Id FROM Account a",
        "SELECT Id FROM Account WHERE Name = 'x' extra",
        "UPDATE Account",
    ):
        assert _error(demo_app, soql)["errorCode"] == "MALFORMED_QUERY", soql
    child = _error(demo_app, "SELECT Id, (SELECT Id FROM Nothings) FROM Account")
    assert child["errorCode"] == "INVALID_TYPE"


def test_parser_units() -> None:
    schema = default_schema()
    tokens = tokenize("SELECT Id FROM Order WHERE CreatedDate > 2026-01-05T10:15:00.000+0000")
    assert [t.kind for t in tokens][-2:] == ["datetime", "eof"]
    query = compile_query(schema, "SELECT Id FROM Order ORDER BY OrderNumber DESC")
    assert query.order[0].descending and query.order[0].nulls_last
    with pytest.raises(SalesforceError) as info:
        compile_query(schema, "   ")
    assert info.value.message == "SOQL statements cannot be empty or null"
    with pytest.raises(SalesforceError):
        tokenize('SELECT Id FROM Account WHERE Name = "double"')
