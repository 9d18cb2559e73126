"""Proof: everything the backend sends is Salesforce's, not the sandbox's.

The backend's flows run on a plain org (the default settings: summary through Connect, take-with
fulfilment by the connector, one currency, default picklist values) while every HTTP request is
captured; then every sObject field it writes, reads or filters on, every picklist value it
writes and every Connect body key is held against the reference (``sf_reference``). A field the
reference does not know fails, unless the org setup package declares it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from sf_backend_helpers import (
    WHEN,
    cash,
    customer,
    delivery,
    line,
    online,
    pickup_later,
    promo,
    return_txn,
    sale,
    tax,
    wallet,
)
from sf_capture import CUSTOMER_FIELD, Capture, plain_backend, plain_org
from sf_reference import ReferenceCheck, reference_dir

from omsbridge import (
    CancelLine,
    CardTender,
    Fulfillment,
    FulfillmentAction,
    FulfillmentLine,
    FulfillmentType,
    FulfillmentUpdate,
    GiftCardTender,
    LineItem,
    LineKind,
    OrderQuery,
    OriginalLine,
    Transaction,
    TransactionKind,
)
from omsbridge_salesforce.backend import SalesforceBackend

D = Decimal


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
    b = plain_backend(org.url, capture, order_customer_id_field=CUSTOMER_FIELD)
    yield b
    b.close()


def _exchange(original: str) -> Transaction:
    returned = LineItem(
        line_number=1,
        sku="TEE-BLK-M",
        quantity=D(1),
        unit_price=D("25.00"),
        kind=LineKind.RETURN,
        return_reason="Damaged",
        original=OriginalLine(order_id=original, line_number=1),
    )
    return Transaction(
        transaction_id="EX-1",
        kind=TransactionKind.EXCHANGE,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=(returned, line(2, "BELT-LTH-90", "1", "45.00")),
        total=D("20.00"),
        tenders=(CardTender(D("20.00"), brand="Visa", last4="4242"),),
    )


def _drive(backend: SalesforceBackend, org: Any) -> None:
    """Every flow of the backend once (what the contract scenarios exercise)."""
    shopper = attrs.evolve(customer(), customer_id="C-42")
    to_store = Fulfillment(FulfillmentType.SHIP_TO_STORE, "DEFAULT", store_id="store-002")
    # Sales: card, cash, wallet + gift card (split), mixed cart, endless aisle, pickup later.
    card_sale = backend.post(sale([line(1, "TEE-BLK-M", "2", "25.00")], txn_id="S-CARD"))
    backend.post(
        sale([line(1, "TOTE-CNV", "1", "30.00")], txn_id="S-CASH", tenders=[cash(D("30.00"))])
    )
    backend.post(
        sale(
            [line(1, "TOTE-CNV", "1", "30.00")],
            txn_id="S-SPLIT",
            tenders=[wallet(D("20.00")), GiftCardTender(D("10.00"), last4="9999")],
        )
    )
    mixed = sale(
        [
            line(1, "TEE-WHT-L", "1", "25.00", taxes=(tax("2.00"),), adjustments=(promo("-5.00"),)),
            line(2, "SNK-RUN-42", "1", "120.00", fulfillment=online()),
            line(3, "BELT-LTH-90", "1", "45.00", fulfillment=pickup_later()),
            line(4, "TOTE-CNV", "2", "30.00", fulfillment=to_store),
        ],
        txn_id="S-MIXED",
        customer=shopper,
        charges=(delivery("7.95", online()),),
        adjustments=(promo("-10.00"),),
    )
    mixed_result = backend.post(mixed)
    later = backend.post(
        sale(
            [line(1, "BELT-LTH-90", "2", "45.00", fulfillment=pickup_later())],
            txn_id="S-LATER",
            customer=shopper,
        )
    )
    backend.post_batch(
        [
            sale([line(1, "TOTE-CNV", "1", "30.00")], txn_id="B-1"),
            sale([line(1, "TEE-BLK-M", "1", "25.00")], txn_id="B-2"),
        ]
    )
    assert not backend.post(sale([line(1, "TEE-BLK-M", "2", "25.00")], txn_id="S-CARD")).created
    # Return and exchange of the take-with sale.
    backend.post(return_txn("R-1", card_sale.order_id, [(1, "TEE-BLK-M", "1", "25.00")]))
    backend.post(_exchange(card_sale.order_id))
    # Cancels: part of a routed pickup (cancel-item on its FO, then submit-cancel), then all.
    _route(org, later.order_id, {"IN_STORE-PICKUP_LATER": "store-001"})
    backend.cancel_items(later.order_id, [CancelLine(1, D(1))], reason="Changed Mind")
    backend.cancel_order(later.order_id, reason="Customer request")
    # Reads.
    number = backend.get_order(mixed_result.order_id).order_number
    backend.search_orders(OrderQuery(order_number=number))
    backend.search_orders(OrderQuery(email="pat@example.com"))
    backend.search_orders(OrderQuery(customer_id="C-42"))
    backend.search_orders(
        OrderQuery(placed_from=WHEN - timedelta(days=1), placed_to=WHEN + timedelta(days=1))
    )
    # Fulfillment: the org routes the mixed cart; the store works the pickup, the warehouse
    # ships the online line (a carrier that is a Provider value), the ship-to-store parcel is
    # received in two parts; the seed's own BOPIS orders are rejected and cancelled.
    seeded = {
        store: [fo.fulfillment_order_id for fo in backend.fulfillment_orders(store_id=store)]
        for store in ("store-001", "store-002")
    }
    routed = _route(
        org,
        mixed_result.order_id,
        {
            "IN_STORE-PICKUP_LATER": "store-001",
            "ONLINE-DEFAULT": "wh-001",
            "SHIP_TO_STORE-DEFAULT": "wh-001",
        },
    )
    pickup = routed["IN_STORE-PICKUP_LATER"]
    assert pickup in {
        fo.fulfillment_order_id for fo in backend.fulfillment_orders(store_id="store-001")
    }
    backend.fulfillment_orders_by_id([pickup, routed["ONLINE-DEFAULT"]])
    backend.fulfillment_orders_by_id([pickup])
    for action in (
        FulfillmentAction.PICK,
        FulfillmentAction.PACK,
        FulfillmentAction.READY_FOR_PICKUP,
        FulfillmentAction.PICKED_UP,
    ):
        backend.update_fulfillment(FulfillmentUpdate(pickup, action))
    backend.update_fulfillment(
        FulfillmentUpdate(
            routed["ONLINE-DEFAULT"],
            FulfillmentAction.SHIPPED,
            carrier="ups",
            tracking_number="1Z999",
            occurred_at=WHEN,
        )
    )
    parcel = routed["SHIP_TO_STORE-DEFAULT"]
    (first,) = backend.fulfillment_orders_by_id([parcel])[0].lines[:1]
    for lines in ((FulfillmentLine(first.line_id, D(1)),), ()):  # part, then the rest
        backend.update_fulfillment(
            FulfillmentUpdate(parcel, FulfillmentAction.RECEIVED, lines=lines)
        )
    backend.update_fulfillment(
        FulfillmentUpdate(seeded["store-001"][0], FulfillmentAction.REJECT, reason="Out of stock")
    )
    backend.update_fulfillment(
        FulfillmentUpdate(seeded["store-002"][0], FulfillmentAction.CANCEL, reason="No show")
    )
    backend.get_order(mixed_result.order_id)
    backend.imports.catch_up_events(WHEN - timedelta(days=3650))
    backend.events(None, wait=0)
    backend.get_order(card_sale.order_id)


def _route(org: Any, order_id: str, stores: dict[str, str]) -> dict[str, str]:
    """The org's routing (not the backend): a fulfillment order per delivery group with
    quantity to fulfil, at the given store or warehouse. Method name -> FO id."""
    sb = org.sandbox
    (summary,) = sb.store.where("OrderSummary", OriginalOrderId=order_id)
    routed: dict[str, str] = {}
    for group in sb.store.where("OrderDeliveryGroupSummary", OrderSummaryId=summary["Id"]):
        method = sb.store.get("OrderDeliveryMethod", group["OrderDeliveryMethodId"])["Name"]
        items = [
            {"orderItemSummaryId": i["Id"], "quantity": i["QuantityAvailableToFulfill"]}
            for i in sb.store.where("OrderItemSummary", OrderDeliveryGroupSummaryId=group["Id"])
            if i["TypeCode"] == "Product" and i["QuantityAvailableToFulfill"] > 0
        ]
        if method not in stores or not items:
            continue
        out = sb.oms.create_fulfillment_orders(
            {
                "orderSummaryId": summary["Id"],
                "orderDeliveryGroupSummaryId": group["Id"],
                "fulfillmentGroups": [
                    {
                        "fulfilledFromLocationId": sb.demo["locations"][stores[method]],
                        "fulfillmentType": "Warehouse",
                        "orderItemSummaries": items,
                    }
                ],
            }
        )
        routed[method] = out["fulfillmentOrderIds"][0]
    return routed


def test_the_reference_is_found() -> None:
    assert (reference_dir() / "FulfillmentOrder.json").is_file()


def test_every_field_value_and_connect_key_is_salesforces(
    backend: SalesforceBackend, org: Any, capture: Capture
) -> None:
    _drive(backend, org)
    check = ReferenceCheck(api_version=backend.config.api_version, multi_currency=False)
    check.requests(capture.sent)
    assert not check.problems, "\n".join(dict.fromkeys(check.problems))
    # The flows really ran: the Connect actions of every kind were sent and checked.
    assert {
        "create-order-summary",
        "create-fulfillment-orders",
        "submit-return",
        "create-credit-memo",
        "ensure-refunds-async",
        "submit-cancel",
    } <= check.connect_used
    assert "cancel-fulfillment-order-items" in check.connect_used
    _docs_list(check.used)
    assert ("Shipment", "TrackingNumber") in check.used and ("Shipment", "Provider") in check.used
    assert ("FulfillmentOrderLineItem", "OriginalQuantity") in check.used


def test_the_check_fails_on_what_salesforce_refuses() -> None:
    from sf_capture import Sent

    check = ReferenceCheck(api_version="v62.0", multi_currency=False)
    bad = [
        Sent("POST", "/services/data/v62.0/sobjects/Order", {}, {"OrderLifeCycleType": "MANAGED"}),
        Sent(
            "GET",
            "/services/data/v62.0/query",
            {"q": ["SELECT Id, QuantityCanceled FROM FulfillmentOrderLineItem"]},
            None,
        ),
        Sent(
            "GET",
            "/services/data/v62.0/query",
            {"q": ["SELECT Id, ShipmentDate, CurrencyIsoCode FROM Shipment"]},
            None,
        ),
        Sent(
            "POST",
            "/services/data/v62.0/sobjects/DigitalWallet",
            {},
            {"Status": "Open", "Type": "Cash"},
        ),
        Sent("POST", "/services/data/v62.0/sobjects/Shipment", {}, {"Provider": "DHL"}),
        Sent(
            "POST",
            "/services/data/v62.0/commerce/order-management/order-summaries/1Os000000000001/"
            "actions/submit-return",
            {},
            {"changeItems": [{"reason": "Other", "note": "x"}]},
        ),
        Sent("POST", "/services/data/v62.0/sobjects/Order", {}, {"Custom__c": "x"}),
    ]
    check.requests(bad)
    text = "\n".join(check.problems)
    for expected in (
        "Order.OrderLifeCycleType",
        "FulfillmentOrderLineItem.QuantityCanceled",
        "Shipment.ShipmentDate",
        "Shipment.CurrencyIsoCode",
        "DigitalWallet.Status = 'Open'",
        "DigitalWallet.Type (create): not confirmed",
        "Shipment.Provider = 'DHL'",
        "reason = 'Other'",
        "changeItems.note",
        "Order.Custom__c",
    ):
        assert expected in text, (expected, text)
    assert not ReferenceCheck(api_version="v62.0", multi_currency=True).problems
    good = ReferenceCheck(api_version="v62.0", multi_currency=True)
    good.requests(
        [Sent("POST", "/services/data/v62.0/sobjects/Order", {}, {"POS_Transaction_Id__c": "T"})]
    )
    assert not good.problems


def test_closed_status_categories_are_api_values() -> None:
    import json

    from omsbridge_salesforce.reading import CLOSED_CATEGORIES, OPEN_FULFILLMENT

    fields = json.loads((reference_dir() / "FulfillmentOrder.json").read_text())["fields"]
    values = set(fields["StatusCategory"]["picklist"])
    # CANCELED: the FOStatusChangedEvent page's spelling, kept beside the API value CANCELLED.
    assert set(CLOSED_CATEGORIES) - {"CANCELED"} == {"CLOSED", "CANCELLED", "REJECTED"} <= values
    assert all(f"'{v}'" in OPEN_FULFILLMENT for v in CLOSED_CATEGORIES)


def _docs_list(used: dict[tuple[str, str], set[str]]) -> None:
    """docs/salesforce.md's field table names every field the backend used."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[4] / "docs" / "salesforce.md"
    text = docs.read_text()
    section = text[text.index("## Objects and fields the backend uses") :]
    listed = set(re.findall(r"^\| (\w+) \| `(\w+)` \|", section, re.M))
    missing = sorted(set(used) - listed)
    assert not missing, f"docs/salesforce.md does not list {missing}"
