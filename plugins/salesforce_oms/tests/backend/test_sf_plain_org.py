"""The backend on a plain Order Management org (no flow, one currency, default picklists) with
its default settings: the summary through Connect, take-with lines fulfilled by the connector,
reasons mapped to the org's picklist. Every step resumes after a lost answer."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
from sf_backend_helpers import line, return_txn, sale
from sf_capture import STORE_FIELD, Capture, plain_backend, plain_org

from omsbridge import TransientBackendError
from omsbridge_salesforce.backend import SalesforceBackend

D = Decimal
SUMMARY = "/commerce/order-management/order-summaries"
FOS = "/commerce/fulfillment/fulfillment-orders"


@pytest.fixture
def org() -> Iterator[Any]:
    server = plain_org()
    yield server
    server.stop()
    assert not server.sandbox.internal_errors, server.sandbox.internal_errors[0]


@pytest.fixture
def capture() -> Capture:
    return Capture()


@pytest.fixture
def backend(org: Any, capture: Capture) -> Iterator[SalesforceBackend]:
    b = plain_backend(org.url, capture)
    yield b
    b.close()


_SOM = {"multi_currency": True, "person_accounts": True, "fulfillment_statuses": {}}
"""What the som org needs beyond a plain org's settings (its own statuses are the defaults)."""


def _rows(org: Any, sobject: str, **where: Any) -> list[dict[str, Any]]:
    return list(org.sandbox.store.where(sobject, **where))


def _take_with_sale(txn_id: str = "T-1") -> Any:
    return sale([line(1, "TEE-BLK-M", "2", "25.00")], txn_id=txn_id)


def test_sale_creates_its_summary_and_fulfils_take_with_lines(
    backend: SalesforceBackend, org: Any, capture: Capture
) -> None:
    result = backend.post(_take_with_sale())
    assert result.created
    (order,) = _rows(org, "Order", POS_Transaction_Id__c="T-1")
    (graph,) = capture.to("/composite/graph")
    (order_node,) = [
        n for g in graph.body["graphs"] for n in g["compositeRequest"] if n["referenceId"] == "ord"
    ]
    assert "OrderLifeCycleType" not in order_node["body"]
    (create,) = capture.to(SUMMARY)
    assert create.body == {
        "orderId": order["Id"],
        "orderLifeCycleType": "MANAGED",
        "externalReferenceIdentifier": "T-1",
    }
    (summary,) = _rows(org, "OrderSummary", OriginalOrderId=order["Id"])
    assert summary["OrderLifeCycleType"] == "MANAGED"
    assert summary["ExternalReferenceIdentifier"] == "T-1"
    (fo_call,) = capture.to(FOS)
    (group,) = fo_call.body["fulfillmentGroups"]
    store = org.sandbox.demo["locations"]["store-001"]
    assert group["fulfilledFromLocationId"] == store and group["fulfillmentType"] == "Retail Store"
    (fo,) = _rows(org, "FulfillmentOrder", OrderSummaryId=summary["Id"])
    assert fo["Status"] == "Fulfilled" and fo["FulfilledFromLocationId"] == store
    detail = backend.get_order(result.order_id)
    assert detail.line(1).quantity_fulfilled == D(2)
    # Returnable in the store: the return goes through.
    back = backend.post(return_txn("R-1", result.order_id, [(1, "TEE-BLK-M", "1", "25.00")]))
    assert back.created
    assert backend.get_order(result.order_id).line(1).quantity_returned == D(1)


def test_no_take_with_step_for_other_lines(backend: SalesforceBackend, capture: Capture) -> None:
    from sf_backend_helpers import customer, pickup_later

    later = line(1, "TEE-BLK-M", "1", "25.00", fulfillment=pickup_later())
    backend.post(sale([later], customer=customer()))
    assert capture.to(SUMMARY) and not capture.to(FOS)


@pytest.mark.parametrize(
    "lost",
    [
        ("POST", SUMMARY),  # the summary was made, its answer lost
        ("POST", FOS),  # the fulfillment order was made, its answer lost
        ("PATCH", "/sobjects/FulfillmentOrder/"),  # set fulfilled, answer lost
    ],
)
def test_a_lost_answer_is_resumed_without_duplicates(
    backend: SalesforceBackend, org: Any, capture: Capture, lost: tuple[str, str]
) -> None:
    method, path = lost
    capture.lose(lambda s: s.method == method and path in s.path)
    try:
        first = backend.post(_take_with_sale())
    except TransientBackendError:
        first = None  # the export job retries it
    assert capture.lost == 1
    again = backend.post(_take_with_sale())
    assert not again.created
    if first is not None:
        # Recovered in-line: the summary's loss is looked up right away.
        assert method == "POST" and path == SUMMARY
    (order,) = _rows(org, "Order", POS_Transaction_Id__c="T-1")
    (summary,) = _rows(org, "OrderSummary", OriginalOrderId=order["Id"])
    (fo,) = _rows(org, "FulfillmentOrder", OrderSummaryId=summary["Id"])
    assert fo["Status"] == "Fulfilled"
    assert len(capture.to(FOS)) == 1
    # A third post writes nothing (its graph is refused as a duplicate, nothing else is sent).
    before = len(capture.sent)
    assert not backend.post(_take_with_sale()).created
    writes = [s.path for s in capture.sent[before:] if s.method != "GET"]
    assert writes == [capture.to("/composite/graph")[-1].path]


@pytest.fixture
def flow_org() -> Iterator[Any]:
    """An org whose flow makes the summary and fulfils take-with lines on activation (som)."""
    server = plain_org("som")
    yield server
    server.stop()
    assert not server.sandbox.internal_errors, server.sandbox.internal_errors[0]


def test_duplicate_summary_answer_finds_the_existing_one(flow_org: Any, capture: Capture) -> None:
    # An org whose flow made the summary although the config says "connect".
    org = flow_org
    b = plain_backend(org.url, capture, take_with_fulfillment="flow", **_SOM)
    try:
        result = b.post(_take_with_sale())
    finally:
        b.close()
    assert result.created
    assert len(capture.to(SUMMARY)) == 1  # refused as a duplicate; the summary was found
    (order,) = _rows(org, "Order", POS_Transaction_Id__c="T-1")
    assert len(_rows(org, "OrderSummary", OriginalOrderId=order["Id"])) == 1


def test_flow_summary_is_not_created_by_the_connector(flow_org: Any, capture: Capture) -> None:
    b = plain_backend(
        flow_org.url, capture, order_summary_creation="flow", take_with_fulfillment="flow", **_SOM
    )
    try:
        assert b.post(_take_with_sale()).created
    finally:
        b.close()
    # The org's flow made the summary and fulfilled the take-with line: the connector sent
    # neither the Connect summary action nor a fulfillment order.
    assert not capture.to(SUMMARY) and not capture.to(FOS)


def test_store_without_location_is_named(org: Any, capture: Capture) -> None:
    from omsbridge import Rejected

    b = plain_backend(org.url, capture)
    try:
        with pytest.raises(Rejected) as info:
            b.post(attrs.evolve(_take_with_sale("T-9"), store_id="nowhere"))
    finally:
        b.close()
    assert info.value.code == "NO_STORE_LOCATION" and STORE_FIELD in str(info.value)


def test_reasons_are_mapped_and_the_text_kept(
    backend: SalesforceBackend, org: Any, capture: Capture
) -> None:
    result = backend.post(_take_with_sale())
    backend.post(return_txn("R-1", result.order_id, [(1, "TEE-BLK-M", "1", "25.00")]))
    (submit,) = capture.to("/actions/submit-return")
    (item,) = submit.body["changeItems"]
    assert item["reason"] == "Unknown" and item["reasonForChangeText"] == "Wrong Size"


def test_reasons_use_the_mapping_and_old_versions_get_no_text(org: Any, capture: Capture) -> None:
    b = plain_backend(
        org.url, capture, api_version="v58.0", change_reasons={"Wrong Size": "Unknown"}
    )
    try:
        result = b.post(_take_with_sale())
        b.post(return_txn("R-1", result.order_id, [(1, "TEE-BLK-M", "1", "25.00")]))
    finally:
        b.close()
    (submit,) = capture.to("/actions/submit-return")
    assert submit.body["changeItems"][0] == {
        "orderItemSummaryId": submit.body["changeItems"][0]["orderItemSummaryId"],
        "quantity": 1,
        "reason": "Unknown",
        "shippingReductionFlag": False,
    }


def test_single_currency_org_reads_without_currency_field(
    backend: SalesforceBackend, capture: Capture
) -> None:
    result = backend.post(_take_with_sale())
    detail = backend.get_order(result.order_id)
    assert detail.currency == "USD" and detail.total == D("50.00")
    backend.fulfillment_orders(store_id="store-001")
    texts = [s.soql or "" for s in capture.sent] + [str(s.body) for s in capture.sent]
    assert not [t for t in texts if "CurrencyIsoCode" in t]


# -- pure mappings --------------------------------------------------------------------------


def test_change_reason_mapping() -> None:
    from sf_backend_helpers import config

    from omsbridge_salesforce.reasons import change_reason

    cfg = config(change_reasons={"Damaged": "Damaged"})
    assert change_reason(cfg, "Damaged") == {"reason": "Damaged", "reasonForChangeText": "Damaged"}
    assert change_reason(cfg, "x" * 300) == {"reason": "Unknown", "reasonForChangeText": "x" * 255}
    assert change_reason(cfg, None) == {"reason": "Unknown"}
    assert change_reason(config(api_version="v58.0"), "Damaged") == {"reason": "Unknown"}


def test_carrier_goes_to_provider_only_when_it_is_a_value() -> None:
    from omsbridge_salesforce.shipping import carrier_fields, carrier_of

    assert carrier_fields("fedex") == {"Provider": "FedEx"}
    assert carrier_fields("U.P.S.") == {"Provider": "UPS"}
    assert carrier_fields("DHL Express") == {"Description": "Carrier: DHL Express"}
    assert carrier_fields(None) == {}
    assert carrier_of({"Description": "Carrier: DHL Express"}) == "DHL Express"
    assert carrier_of({"Provider": "UPS"}) == "UPS"


def test_cancelled_quantity_of_a_fulfillment_order_line() -> None:
    from sf_backend_helpers import config

    from omsbridge_salesforce.reading import fulfillment_order

    row = {
        "Id": "0a3000000000001AAA",
        "Status": "Allocated",
        "FulfillmentOrderLineItems": {
            "records": [
                {"Id": "0a4000000000001AAA", "OriginalQuantity": 3.0, "Quantity": 1.0},
                {"Id": "0a4000000000002AAA", "OriginalQuantity": 2.0, "Quantity": 2.0},
                {
                    "Id": "0a4000000000003AAA",
                    "OriginalQuantity": 4.0,
                    "Quantity": 1.0,
                    "RejectedQuantity": 1.0,
                },
            ]
        },
    }
    fo = fulfillment_order(config(), row, "EUR")
    quantities = [(ln.quantity, ln.quantity_cancelled) for ln in fo.lines]
    assert quantities == [(1, 2), (2, 0), (1, 2)]
    assert fo.currency == "EUR"


@pytest.mark.parametrize("category", ["CLOSED", "CANCELLED", "REJECTED"])
def test_step_on_a_closed_fulfillment_order_is_refused(category: str) -> None:
    import httpx
    from sf_backend_helpers import config

    from omsbridge import Conflict, FulfillmentAction, FulfillmentUpdate
    from omsbridge_salesforce.changes import OrderChanges
    from omsbridge_salesforce.client import SalesforceClient

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "t", "instance_url": "https://x"})
        row = {"Id": "0a3000000000001AAA", "Status": "Whatever", "StatusCategory": category}
        return httpx.Response(200, json={"totalSize": 1, "done": True, "records": [row]})

    cfg = config()
    client = SalesforceClient(cfg, transport=httpx.MockTransport(answer))
    with pytest.raises(Conflict) as info:
        OrderChanges(client, cfg).update_fulfillment(
            FulfillmentUpdate("0a3000000000001AAA", FulfillmentAction.PICKED_UP)
        )
    assert info.value.code == "FULFILLMENT_ORDER_CLOSED"
