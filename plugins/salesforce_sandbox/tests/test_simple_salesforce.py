"""An unmodified simple-salesforce works against the sandbox (served over TLS: it always
builds ``https://`` URLs from ``instance_url``)."""

from __future__ import annotations

import pytest
import requests
from sf_sandbox_helpers import order_graph
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from omsbridge_salesforce_sandbox import SandboxServer


@pytest.fixture
def sf(sf_sandbox_demo: SandboxServer) -> Salesforce:
    token = sf_sandbox_demo.token()
    session = requests.Session()
    session.trust_env = False  # a CA bundle from the environment would override `verify`
    session.verify = sf_sandbox_demo.cert_file
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=session,
        version="62.0",
    )


pytestmark = pytest.mark.sf_sandbox(tls=True, query_page_size=3)


def test_query_and_query_all_across_pages(sf: Salesforce, sf_sandbox_demo: SandboxServer) -> None:
    assert sf_sandbox_demo.url.startswith("https://127.0.0.1:")
    first = sf.query("SELECT Id, StockKeepingUnit FROM Product2 ORDER BY StockKeepingUnit")
    assert first["done"] is False and len(first["records"]) == 3
    everything = sf.query_all("SELECT Id, StockKeepingUnit FROM Product2 ORDER BY StockKeepingUnit")
    assert everything["totalSize"] == 7 and len(everything["records"]) == 7
    skus = [r["StockKeepingUnit"] for r in everything["records"]]
    assert skus == sorted(skus)
    store = sf.query("SELECT Id, Name FROM Location WHERE warehouseID__c = 'store-001'")
    assert store["records"][0]["Name"] == "Downtown Store"
    assert sf.api_usage["api-usage"].total == 100_000


def test_sobject_create_update_upsert_get(sf: Salesforce) -> None:
    created = sf.Account.create(
        {"FirstName": "Grace", "LastName": "Hopper", "PersonEmail": "grace@example.com"}
    )
    assert created["success"] is True
    assert sf.Account.get(created["id"])["IsPersonAccount"] is True
    assert sf.Account.update(created["id"], {"PersonEmail": "grace.h@example.com"}) == 204
    assert sf.Account.get(created["id"])["PersonEmail"] == "grace.h@example.com"
    assert sf.Account.upsert("POS_Customer_Id__c/G-1", {"Name": "Grace Corp"}) == 201
    assert sf.Account.upsert("POS_Customer_Id__c/G-1", {"Name": "Grace Corp 2"}) == 200
    got = sf.Account.get_by_custom_id("POS_Customer_Id__c", "G-1")
    assert got["Name"] == "Grace Corp 2"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.create({"Name": "x", "Bogus__c": 1})
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001000000000000AAA")
    assert sf.Account.delete(created["id"]) == 204


def test_restful_composite_graph_and_connect_actions(
    sf: Salesforce, sf_sandbox_demo: SandboxServer
) -> None:
    demo = sf_sandbox_demo.sandbox.demo
    graph = order_graph(demo, txn="SS-1", method="ONLINE-DEFAULT")
    result = sf.restful("composite/graph", method="POST", json={"graphs": [graph]})
    assert result["graphs"][0]["isSuccessful"] is True
    order_id = result["graphs"][0]["graphResponse"]["compositeResponse"][0]["body"]["id"]
    summary = sf.query(f"SELECT Id FROM OrderSummary WHERE OriginalOrderId = '{order_id}'")
    summary_id = summary["records"][0]["Id"]
    items = sf.query(
        "SELECT Id FROM OrderItemSummary WHERE TypeCode = 'Product' AND "
        f"OrderSummaryId = '{summary_id}' ORDER BY LineNumber"
    )["records"]
    cancel = sf.restful(
        f"commerce/order-management/order-summaries/{summary_id}/actions/submit-cancel",
        method="POST",
        json={
            "changeItems": [
                {
                    "orderItemSummaryId": items[0]["Id"],
                    "quantity": 1,
                    "reason": "Wrong Item",
                    "shippingReductionFlag": False,
                }
            ]
        },
    )
    assert cancel["success"] is True and cancel["changeOrderId"].startswith("801")
    fo_id = demo["orders"][0]["fulfillment_order_id"]
    assert sf.FulfillmentOrder.update(fo_id, {"Status": "Pickpack"}) == 204
    assert sf.FulfillmentOrder.get(fo_id)["StatusCategory"] == "FULFILLING"
