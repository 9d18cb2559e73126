"""The sandbox held to Salesforce's reference: generated schema, strictness, profiles, describe,
Connect bodies and keep-alive.

Expectations come from the reference data in ``plugins/salesforce_sandbox/reference/`` (read
here directly), not from what a client happens to send.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sf_sandbox_helpers import Api, in_process_client, node, order_graph, post_graph, sale

from omsbridge_salesforce_sandbox import SalesforceSandbox, SandboxServer
from omsbridge_salesforce_sandbox.profiles import FO_STATUS_DEFAULTS

PLUGIN = Path(__file__).resolve().parents[1]
REFERENCE = PLUGIN / "reference"
OS = "commerce/order-management/order-summaries"
FO = "commerce/fulfillment/fulfillment-orders"


def _reference(obj: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REFERENCE / f"{obj}.json").read_text("utf-8"))
    return data


def _org(profile: str, seed: str = "demo") -> Iterator[Api]:
    sandbox = SalesforceSandbox(seed=seed, org_profile=profile)
    http = in_process_client(sandbox)
    try:
        yield Api(http, sandbox)
    finally:
        http.close()
        sandbox.close()
    assert not sandbox.internal_errors, sandbox.internal_errors[0]


@pytest.fixture
def som() -> Iterator[Api]:
    yield from _org("som")


@pytest.fixture
def minimal() -> Iterator[Api]:
    yield from _org("som-minimal")


@pytest.fixture
def unprepared() -> Iterator[Api]:
    yield from _org("som-unprepared")


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1, body
    first: dict[str, Any] = body[0]
    return first


# --- generation ------------------------------------------------------------------------------


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "generate_schema", PLUGIN / "scripts" / "generate_schema.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_not_stale() -> None:
    gen = _generator()
    # Regenerated in memory from the reference, the setup package and the overlay.
    assert gen.OUTPUT.read_text("utf-8") == gen.render(gen.generate()), (
        "data/schema.json is stale: run plugins/salesforce_sandbox/scripts/generate_schema.py"
    )
    assert gen.CONNECT_OUTPUT.read_text("utf-8") == gen.render_connect(gen.generate_connect()), (
        "data/connect.json is stale: run plugins/salesforce_sandbox/scripts/generate_schema.py"
    )


def test_staleness_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _generator()
    stale = tmp_path / "schema.json"
    stale.write_text(gen.OUTPUT.read_text("utf-8").replace('"Order Number"', '"Order No"'))
    monkeypatch.setattr(gen, "OUTPUT", stale)
    assert gen.main(["--check"]) == 1


def test_every_reference_field_is_generated_with_its_properties() -> None:
    gen = _generator()
    objects = {o["name"]: o for o in gen.generate()["objects"]}
    for path in sorted(REFERENCE.glob("*.json")):
        ref = json.loads(path.read_text("utf-8"))
        fields = {f["name"]: f for f in objects[ref["object"]]["fields"]}
        for name, raw in ref["fields"].items():
            got = fields[name]
            assert got["type"] == raw["type"], (ref["object"], name)
            if raw["type"] == "picklist":
                assert got.get("picklist") == raw["picklist"], (ref["object"], name)
                assert got["restricted"] is bool(raw["restricted"]), (ref["object"], name)
            assert got.get("createable", True) is not False or raw["createable"] is False
            assert (got.get("updateable", True) is False) == (raw["updateable"] is False)
            if raw.get("length"):
                assert got["length"] == raw["length"], (ref["object"], name)


def test_setup_package_fields_come_from_the_sfdx_source() -> None:
    schema = SalesforceSandbox(org_profile="som").schema
    order_txn = schema.get("Order").field("POS_Transaction_Id__c")  # type: ignore[union-attr]
    assert order_txn is not None
    assert (order_txn.external_id, order_txn.unique, order_txn.case_sensitive) == (
        True,
        True,
        True,
    )
    store = schema.get("Location").field("POS_Store_Id__c")  # type: ignore[union-attr]
    assert store is not None and store.unique and not store.case_sensitive
    line = schema.get("OrderItem").field("POS_Line_Id__c")  # type: ignore[union-attr]
    assert line is not None and line.external_id and not line.unique
    received = schema.get("FulfillmentOrderLineItem").field("POS_Quantity_Received__c")  # type: ignore[union-attr]
    assert received is not None and (received.type, received.precision, received.scale) == (
        "double",
        18,
        2,
    )


# --- INVALID_FIELD --------------------------------------------------------------------------

#: Fields a client might send that the reference does not list (and Salesforce refuses).
UNKNOWN = [
    ("Order", "OrderLifeCycleType"),
    ("FulfillmentOrderLineItem", "QuantityCanceled"),
    ("Shipment", "ShipmentDate"),
]


@pytest.mark.parametrize(("obj", "field"), UNKNOWN)
def test_soql_refuses_fields_the_org_does_not_have(som: Api, obj: str, field: str) -> None:
    assert field not in _reference(obj)["fields"]
    for soql in (
        f"SELECT Id, {field} FROM {obj}",
        f"SELECT Id FROM {obj} WHERE {field} = null",
        f"SELECT Id FROM {obj} ORDER BY {field}",
    ):
        error = _error(som.get("query", params={"q": soql}))
        assert error["errorCode"] == "INVALID_FIELD"
        assert f"No such column '{field}' on entity '{obj}'" in error["message"]


def test_dml_refuses_fields_the_org_does_not_have(som: Api) -> None:
    demo = som.sandbox.demo
    order = {
        "AccountId": demo["accounts"]["DEMO-en_US-US"],
        "EffectiveDate": "2026-01-05",
        "Status": "Draft",
        "OrderLifeCycleType": "MANAGED",
    }
    expected = {
        "message": "No such column 'OrderLifeCycleType' on sobject of type Order",
        "errorCode": "INVALID_FIELD",
    }
    assert _error(som.post("sobjects/Order", order)) == expected
    order_id = som.create("Order", {k: v for k, v in order.items() if k != "OrderLifeCycleType"})
    assert _error(som.patch(f"sobjects/Order/{order_id}", {"OrderLifeCycleType": "X"})) == expected
    upsert = som.patch("sobjects/Order/POS_Transaction_Id__c/T-9", order)
    assert _error(upsert) == expected
    fo_id = demo["orders"][0]["fulfillment_order_id"]
    shipment = {"ShipToName": "Ann", "FulfillmentOrderId": fo_id, "ShipmentDate": "2026-01-05"}
    assert _error(som.post("sobjects/Shipment", shipment))["errorCode"] == "INVALID_FIELD"
    graph = order_graph(demo, txn="G-1", lifecycle="MANAGED")
    result = post_graph(som, graph)
    assert result["graphs"][0]["isSuccessful"] is False
    assert node(result, 0, "refOrder")["body"][0] == expected


def test_restricted_picklists_and_read_only_fields_follow_the_reference(som: Api) -> None:
    payment_status = _reference("Payment")["fields"]["Status"]
    assert payment_status["restricted"] is True and "Pending" not in payment_status["picklist"]
    body = {"Amount": 1, "ProcessingMode": "External", "Status": "Pending", "Type": "Sale"}
    assert _error(som.post("sobjects/Payment", body)) == {
        "message": "Status: bad value for restricted picklist field: Pending",
        "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "fields": ["Status"],
    }
    category = _reference("FulfillmentOrder")["fields"]["StatusCategory"]
    assert category["updateable"] is False
    fo_id = som.sandbox.demo["orders"][0]["fulfillment_order_id"]
    refused = _error(som.patch(f"sobjects/FulfillmentOrder/{fo_id}", {"StatusCategory": "CLOSED"}))
    assert refused["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert refused["fields"] == ["StatusCategory"]
    # Picklists carry API values: the FO's category is one of the reference's upper-case ones.
    fo = som.record("FulfillmentOrder", fo_id)
    assert fo["StatusCategory"] in category["picklist"] and fo["StatusCategory"].isupper()


def test_case_sensitive_unique_external_ids(som: Api) -> None:
    upper = sale(som, txn="POS-7F3A-ABC")
    lower = sale(som, txn="POS-7f3a-abc")  # differs by case only: a different value
    assert upper["order_id"] != lower["order_id"]
    again = post_graph(som, order_graph(som.sandbox.demo, txn="POS-7f3a-abc"))
    error = node(again, 0, "refOrder")["body"][0]
    assert error["errorCode"] == "DUPLICATE_VALUE" and lower["order_id"] in error["message"]
    # A case-insensitive unique field (Location.POS_Store_Id__c) collides across case.
    body = {"Name": "A", "LocationType": "Store", "POS_Store_Id__c": "Store-9"}
    som.create("Location", body)
    dup = som.post("sobjects/Location", {**body, "POS_Store_Id__c": "STORE-9"})
    assert _error(dup)["errorCode"] == "DUPLICATE_VALUE"


# --- profiles ------------------------------------------------------------------------------


def test_som_minimal_has_no_currency_iso_code(minimal: Api, som: Api) -> None:
    assert som.rows("SELECT Id, CurrencyIsoCode FROM Order LIMIT 1")[0]["CurrencyIsoCode"] == "USD"
    error = _error(minimal.get("query", params={"q": "SELECT Id, CurrencyIsoCode FROM Order"}))
    assert error["errorCode"] == "INVALID_FIELD"
    account = minimal.sandbox.demo["accounts"]["DEMO-en_US-US"]
    create = minimal.post(
        "sobjects/Order",
        {
            "AccountId": account,
            "EffectiveDate": "2026-01-05",
            "Status": "Draft",
            "CurrencyIsoCode": "USD",
        },
    )
    assert _error(create) == {
        "message": "No such column 'CurrencyIsoCode' on sobject of type Order",
        "errorCode": "INVALID_FIELD",
    }
    assert all(t.field("CurrencyIsoCode") is None for t in minimal.sandbox.schema.types())
    # No Person Accounts either.
    person = minimal.post("sobjects/Account", {"LastName": "Doe"})
    assert _error(person)["errorCode"] == "INVALID_FIELD"


def test_som_minimal_picklists_are_salesforce_defaults(minimal: Api, som: Api) -> None:
    def values(api: Api, obj: str, field: str) -> list[str]:
        described = api.get(f"sobjects/{obj}/describe").json()
        found = next(f for f in described["fields"] if f["name"] == field)
        return [v["value"] for v in found["picklistValues"]]

    assert values(minimal, "OrderItemSummaryChange", "Reason") == ["Unknown"]
    assert values(som, "OrderItemSummaryChange", "Reason") == [
        "Unknown",
        "Damaged",
        "Defective",
        "Wrong Item",
        "Changed Mind",
        "Other",
    ]
    reference_defaults = _reference("FulfillmentOrder")["fields"]["Status"]["picklist"]
    assert values(minimal, "FulfillmentOrder", "Status") == reference_defaults
    assert list(FO_STATUS_DEFAULTS) == reference_defaults


def test_som_minimal_reason_must_be_a_picklist_value(minimal: Api) -> None:
    summary = _connect_summary(minimal, "R-1")
    item = minimal.rows(
        f"SELECT Id FROM OrderItemSummary WHERE OrderSummaryId = '{summary}' AND TypeCode = "
        "'Product' ORDER BY LineNumber"
    )[0]["Id"]

    def cancel(reason: str) -> httpx.Response:
        change = {
            "orderItemSummaryId": item,
            "quantity": 1,
            "reason": reason,
            "shippingReductionFlag": False,
        }
        return minimal.post(f"{OS}/{summary}/actions/submit-cancel", {"changeItems": [change]})

    refused = _error(cancel("Damaged"))
    assert refused["errorCode"] == "INVALID_API_INPUT" and "Reason" in refused["message"]
    assert cancel("Unknown").status_code == 201
    change = minimal.rows(
        f"SELECT Reason, ChangeType FROM OrderItemSummaryChange WHERE OrderItemSummaryId = '{item}'"
    )
    assert [(c["Reason"], c["ChangeType"]) for c in change] == [("Unknown", "Cancel")]


def _connect_summary(api: Api, txn: str, **kwargs: Any) -> str:
    order = sale(api, txn=txn, **kwargs)
    assert order["summary_id"] is None  # no flow in this org
    created = api.post(
        OS,
        {
            "orderId": order["order_id"],
            "orderLifeCycleType": "MANAGED",
            "externalReferenceIdentifier": txn,
        },
    )
    assert created.status_code == 201, created.text
    summary_id: str = created.json()["orderSummaryId"]
    return summary_id


def test_som_minimal_no_flow_connect_creates_the_summary(minimal: Api) -> None:
    order = sale(minimal, txn="POS-abc")
    assert order["summary_id"] is None
    assert minimal.rows("SELECT Id FROM OrderSummary WHERE OriginalOrder.Id != null") != []
    body = {
        "orderId": order["order_id"],
        "orderLifeCycleType": "MANAGED",
        "externalReferenceIdentifier": "POS-abc",
    }
    created = minimal.post(OS, body)
    assert created.status_code == 201
    assert set(created.json()) == {"orderSummaryId", "success", "errors"}
    summary = minimal.record("OrderSummary", created.json()["orderSummaryId"])
    assert summary["OrderLifeCycleType"] == "MANAGED"
    assert summary["ExternalReferenceIdentifier"] == "POS-abc"
    assert summary["POS_Transaction_Id__c"] == "POS-abc"  # copied: same API name
    # Take-with lines are not fulfilled without the flow: nothing to return yet.
    items = minimal.rows(
        "SELECT Id, QuantityFulfilled, QuantityAvailableToReturn, OrderDeliveryGroupSummaryId "
        f"FROM OrderItemSummary WHERE OrderSummaryId = '{summary['Id']}' AND TypeCode = 'Product'"
    )
    assert all(i["QuantityFulfilled"] == 0 and i["QuantityAvailableToReturn"] == 0 for i in items)
    # externalReferenceIdentifier is a case-sensitive duplicate guard.
    second = sale(minimal, txn="POS-ABC")
    dup = minimal.post(OS, {**body, "orderId": second["order_id"]})
    assert _error(dup)["errorCode"] == "DUPLICATE_VALUE"
    other_case = minimal.post(
        OS, {**body, "orderId": second["order_id"], "externalReferenceIdentifier": "POS-ABC"}
    )
    assert other_case.status_code == 201
    # The connector's take-with FO at the store's Location, fulfilled: lines become returnable.
    store = minimal.sandbox.demo["locations"]["store-001"]
    fo = minimal.post(
        FO,
        {
            "orderSummaryId": summary["Id"],
            "orderDeliveryGroupSummaryId": items[0]["OrderDeliveryGroupSummaryId"],
            "fulfillmentGroups": [
                {
                    "fulfilledFromLocationId": store,
                    "fulfillmentType": "Retail Store",
                    "orderItemSummaries": [
                        {"orderItemSummaryId": i["Id"], "quantity": 1} for i in items
                    ],
                }
            ],
        },
    )
    assert fo.status_code == 201, fo.text
    assert set(fo.json()) == {"fulfillmentOrderIds", "success", "errors"}
    fo_id = fo.json()["fulfillmentOrderIds"][0]
    assert minimal.record("FulfillmentOrder", fo_id)["FulfilledFromLocationId"] == store
    assert (
        minimal.patch(f"sobjects/FulfillmentOrder/{fo_id}", {"Status": "Fulfilled"}).status_code
        == 204
    )
    assert minimal.record("FulfillmentOrder", fo_id)["StatusCategory"] == "CLOSED"
    after = minimal.record("OrderItemSummary", items[0]["Id"])
    assert after["QuantityFulfilled"] == 1 and after["QuantityAvailableToReturn"] == 1


def test_som_flow_creates_the_summary_and_fulfils_take_with(som: Api) -> None:
    order = sale(som, txn="F-1")
    assert order["summary_id"] is not None
    line = som.record("OrderItemSummary", order["items"][0]["Id"])
    assert line["QuantityAvailableToReturn"] == line["QuantityOrdered"]


def test_som_unprepared_has_no_custom_fields(unprepared: Api) -> None:
    error = _error(
        unprepared.get("query", params={"q": "SELECT Id, POS_Transaction_Id__c FROM Order"})
    )
    assert error["errorCode"] == "INVALID_FIELD"
    assert all(not f.custom for t in unprepared.sandbox.schema.types() for f in t.fields.values())


@pytest.mark.parametrize("profile", ["som", "som-minimal", "som-unprepared"])
def test_info_gives_profile_and_merchant_settings(profile: str) -> None:
    sandbox = SalesforceSandbox(org_profile=profile)
    info = sandbox.info("http://127.0.0.1:9")
    assert info["org_profile"] == profile
    settings, env = info["merchant_settings"], info["environment"]
    flow = profile == "som"
    assert settings["order_summary_creation"] == ("flow" if flow else "connect")
    assert settings["take_with_fulfillment"] == ("flow" if flow else "connector")
    assert settings["multi_currency"] is flow
    assert ("change_reasons" in settings) is flow
    assert settings["password"] == {"env": "SF_SANDBOX_PASSWORD"}
    assert env["SF_SANDBOX_PASSWORD"] == sandbox.credentials["password"]
    assert sandbox.credentials["password"] not in json.dumps(settings)  # secrets by reference
    statuses = set(settings["fulfillment_statuses"].values())
    assert statuses <= set(sandbox.schema.get("FulfillmentOrder").field("Status").picklist)  # type: ignore[union-attr,arg-type]
    if flow:
        reasons = sandbox.schema.get("OrderItemSummaryChange").field("Reason").picklist  # type: ignore[union-attr]
        assert set(settings["change_reasons"].values()) <= set(reasons or ())
    sandbox.close()


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown org profile 'som-max'; expected one of som"):
        SalesforceSandbox(org_profile="som-max")


def test_state_file_remembers_its_profile(tmp_path: Path) -> None:
    state = str(tmp_path / "org.sqlite")
    SalesforceSandbox(org_profile="som-minimal", state_path=state).close()
    with pytest.raises(ValueError, match="som-minimal"):
        SalesforceSandbox(org_profile="som", state_path=state)


# --- Connect bodies ---------------------------------------------------------------------------


def test_connect_refuses_undocumented_body_keys(som: Api) -> None:
    order = sale(som, txn="K-1", method="ONLINE-DEFAULT")
    summary, item = order["summary_id"], order["items"][0]["Id"]
    unknown_top = som.post(OS, {"orderId": order["order_id"], "lifecycle": "MANAGED"})
    assert _error(unknown_top) == {
        "errorCode": "JSON_PARSER_ERROR",
        "message": 'Unrecognized field "lifecycle"',
    }
    change = {"orderItemSummaryId": item, "quantity": 1, "reason": "Unknown"}
    change["shippingReductionFlag"] = False
    nested = som.post(
        f"{OS}/{summary}/actions/preview-cancel",
        {"changeItems": [{**change, "reasonText": "x"}]},
    )
    assert _error(nested)["message"] == 'Unrecognized field "reasonText"'
    # reasonForChangeText is documented since API 59.0.
    with_text = {"changeItems": [{**change, "reasonForChangeText": "too small"}]}
    old = som.post(f"/services/data/v58.0/{OS}/{summary}/actions/preview-cancel", json=with_text)
    assert _error(old)["message"] == 'Unrecognized field "reasonForChangeText"'
    new = som.post(f"{OS}/{summary}/actions/submit-cancel", with_text)
    assert new.status_code == 201
    documented = json.loads((REFERENCE / "connect" / "submit-cancel.json").read_text("utf-8"))
    assert set(new.json()) <= set(documented["response"]["2xx"]["properties"])
    text = som.rows(
        f"SELECT ReasonText FROM OrderItemSummaryChange WHERE OrderItemSummaryId = '{item}'"
    )
    assert text == [{**text[0], "ReasonText": "too small"}]


# --- describe ---------------------------------------------------------------------------------

GLOBAL_KEYS = {
    "activateable", "associateEntityType", "associateParentEntity", "createable", "custom",
    "customSetting", "deepCloneable", "deletable", "deprecatedAndHidden", "feedEnabled",
    "hasSubtypes", "isInterface", "isSubtype", "keyPrefix", "label", "labelPlural",
    "layoutable", "mergeable", "mruEnabled", "name", "queryable", "replicateable",
    "retrieveable", "searchable", "triggerable", "undeletable", "updateable", "urls",
}  # fmt: skip
FIELD_KEYS = {
    "name", "type", "label", "length", "picklistValues", "restrictedPicklist", "createable",
    "updateable", "nillable", "externalId", "unique", "caseSensitive", "referenceTo",
    "relationshipName", "custom", "precision", "scale", "digits", "defaultedOnCreate",
    "idLookup", "nameField", "soapType", "filterable", "sortable", "calculated", "autoNumber",
}  # fmt: skip


def test_describe_global_and_sobject_shapes(som: Api) -> None:
    glob = som.get("sobjects").json()
    assert glob["encoding"] == "UTF-8" and glob["maxBatchSize"] == 200
    names = {o["name"] for o in glob["sobjects"]}
    assert names == {t.name for t in som.sandbox.schema.types()}
    assert all(set(o) == GLOBAL_KEYS for o in glob["sobjects"])
    described = som.get("sobjects/FulfillmentOrder/describe").json()
    assert set(described) >= GLOBAL_KEYS | {"fields", "childRelationships", "recordTypeInfos"}
    fields = {f["name"]: f for f in described["fields"]}
    assert set(fields) == set(som.sandbox.schema.get("FulfillmentOrder").fields)  # type: ignore[union-attr]
    assert all(set(f) >= FIELD_KEYS for f in fields.values())
    category = fields["StatusCategory"]
    reference = _reference("FulfillmentOrder")["fields"]["StatusCategory"]
    assert category["restrictedPicklist"] is True and category["updateable"] is False
    assert [v["value"] for v in category["picklistValues"]] == reference["picklist"]
    assert set(category["picklistValues"][0]) == {
        "value",
        "label",
        "active",
        "defaultValue",
        "validFor",
    }
    assert fields["FulfillmentOrderNumber"]["nameField"] is True
    assert fields["OrderSummaryId"]["referenceTo"] == ["OrderSummary"]
    assert fields["OrderSummaryId"]["relationshipName"] == "OrderSummary"
    txn = {f["name"]: f for f in som.get("sobjects/Order/describe").json()["fields"]}[
        "POS_Transaction_Id__c"
    ]
    assert (txn["externalId"], txn["unique"], txn["caseSensitive"], txn["custom"]) == (
        True,
        True,
        True,
        True,
    )
    children = {c["relationshipName"] for c in described["childRelationships"]}
    assert "FulfillmentOrderLineItems" in children


# --- keep-alive -------------------------------------------------------------------------------


def test_two_requests_on_one_connection(sf_sandbox: SandboxServer) -> None:
    token = sf_sandbox.token()["access_token"]
    connection = http.client.HTTPConnection("127.0.0.1", sf_sandbox.port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        connection.request("GET", "/services/data/v62.0/limits", headers=headers)
        first = connection.getresponse()
        first.read()
        sock = connection.sock
        assert first.status == 200 and first.getheader("Connection") != "close"
        # A request whose body the server does not read must not break the connection.
        connection.request("POST", "/nowhere", body=b'{"x": 1}', headers=headers)
        missing = connection.getresponse()
        missing.read()
        assert missing.status == 404
        connection.request("GET", "/services/data/v62.0/sobjects", headers=headers)
        second = connection.getresponse()
        assert second.status == 200 and json.loads(second.read())["sobjects"]
        assert connection.sock is sock  # the same TCP connection served all three
    finally:
        connection.close()


# --- CLI ----------------------------------------------------------------------------------------


def test_fixture_factory_serves_each_profile(sf_sandbox_factory: Any) -> None:
    for profile in ("som-minimal", "som-unprepared"):
        server = sf_sandbox_factory(org_profile=profile)
        info = httpx.get(f"{server.url}/__sandbox__/info").json()
        assert info["org_profile"] == profile
        assert info["merchant_settings"]["url_base"] == server.url


def test_status_outside_the_orgs_values_keeps_the_category(minimal: Api) -> None:
    status = _reference("FulfillmentOrder")["fields"]["Status"]
    assert status["restricted"] is False and "Handed Over" not in status["picklist"]
    fo_id = minimal.sandbox.demo["orders"][0]["fulfillment_order_id"]
    assert minimal.record("FulfillmentOrder", fo_id)["StatusCategory"] == "ACTIVATED"
    assert (
        minimal.patch(f"sobjects/FulfillmentOrder/{fo_id}", {"Status": "Handed Over"}).status_code
        == 204
    )
    fo = minimal.record("FulfillmentOrder", fo_id)
    assert (fo["Status"], fo["StatusCategory"]) == ("Handed Over", "ACTIVATED")


def test_connect_requires_documented_inputs_and_values(som: Api) -> None:
    order = sale(som, txn="Q-1", method="ONLINE-DEFAULT")
    summary, item = order["summary_id"], order["items"][0]["Id"]
    spec = json.loads((REFERENCE / "connect" / "create-return-order.json").read_text("utf-8"))
    assert spec["request"]["properties"]["status"]["required"] is True
    line = {"orderItemSummaryId": item, "quantityExpected": 1, "canReduceShipping": False}
    no_status = som.post(
        "commerce/returns/return-orders",
        {
            "orderSummaryId": summary,
            "returnOrderLifeCycleType": "Managed",
            "returnOrderLineItems": [line],
        },
    )
    error = _error(no_status)
    assert (error["errorCode"], error["message"]) == (
        "INVALID_API_INPUT",
        "Missing required input: status",
    )
    assert error["output"] == {
        "returnOrderId": None,
        "success": False,
        "errors": [{"errorCode": "INVALID_API_INPUT", "message": "Missing required input: status"}],
    }
    lowercase = som.post(OS, {"orderId": order["order_id"], "orderLifeCycleType": "managed"})
    assert _error(lowercase)["message"] == "Invalid orderLifeCycleType: managed"
    change = {"orderItemSummaryId": item, "quantity": 1, "reason": "Unknown"}
    nested = som.post(f"{OS}/{summary}/actions/preview-cancel", {"changeItems": [change]})
    assert _error(nested)["message"] == "Missing required input: changeItems.shippingReductionFlag"


def test_fields_exist_from_their_api_version(som: Api) -> None:
    raw = _reference("Order")["fields"]["ExternalCustomerReference"]
    assert raw["since"] == "66.0"
    soql = "SELECT Id, ExternalCustomerReference FROM Order LIMIT 1"
    old = som.get("/services/data/v62.0/query", params={"q": soql})
    assert _error(old)["errorCode"] == "INVALID_FIELD"
    assert som.get("/services/data/v66.0/query", params={"q": soql}).status_code == 200
    names_62 = {f["name"] for f in som.get("sobjects/Order/describe").json()["fields"]}
    names_66 = {
        f["name"] for f in som.get("/services/data/v66.0/sobjects/Order/describe").json()["fields"]
    }
    assert names_66 - names_62 == {"ExternalCustomerReference"}
    order_id = som.sandbox.demo["orders"][0]["order_id"]
    write = som.patch(f"sobjects/Order/{order_id}", {"ExternalCustomerReference": "x"})
    assert _error(write)["errorCode"] == "INVALID_FIELD"
    assert "ExternalCustomerReference" not in som.record("Order", order_id)


# --- module structure ---------------------------------------------------------------------------


def test_sandbox_modules_import_one_way() -> None:
    """No import cycle (type-only imports included) and only entry points import the app."""
    import ast

    package = PLUGIN / "src" / "omsbridge_salesforce_sandbox"
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        deps: set[str] = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.level == 1:
                if n.module:
                    deps.add(n.module.split(".")[0])
                else:
                    deps.update(alias.name for alias in n.names)
        graph[path.stem] = deps
    importers_of_app = {m for m, deps in graph.items() if "app" in deps}
    assert importers_of_app <= {"__init__", "cli", "server", "pytest_plugin"}
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, " -> ".join((*trail, module))
        if module in done:
            return
        for dep in graph.get(module, ()):
            visit(dep, (*trail, module))
        done.add(module)

    for module in graph:
        visit(module, ())
