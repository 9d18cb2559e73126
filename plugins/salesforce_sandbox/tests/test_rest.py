"""sObject REST resources, describe, errors, versions, limits and query paging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sf_sandbox_helpers import BASE, Api

from omsbridge_salesforce_sandbox import SandboxServer, ids
from omsbridge_salesforce_sandbox.schema import default_schema

BRIEF_OBJECTS = [
    "Account",
    "Product2",
    "Pricebook2",
    "PricebookEntry",
    "SalesChannel",
    "OrderDeliveryMethod",
    "Order",
    "OrderItem",
    "OrderDeliveryGroup",
    "OrderItemTaxLineItem",
    "OrderAdjustmentGroup",
    "OrderItemAdjustmentLineItem",
    "PaymentGroup",
    "CardPaymentMethod",
    "DigitalWallet",
    "Payment",
    "PaymentAuthorization",
    "PaymentGateway",
    "Location",
    "OrderSummary",
    "OrderItemSummary",
    "OrderDeliveryGroupSummary",
    "OrderPaymentSummary",
    "OrderAdjustmentGroupSummary",
    "FulfillmentOrder",
    "FulfillmentOrderLineItem",
    "Shipment",
    "Invoice",
    "CreditMemo",
    "Refund",
    "ReturnOrder",
    "ReturnOrderLineItem",
]


def _draft_order(api: Api) -> str:
    demo = api.sandbox.demo
    return api.create(
        "Order",
        {
            "AccountId": demo["accounts"]["DEMO-en_US-US"],
            "EffectiveDate": "2026-01-05",
            "Status": "Draft",
            "Pricebook2Id": demo["pricebook_id"],
        },
    )


def _order_item(api: Api) -> str:
    return api.create(
        "OrderItem",
        {
            "OrderId": _draft_order(api),
            "Quantity": 1,
            "UnitPrice": 25,
            "PricebookEntryId": api.sandbox.demo["pricebook_entries"]["TEE-BLK-M"],
        },
    )


def _payment_method() -> dict[str, Any]:
    return {"ProcessingMode": "External", "Status": "Active"}


MINIMAL: dict[str, Callable[[Api], dict[str, Any]]] = {
    "Account": lambda api: {"Name": "Acme"},
    "Contact": lambda api: {"LastName": "Doe"},
    "Product2": lambda api: {"Name": "Widget"},
    "Pricebook2": lambda api: {"Name": "Book"},
    "PricebookEntry": lambda api: {
        "Pricebook2Id": api.sandbox.demo["standard_pricebook_id"],
        "UnitPrice": 3,
        "Product2Id": api.create("Product2", {"Name": "Widget"}),
    },
    "SalesChannel": lambda api: {"SalesChannelName": "Kiosk"},
    "OrderDeliveryMethod": lambda api: {"Name": "Courier"},
    "Order": lambda api: {
        "AccountId": api.sandbox.demo["accounts"]["DEMO-en_US-US"],
        "EffectiveDate": "2026-01-05",
        "Status": "Draft",
    },
    "OrderDeliveryGroup": lambda api: {
        "OrderId": _draft_order(api),
        "DeliverToName": "Ann",
        "OrderDeliveryMethodId": api.sandbox.demo["delivery_methods"]["ONLINE-DEFAULT"],
    },
    "OrderItem": lambda api: {
        "OrderId": _draft_order(api),
        "Quantity": 1,
        "UnitPrice": 25,
        "PricebookEntryId": api.sandbox.demo["pricebook_entries"]["TEE-BLK-M"],
    },
    "OrderItemTaxLineItem": lambda api: {
        "OrderItemId": _order_item(api),
        "Name": "VAT",
        "Type": "Actual",
        "Amount": 2,
        "TaxEffectiveDate": "2026-01-05",
    },
    "OrderAdjustmentGroup": lambda api: {
        "OrderId": _draft_order(api),
        "Name": "P",
        "Type": "Header",
    },
    "OrderItemAdjustmentLineItem": lambda api: {
        "OrderItemId": _order_item(api),
        "Name": "P",
        "Amount": -1,
    },
    "PaymentGateway": lambda api: {"PaymentGatewayName": "GW", "Status": "Active"},
    "PaymentGroup": lambda api: {"SourceObjectId": _draft_order(api)},
    "CardPaymentMethod": lambda api: _payment_method(),
    "DigitalWallet": lambda api: _payment_method(),
    "AlternativePaymentMethod": lambda api: _payment_method(),
    "PaymentAuthorization": lambda api: {
        "Amount": 5,
        "ProcessingMode": "External",
        "Status": "Processed",
    },
    "Payment": lambda api: {
        "Amount": 5,
        "ProcessingMode": "External",
        "Status": "Processed",
        "Type": "Sale",
    },
    "Location": lambda api: {"Name": "Kiosk", "LocationType": "Store", "warehouseID__c": "kiosk-1"},
    "FulfillmentOrder": lambda api: {
        "DeliveryMethodId": api.sandbox.demo["delivery_methods"]["ONLINE-DEFAULT"],
        "Status": "Draft",
        "Type": "Warehouse",
        "FulfilledToName": "Ann",
    },
    "FulfillmentOrderLineItem": lambda api: {
        "FulfillmentOrderId": api.sandbox.demo["orders"][0]["fulfillment_order_id"],
        "Quantity": 1,
        "OriginalQuantity": 1,
        "Type": "Order Product",
        "TypeCode": "Product",
    },
    "Shipment": lambda api: {"ShipToName": "Ann", "TrackingNumber": "1Z"},
    "Refund": lambda api: {
        "Amount": 5,
        "ProcessingMode": "External",
        "Status": "Processed",
        "Type": "NonReferenced",
    },
    "ReturnOrder": lambda api: {"Status": "Draft"},
    "ReturnOrderLineItem": lambda api: {
        "ReturnOrderId": api.create("ReturnOrder", {"Status": "Draft"}),
        "QuantityReturned": 0,
    },
    # The reference lists create() for the Order Management summary objects too; a plain
    # insert builds the bare record (no quantities or totals are computed).
    "OrderSummary": lambda api: {"OrderNumber": "OS-X"},
    "OrderItemSummary": lambda api: {"Name": "line"},
    "OrderDeliveryGroupSummary": lambda api: {},
    "OrderAdjustmentGroupSummary": lambda api: {"Name": "adj"},
    "OrderItemAdjustmentLineSummary": lambda api: {"Name": "adj"},
    "OrderPaymentSummary": lambda api: {
        "OrderSummaryId": api.sandbox.demo["orders"][0]["order_summary_id"],
        "Method": "Visa",
        "Type": "Sale",
    },
    "FulfillmentOrderItemAdjustment": lambda api: _fo_line_child(api, {"Amount": -1}),
    "FulfillmentOrderItemTax": lambda api: _fo_line_child(
        api, {"Amount": 1, "Type": "Actual", "TaxEffectiveDate": "2026-01-05"}
    ),
    "ShipmentItem": lambda api: {
        "ShipmentId": api.create("Shipment", {"ShipToName": "Ann"}),
        "Quantity": 1,
    },
}


def _fo_line_child(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    fo_id = api.sandbox.demo["orders"][0]["fulfillment_order_id"]
    line = api.rows(f"SELECT Id FROM FulfillmentOrderLineItem WHERE FulfillmentOrderId = '{fo_id}'")
    return {"FulfillmentOrderId": fo_id, "FulfillmentOrderLineItemId": line[0]["Id"], **body}


SCHEMA = default_schema()
CREATEABLE = [t.name for t in SCHEMA.types() if t.createable]
READ_ONLY = [t.name for t in SCHEMA.types() if not t.createable]


def test_schema_covers_the_brief_and_is_consistent() -> None:
    names = {t.name for t in SCHEMA.types()}
    assert set(BRIEF_OBJECTS) <= names
    assert set(CREATEABLE) == set(MINIMAL)
    for t in SCHEMA.types():
        for f in t.fields.values():
            if f.child_relationship:  # targets of child relationships must be served
                for target in f.references:
                    assert SCHEMA.get(target) is not None, (t.name, f.name, target)
    assert SCHEMA.get("Location").field("warehouseID__c").external_id  # type: ignore[union-attr]


@pytest.mark.parametrize("type_name", CREATEABLE)
def test_crud_for_every_createable_object(demo_app: Api, type_name: str) -> None:
    api = demo_app
    body = MINIMAL[type_name](api)
    created = api.post(f"sobjects/{type_name}", body)
    assert created.status_code == 201, created.text
    rec_id = created.json()["id"]
    prefix = SCHEMA.get(type_name).key_prefix  # type: ignore[union-attr]
    assert len(rec_id) == 18 and rec_id.startswith(prefix) and ids.is_valid(rec_id)
    record = api.record(type_name, rec_id)
    assert record["attributes"] == {
        "type": type_name,
        "url": f"{BASE}/sobjects/{type_name}/{rec_id}",
    }
    assert record["Id"] == rec_id and record["IsDeleted"] is False
    by_15 = api.get(f"sobjects/{type_name}/{rec_id[:15]}")
    assert by_15.status_code == 200
    described = api.get(f"sobjects/{type_name}/describe").json()
    assert described["keyPrefix"] == prefix
    assert {f["name"] for f in described["fields"]} >= set(body)
    patch = {"Description": "changed"} if "Description" in record else {}
    assert api.patch(f"sobjects/{type_name}/{rec_id}", patch).status_code == 204
    if patch:
        assert api.record(type_name, rec_id)["Description"] == "changed"
    rows = api.rows(f"SELECT Id FROM {type_name} WHERE Id = '{rec_id}'")
    assert [r["Id"] for r in rows] == [rec_id]
    assert api.delete(f"sobjects/{type_name}/{rec_id}").status_code == 204
    assert api.get(f"sobjects/{type_name}/{rec_id}").status_code == 404
    assert api.rows(f"SELECT Id FROM {type_name} WHERE Id = '{rec_id}'") == []
    deleted = api.query(
        f"SELECT Id, IsDeleted FROM {type_name} WHERE Id = '{rec_id}'", all_rows=True
    )["records"]
    assert deleted[0]["IsDeleted"] is True


@pytest.mark.parametrize("type_name", READ_ONLY)
def test_summary_objects_are_read_only(api: Api, type_name: str) -> None:
    response = api.post(f"sobjects/{type_name}", {})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    assert api.get(f"sobjects/{type_name}/describe").status_code == 200
    assert api.get("query", params={"q": f"SELECT Id FROM {type_name}"}).status_code == 200


def test_field_errors(api: Api) -> None:
    demo = api.sandbox.demo

    def error(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 400, response.text
        body = response.json()
        assert isinstance(body, list) and len(body) == 1
        return body[0]

    assert error(api.post("sobjects/Contact", {"FirstName": "x"})) == {
        "message": "Required fields are missing: [LastName]",
        "errorCode": "REQUIRED_FIELD_MISSING",
        "fields": ["LastName"],
    }
    assert error(api.post("sobjects/Account", {"Name": "x", "foo": 1})) == {
        "message": "No such column 'foo' on sobject of type Account",
        "errorCode": "INVALID_FIELD",
    }
    assert (
        error(api.post("sobjects/Contact", {"LastName": "x", "AccountId": "xyz"}))["errorCode"]
        == "MALFORMED_ID"
    )
    assert error(api.patch("sobjects/Account/xyz", {"Name": "x"}))["errorCode"] == "MALFORMED_ID"
    missing_account = ids.make_id("001", 999_999_999)
    assert error(api.post("sobjects/Contact", {"LastName": "x", "AccountId": missing_account})) == {
        "message": "invalid cross reference id",
        "errorCode": "INVALID_CROSS_REFERENCE_KEY",
        "fields": ["AccountId"],
    }
    assert (
        error(
            api.post(
                "sobjects/Contact", {"LastName": "x", "AccountId": demo["products"]["TEE-BLK-M"]}
            )
        )["errorCode"]
        == "FIELD_INTEGRITY_EXCEPTION"
    )
    # Product2.StockKeepingUnit is not unique per the reference (was refused before
    # generation); a unique external id is: Location.warehouseID__c on the `som` profile.
    assert (
        error(
            api.post(
                "sobjects/Location",
                {"Name": "dup", "LocationType": "Store", "POS_Store_Id__c": "STORE-001"},
            )
        )["errorCode"]
        == "DUPLICATE_VALUE"
    )
    assert error(
        api.post(
            "sobjects/Payment",
            {"Amount": 1, "ProcessingMode": "External", "Status": "Done", "Type": "Sale"},
        )
    ) == {
        "message": "Status: bad value for restricted picklist field: Done",
        "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "fields": ["Status"],
    }
    assert (
        error(
            api.post(
                "sobjects/Order",
                {
                    "AccountId": demo["accounts"]["DEMO-en_US-US"],
                    "EffectiveDate": "05/01/2026",
                    "Status": "Draft",
                },
            )
        )["errorCode"]
        == "JSON_PARSER_ERROR"
    )
    assert (
        error(api.post("sobjects/Account", {"Name": "x" * 300}))["errorCode"] == "STRING_TOO_LONG"
    )
    assert (
        error(api.post("sobjects/Account", {"LastName": "x", "PersonEmail": "nope"}))["errorCode"]
        == "INVALID_EMAIL_ADDRESS"
    )
    assert (
        error(api.post("sobjects/Account", {"Name": "x", "IsPersonAccount": True}))["errorCode"]
        == "INVALID_FIELD_FOR_INSERT_UPDATE"
    )
    raw = api.http.post(
        f"{BASE}/sobjects/Account",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert raw.status_code == 400 and raw.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert api.get("sobjects/Account/001000000000000AAA").json() == [
        {"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}
    ]
    assert api.get("sobjects/Nope").status_code == 404
    assert api.post("sobjects/Account/describe", {}).status_code == 405
    std_entry = api.post(
        "sobjects/PricebookEntry",
        {
            "Pricebook2Id": demo["pricebook_id"],
            "UnitPrice": 1,
            "Product2Id": api.create("Product2", {"Name": "No standard price"}),
        },
    )
    assert error(std_entry)["errorCode"] == "STANDARD_PRICE_NOT_DEFINED"


def test_person_accounts(api: Api) -> None:
    person = api.create(
        "Account", {"FirstName": "Ada", "LastName": "Lovelace", "PersonEmail": "ada@example.com"}
    )
    record = api.record("Account", person)
    assert record["IsPersonAccount"] is True and record["Name"] == "Ada Lovelace"
    rows = api.rows(
        "SELECT Id, Name, PersonEmail, IsPersonAccount FROM Account "
        "WHERE PersonEmail = 'ADA@example.com'"
    )
    assert [r["Id"] for r in rows] == [person]
    business = api.create("Account", {"Name": "Biz"})
    assert api.record("Account", business)["IsPersonAccount"] is False
    refused = api.patch(f"sobjects/Account/{business}", {"PersonEmail": "x@example.com"})
    assert refused.status_code == 400


def test_upsert_by_external_id(api: Api) -> None:
    first = api.patch("sobjects/Account/POS_Customer_Id__c/CUST 1", {"Name": "Cust"})
    assert first.status_code == 201
    body = first.json()
    assert body == {"id": body["id"], "success": True, "errors": [], "created": True}
    second = api.patch("sobjects/Account/POS_Customer_Id__c/CUST 1", {"Name": "Cust 2"})
    assert second.status_code == 200
    assert second.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    assert api.record("Account", body["id"])["Name"] == "Cust 2"
    got = api.get("sobjects/Account/POS_Customer_Id__c/CUST 1")
    assert got.status_code == 200 and got.json()["Id"] == body["id"]
    bad = api.patch("sobjects/Account/Namez/x", {"Name": "x"})
    assert bad.status_code == 404
    assert bad.json() == [
        {
            "message": "Provided external ID field does not exist or is not accessible: Namez",
            "errorCode": "NOT_FOUND",
        }
    ]
    location = api.patch(
        "sobjects/Location/warehouseID__c/store-009", {"Name": "New Store", "LocationType": "Store"}
    )
    assert location.status_code == 201
    # The reference marks Product2.StockKeepingUnit neither external id nor idLookup.
    sku = api.patch("sobjects/Product2/StockKeepingUnit/TEE-BLK-M", {"Name": "Tee renamed"})
    assert sku.status_code == 404


def test_read_with_fields_and_if_modified_since(api: Api) -> None:
    acct = api.create("Account", {"Name": "Fields"})
    response = api.get(f"sobjects/Account/{acct}", params={"fields": "Name,Id"})
    assert set(response.json()) == {"attributes", "Name", "Id"}
    assert api.get(f"sobjects/Account/{acct}", params={"fields": "Nope"}).status_code == 400
    later = api.get(
        f"sobjects/Account/{acct}", headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}
    )
    assert later.status_code == 304
    earlier = api.get(
        f"sobjects/Account/{acct}", headers={"If-Modified-Since": "Fri, 01 Jan 2010 00:00:00 GMT"}
    )
    assert earlier.status_code == 200


def test_versions_resources_and_describe_global(sf_sandbox: SandboxServer) -> None:
    versions = httpx.get(f"{sf_sandbox.url}/services/data/")
    assert versions.status_code == 200
    assert "Sforce-Limit-Info" not in versions.headers
    listed = versions.json()
    assert {"label", "url", "version"} == set(listed[0])
    assert {"version": "62.0", "url": "/services/data/v62.0", "label": "Winter '25"} in listed
    with sf_sandbox.client() as http:
        resources = http.get(f"{BASE}/").json()
        assert resources["sobjects"] == f"{BASE}/sobjects"
        glob = http.get(f"{BASE}/sobjects").json()
        assert {o["name"] for o in glob["sobjects"]} >= set(BRIEF_OBJECTS)
        assert http.get("/services/data/v99.0/limits").status_code == 404


def test_api_budget_limits_and_header(sf_sandbox: SandboxServer) -> None:
    sandbox = sf_sandbox.sandbox
    sandbox.set_api_budget(5)
    sandbox.set_token_lifetime(3 * 24 * 3600)
    with sf_sandbox.client() as http:
        first = http.get(f"{BASE}/limits")
        assert first.headers["Sforce-Limit-Info"] == "api-usage=1/5"
        daily = first.json()["DailyApiRequests"]
        assert daily == {"Max": 5, "Remaining": 4}
        for _ in range(4):
            assert http.get(f"{BASE}/sobjects").status_code == 200
        refused = http.get(f"{BASE}/limits")
        assert refused.status_code == 403
        assert refused.json() == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
        assert refused.headers["Sforce-Limit-Info"] == "api-usage=5/5"
        sandbox.clock.advance(24 * 3600 + 1)  # the window is a rolling 24 hours
        again = http.get(f"{BASE}/limits")
        assert again.status_code == 200 and again.json()["DailyApiRequests"]["Remaining"] == 4
        control = httpx.post(
            f"{sf_sandbox.url}/__sandbox__/faults", json={"api_budget": 100, "api_used": 100}
        )
        assert control.json()["api_used"] == 100
        assert http.get(f"{BASE}/limits").status_code == 403


def test_query_paging_with_next_records_url(api: Api) -> None:
    api.sandbox.configure(query_page_size=3)
    first = api.query("SELECT Id, Name FROM Product2 ORDER BY Name")
    assert first["totalSize"] == 7 and first["done"] is False
    assert len(first["records"]) == 3
    url = first["nextRecordsUrl"]
    assert url.startswith(f"{BASE}/query/01g") and url.endswith("-3")
    names = [r["Name"] for r in first["records"]]
    while url:
        page = api.get(url).json()
        names += [r["Name"] for r in page["records"]]
        url = page.get("nextRecordsUrl")
        assert page["totalSize"] == 7
    assert names == sorted(names) and len(names) == 7
    assert api.get(f"{BASE}/query/01gXXXXXXXXXXXXXXX-3").status_code == 400
    missing = api.get("query")
    assert missing.json()[0] == {
        "message": "SOQL statements cannot be empty or null",
        "errorCode": "MALFORMED_QUERY",
    }


def test_upsert_with_several_matches_answers_300() -> None:
    from sf_sandbox_helpers import in_process_client

    from omsbridge_salesforce_sandbox import SalesforceSandbox, custom_field

    legacy = custom_field("Legacy_Id__c", external_id=True, unique=False)
    sandbox = SalesforceSandbox(custom_fields={"Account": [legacy]})
    api = Api(in_process_client(sandbox), sandbox)
    for name in ("one", "two"):
        api.create("Account", {"Name": name, "Legacy_Id__c": "L-1"})
    response = api.patch("sobjects/Account/Legacy_Id__c/L-1", {"Name": "x"})
    assert response.status_code == 300
    assert [u.split("/")[-2] for u in response.json()] == ["Account", "Account"]
    sandbox.close()
