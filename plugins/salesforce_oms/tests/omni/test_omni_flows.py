"""The seed's omnichannel flows end to end on the sandbox: BOPIS step by step, BOFIS, no-show and
partial cancels, ship to store with its receipt, and the store's view of waiting orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from omni_helpers import RECEIVED_FIELD, Pos, WebShop, eventually, listening

from omsbridge import (
    Bridge,
    FulfillmentAction,
    FulfillmentKind,
    FulfillmentLine,
    FulfillmentUpdate,
    hookimpl,
)

D = Decimal


def fo_record(shop: WebShop, fo_id: str) -> dict[str, Any]:
    return shop.record("FulfillmentOrder", fo_id)


def item_summaries(shop: WebShop, summary_id: str) -> dict[str, dict[str, Any]]:
    rows = shop.rows(
        "SELECT StockKeepingUnit, QuantityAllocated, QuantityFulfilled, QuantityCanceled "
        f"FROM OrderItemSummary WHERE OrderSummaryId = '{summary_id}'"
    )
    return {r["StockKeepingUnit"]: r for r in rows}


def test_bopis_every_step_of_the_seed(bridge: Bridge, shop: WebShop, pos: Pos) -> None:
    merchant = bridge.for_merchant("DEMO")
    with listening(bridge) as listener:
        # 1-5. The customer orders online for pickup; the org routes it to the store.
        placed = shop.place(lines=(("TEE-BLK-M", 2), ("TOTE-CNV", 1)), store="store-001")
        fo_id = placed["fulfillment_order_id"]
        # 6-8. Streaming notification -> import -> the POS is told about the new order.
        (fo,) = pos.wait_for(1)
    assert fo.fulfillment_order_id == fo_id
    assert (fo.kind, fo.store_id, fo.status) == (FulfillmentKind.PICKUP, "store-001", "Allocated")
    assert fo.order_id == placed["order_id"] and fo.order_number == placed["order_number"]
    assert fo.delivery_method == "Store Pickup"
    assert fo.customer is not None and fo.customer.email == "amanda.freeman@example.com"
    tee, tote = fo.lines
    assert (tee.sku, tee.quantity, tee.unit_price, tee.order_line_number) == (
        "TEE-BLK-M",
        D(2),
        D("25.00"),
        1,
    )
    assert [(t.name, t.amount, t.rate) for t in tee.taxes] == [("Sales Tax", D("4.00"), D("0.08"))]
    assert [(a.amount, a.description) for a in tee.adjustments] == [(D("-5.00"), "WEB5")]
    assert [t.amount for t in tote.taxes] == [D("2.40")] and tote.adjustments == ()
    assert listener.checkpoint is not None and listener.checkpoint.split("@")[0].isdigit()
    # The store's own list shows the same order, mapped the same way.
    waiting = merchant.fulfillment_orders(store_id="store-001")
    assert [f for f in waiting if f.fulfillment_order_id == fo_id] == [fo]
    # 9-11. The associate picks and packs: Salesforce sees Pickpack.
    merchant.update_fulfillment(FulfillmentUpdate(fo_id, FulfillmentAction.PICK))
    merchant.update_fulfillment(FulfillmentUpdate(fo_id, FulfillmentAction.PACK))
    assert fo_record(shop, fo_id)["Status"] == "Pickpack"
    # Ready for pickup (the email is the org's business).
    merchant.update_fulfillment(FulfillmentUpdate(fo_id, FulfillmentAction.READY_FOR_PICKUP))
    assert fo_record(shop, fo_id)["Status"] == "Ready For Pickup"
    # 13-15. The customer picks it up; Salesforce is updated and counts the goods fulfilled.
    merchant.update_fulfillment(FulfillmentUpdate(fo_id, FulfillmentAction.PICKED_UP))
    record = fo_record(shop, fo_id)
    assert (record["Status"], record["StatusCategory"]) == ("Picked Up", "CLOSED")
    items = item_summaries(shop, placed["summary_id"])
    assert items["TEE-BLK-M"]["QuantityFulfilled"] == 2
    assert items["TOTE-CNV"]["QuantityFulfilled"] == 1
    # Those status changes were events too, but not importable ones: the listener reads past
    # them and the next thing the POS gets is the next new order.
    with listening(bridge) as listener:
        after = listener.checkpoint
        nxt = shop.place(store="store-002")["fulfillment_order_id"]
        pos.wait_for(2)
    assert pos.ids() == [fo_id, nxt]
    assert int((listener.checkpoint or "0").split("@")[0]) > int((after or "0").split("@")[0])


def test_bofis_shipped_and_cannot_fulfil(bridge: Bridge, shop: WebShop, pos: Pos) -> None:
    merchant = bridge.for_merchant("DEMO")
    with listening(bridge):
        ship = shop.place(method="Standard Shipping", store="store-002", street="1 Market St")
        reject = shop.place(
            method="Standard Shipping",
            store="store-002",
            street="9 Main St",
            lines=(("SNK-RUN-42", 1),),
        )
        received = pos.wait_for(2)
    assert {fo.kind for fo in received} == {FulfillmentKind.SHIP_FROM_STORE}
    assert received[0].ship_to is not None and received[0].ship_to.line1 == "1 Market St"
    # The store ships one: Fulfilled, with a Shipment carrying the tracking number.
    merchant.update_fulfillment(
        FulfillmentUpdate(
            ship["fulfillment_order_id"],
            FulfillmentAction.SHIPPED,
            carrier="UPS",
            tracking_number="1Z999AA1",
        )
    )
    assert fo_record(shop, ship["fulfillment_order_id"])["Status"] == "Fulfilled"
    detail = merchant.get_order(ship["summary_id"])
    assert [(s.carrier, s.tracking_number) for s in detail.shipments] == [("UPS", "1Z999AA1")]
    # It cannot fulfil the other: Salesforce is told (Rejected) and re-routes it.
    merchant.update_fulfillment(
        FulfillmentUpdate(
            reject["fulfillment_order_id"], FulfillmentAction.REJECT, reason="out of stock"
        )
    )
    record = fo_record(shop, reject["fulfillment_order_id"])
    assert (record["Status"], record["StatusCategory"]) == ("Rejected", "REJECTED")
    waiting = {f.fulfillment_order_id for f in merchant.fulfillment_orders(store_id="store-002")}
    assert reject["fulfillment_order_id"] not in waiting


def test_no_show_cancels_with_the_configured_value(
    tmp_path: Any, server: Any, shop: WebShop, pos: Pos
) -> None:
    from omni_helpers import bridge_for, config_file

    path = config_file(
        tmp_path / "custom.toml",
        server.url,
        statuses_to_process=["Allocated"],
        status_canceled_value="Processing Cancel",
        fulfillment_statuses={"READY_FOR_PICKUP": "Pack Complete"},
    )
    with bridge_for(path, pos) as bridge, listening(bridge):
        placed = shop.place(lines=(("TEE-BLK-M", 1), ("BELT-LTH-90", 1)))
        (fo,) = pos.wait_for(1)
        merchant = bridge.for_merchant("DEMO")
        merchant.update_fulfillment(
            FulfillmentUpdate(fo.fulfillment_order_id, FulfillmentAction.READY_FOR_PICKUP)
        )
        assert fo_record(shop, fo.fulfillment_order_id)["Status"] == "Pack Complete"
        # The customer never comes: the whole order is cancelled.
        merchant.update_fulfillment(
            FulfillmentUpdate(fo.fulfillment_order_id, FulfillmentAction.CANCEL, reason="No show")
        )
        assert fo_record(shop, fo.fulfillment_order_id)["Status"] == "Processing Cancel"
        items = item_summaries(shop, placed["summary_id"])
        assert all(item["QuantityAllocated"] == 0 for item in items.values())
        # Retrying the same cancel is harmless (nothing left to cancel-item; same status).
        merchant.update_fulfillment(
            FulfillmentUpdate(fo.fulfillment_order_id, FulfillmentAction.CANCEL, reason="No show")
        )


def test_unavailable_item_is_cancelled_line_by_line(
    bridge: Bridge, shop: WebShop, pos: Pos
) -> None:
    merchant = bridge.for_merchant("DEMO")
    with listening(bridge):
        shop.place(lines=(("TEE-BLK-M", 2), ("TOTE-CNV", 1)), promotion=False)
        (fo,) = pos.wait_for(1)
    tee, tote = fo.lines
    merchant.update_fulfillment(
        FulfillmentUpdate(
            fo.fulfillment_order_id,
            FulfillmentAction.CANCEL,
            lines=(FulfillmentLine(tee.line_id, D(1)),),
            reason="Damaged",
        )
    )
    (after,) = [
        f
        for f in merchant.fulfillment_orders(store_id="store-001")
        if f.fulfillment_order_id == fo.fulfillment_order_id
    ]
    assert [(line.quantity, line.quantity_cancelled) for line in after.lines] == [
        (D(1), D(1)),
        (D(1), D(0)),
    ]
    assert after.lines[0].taxes[0].amount == D("2.00")  # the tax follows the remaining quantity
    assert fo_record(shop, fo.fulfillment_order_id)["Status"] == "Allocated"
    # Then everything else turns out unavailable too: the order ends cancelled.
    merchant.update_fulfillment(
        FulfillmentUpdate(
            fo.fulfillment_order_id,
            FulfillmentAction.CANCEL,
            lines=(FulfillmentLine(tee.line_id, D(1)), FulfillmentLine(tote.line_id, D(1))),
            reason="Unavailable",
        )
    )
    assert fo_record(shop, fo.fulfillment_order_id)["Status"] == "Cancelled"


def test_ship_to_store_import_receive_and_pickup(bridge: Bridge, shop: WebShop, pos: Pos) -> None:
    merchant = bridge.for_merchant("DEMO")
    with listening(bridge):
        placed = shop.place(method="Ship To Store", lines=(("TEE-WHT-L", 3), ("TOTE-CNV", 1)))
        fo_id = placed["fulfillment_order_id"]
        (fo,) = pos.wait_for(1)
    shipment = shop.ship_to_store(fo_id, "1ZASN0001")
    assert (fo.kind, fo.store_id) == (FulfillmentKind.SHIP_TO_STORE, "store-001")
    # The ASN: its tracking is on the order the fulfillment order belongs to.
    detail = merchant.get_order(fo.order_id)
    assert [(s.tracking_number, s.status) for s in detail.shipments] == [
        ("1ZASN0001", "In Transit")
    ]
    tees, tote = fo.lines
    # Part of the parcel arrives: quantities recorded, the order still waits.
    merchant.update_fulfillment(
        FulfillmentUpdate(
            fo_id, FulfillmentAction.RECEIVED, lines=(FulfillmentLine(tees.line_id, D(2)),)
        )
    )
    assert shop.record("FulfillmentOrderLineItem", tees.line_id)[RECEIVED_FIELD] == 2
    assert fo_record(shop, fo_id)["Status"] == "Allocated"
    assert shop.record("Shipment", shipment)["Status"] == "In Transit"
    # More than expected is refused, naming the line.
    from omsbridge import InvalidTransaction

    try:
        merchant.update_fulfillment(
            FulfillmentUpdate(
                fo_id, FulfillmentAction.RECEIVED, lines=(FulfillmentLine(tees.line_id, D(2)),)
            )
        )
    except InvalidTransaction as exc:
        assert "lines[0].quantity" in str(exc)
    else:
        raise AssertionError("over-receipt accepted")
    # The rest arrives: the shipment is delivered and the order is ready for pickup.
    merchant.update_fulfillment(
        FulfillmentUpdate(
            fo_id,
            FulfillmentAction.RECEIVED,
            lines=(FulfillmentLine(tees.line_id, D(1)), FulfillmentLine(tote.line_id, D(1))),
        )
    )
    assert shop.record("FulfillmentOrderLineItem", tote.line_id)[RECEIVED_FIELD] == 1
    assert shop.record("Shipment", shipment)["Status"] == "Delivered"
    assert shop.record("Shipment", shipment)["ActualDeliveryDate"]
    assert fo_record(shop, fo_id)["Status"] == "Ready For Pickup"
    merchant.update_fulfillment(FulfillmentUpdate(fo_id, FulfillmentAction.PICKED_UP))
    assert fo_record(shop, fo_id)["Status"] == "Picked Up"


def test_one_failing_pos_observer_does_not_starve_another(
    bridge: Bridge, shop: WebShop, pos: Pos
) -> None:
    class Broken:
        @hookimpl
        def omsbridge_fulfillment_order_received(
            self, merchant_id: str, fulfillment_order: Any
        ) -> None:
            raise RuntimeError("store notifier down")

    bridge.plugin_manager.register(Broken(), name="broken")
    with listening(bridge) as listener:
        shop.place()
        pos.wait_for(1)
        eventually(lambda: listener.checkpoint not in (None, "catch-up"))
    assert bridge.store.dead_events("DEMO") == []


def test_importing_one_order_is_one_api_call(bridge: Bridge, shop: WebShop) -> None:
    fo_id = shop.place()["fulfillment_order_id"]
    backend = bridge.for_merchant("DEMO").backend
    backend.fulfillment_orders_by_id([fo_id])  # type: ignore[attr-defined]  # token, warm-up
    usage = shop.server.sandbox.usage
    before = usage.used
    (fo,) = backend.fulfillment_orders_by_id([fo_id])  # type: ignore[attr-defined]
    assert usage.used - before == 1
    assert fo.lines[0].taxes and fo.lines[0].adjustments
    closed = shop.demo["orders"][2]["fulfillment_order_id"]  # Fulfilled: not importable
    assert backend.fulfillment_orders_by_id([closed]) == []  # type: ignore[attr-defined]
