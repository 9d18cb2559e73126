"""Ids, the store's transactions and persistence, the fixtures and in-process use."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from omsbridge_salesforce_sandbox import (
    SalesforceSandbox,
    SandboxServer,
    custom_field,
    ids,
    serve,
)
from omsbridge_salesforce_sandbox.schema import default_schema
from omsbridge_salesforce_sandbox.store import Store

REAL_IDS = [
    "001R00000064wdtIAA",
    "0a3xx0000000085AAA",
    "801R0000000EAAkIAO",
    "0015500001QdQWaAAN",
    "0037e00001WZ30qAAD",
    "0039H00000BbbFBQAZ",
    "0067e00000K8i71AAB",
    "a00E0000004D5lsIAC",
]


@pytest.mark.parametrize("real", REAL_IDS)
def test_checksum_matches_real_ids(real: str) -> None:
    assert ids.to18(real[:15]) == real
    assert ids.is_valid(real) and ids.is_valid(real[:15])
    assert ids.normalize(real[:15]) == real


def test_generated_ids_and_validation() -> None:
    generated = ids.make_id("1Os", 123_456)
    assert len(generated) == 18 and generated.startswith("1Os")
    assert ids.to18(generated[:15]) == generated
    assert not ids.is_valid("001R00000064wdtIAB")  # wrong checksum
    assert not ids.is_valid("abc") and not ids.is_valid(None)
    assert ids.normalize("nope") is None
    with pytest.raises(ValueError):
        ids.to18("bad")
    with pytest.raises(ValueError):
        ids.make_id("01", 1)


def test_key_prefixes_are_unique_and_known_ones_match() -> None:
    schema = default_schema()
    prefixes = {t.name: t.key_prefix for t in schema.types()}
    assert len(set(prefixes.values())) == len(prefixes)
    assert {
        k: prefixes[k]
        for k in (
            "Account",
            "Order",
            "OrderItem",
            "OrderSummary",
            "OrderItemSummary",
            "FulfillmentOrder",
            "Location",
            "Product2",
            "Pricebook2",
            "PricebookEntry",
        )
    } == {
        "Account": "001",
        "Order": "801",
        "OrderItem": "802",
        "OrderSummary": "1Os",
        "OrderItemSummary": "10u",
        "FulfillmentOrder": "0a3",
        "Location": "131",
        "Product2": "01t",
        "Pricebook2": "01s",
        "PricebookEntry": "01u",
    }


def test_store_nested_transactions_roll_back(tmp_path: Path) -> None:
    schema = default_schema()
    store = Store(schema, tmp_path / "s.sqlite")
    fired: list[str] = []
    with store.transaction():
        rec_id = store.new_id("Account")
        store.insert("Account", {"Id": rec_id, "Name": "kept", "Amount": Decimal("1.50")})
        with pytest.raises(RuntimeError), store.transaction():
            store.update("Account", rec_id, {"Name": "inner"})
            store.after_commit(lambda: fired.append("inner"))
            raise RuntimeError("inner fails")
        store.after_commit(lambda: fired.append("outer"))
        assert store.get("Account", rec_id)["Name"] == "kept"  # type: ignore[index]
    assert fired == ["outer"]
    with pytest.raises(RuntimeError), store.transaction():
        other = store.new_id("Account")
        store.insert("Account", {"Id": other, "Name": "gone"})
        raise RuntimeError
    assert store.get("Account", other) is None
    reopened = Store(schema, tmp_path / "s.sqlite")
    record = reopened.get("Account", rec_id)
    assert record == {"Id": rec_id, "Name": "kept", "Amount": Decimal("1.50")}
    assert reopened.new_id("Account") == store.new_id("Account")  # counters persisted


def test_custom_fields_option() -> None:
    loyalty = custom_field("Loyalty_Tier__c", "picklist", picklist=("Gold", "Silver"))
    sandbox = SalesforceSandbox(custom_fields={"Account": [loyalty]})
    client = httpx.Client(
        transport=httpx.WSGITransport(app=sandbox), base_url="http://sandbox.local"
    )
    token = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.credentials["client_id"],
            "client_secret": sandbox.credentials["client_secret"],
        },
    ).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    ok = client.post(
        "/services/data/v62.0/sobjects/Account", json={"Name": "x", "Loyalty_Tier__c": "Gold"}
    )
    assert ok.status_code == 201
    bad = client.post(
        "/services/data/v62.0/sobjects/Account", json={"Name": "x", "Loyalty_Tier__c": "Bronze"}
    )
    assert bad.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    rows = client.get(
        "/services/data/v62.0/query", params={"q": "SELECT Loyalty_Tier__c FROM Account"}
    ).json()
    assert rows["records"][0]["Loyalty_Tier__c"] == "Gold"
    sandbox.close()


def test_serve_handle_and_loopback_only() -> None:
    with pytest.raises(ValueError):
        serve(host="0.0.0.0")
    with serve() as server:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        assert httpx.get(f"{server.url}/services/data").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/services/data", timeout=1)


def test_sf_sandbox_fixture_is_empty_and_fresh(sf_sandbox: SandboxServer) -> None:
    with sf_sandbox.client() as http:
        rows = http.get(
            "/services/data/v62.0/query", params={"q": "SELECT Name, IsStandard FROM Pricebook2"}
        ).json()
    assert [r["Name"] for r in rows["records"]] == ["Standard Price Book"]
    assert sf_sandbox.sandbox.demo["standard_pricebook_id"]


@pytest.mark.sf_sandbox(query_page_size=1, api_budget=10)
def test_marker_options_reach_the_fixture(sf_sandbox_demo: SandboxServer) -> None:
    assert sf_sandbox_demo.sandbox.options.query_page_size == 1
    assert sf_sandbox_demo.sandbox.usage.maximum == 10


def test_in_process_app_fixture(sf_sandbox_app: SalesforceSandbox) -> None:
    client = httpx.Client(
        transport=httpx.WSGITransport(app=sf_sandbox_app), base_url="http://sandbox.local"
    )
    body = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": sf_sandbox_app.credentials["client_id"],
            "client_secret": sf_sandbox_app.credentials["client_secret"],
            "username": sf_sandbox_app.credentials["username"],
            "password": sf_sandbox_app.credentials["password"],
        },
    ).json()
    assert body["instance_url"] == "http://sandbox.local"
    sf_sandbox_app.reset("demo")
    assert sf_sandbox_app.demo["orders"]


def test_internal_errors_answer_500_and_are_recorded() -> None:
    sandbox = SalesforceSandbox()
    client = httpx.Client(
        transport=httpx.WSGITransport(app=sandbox), base_url="http://sandbox.local"
    )

    def explode(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")

    sandbox.rest.dispatch = explode  # type: ignore[method-assign]
    token = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.credentials["client_id"],
            "client_secret": sandbox.credentials["client_secret"],
        },
    ).json()["access_token"]
    response = client.get(
        "/services/data/v62.0/limits", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 500
    assert response.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert "KeyError" in sandbox.internal_errors[0]
    sandbox.close()
