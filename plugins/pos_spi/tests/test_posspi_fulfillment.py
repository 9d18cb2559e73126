"""Fulfillment orders, status updates and the event feed, against the reference server."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from omsbridge.errors import Conflict, InvalidTransaction, NotFound, Rejected
from omsbridge.model import (
    FulfillmentAction,
    FulfillmentKind,
    FulfillmentLine,
    FulfillmentUpdate,
)
from omsbridge_posspi import PosSpiBackend
from omsbridge_posspi.server import SeedLine, SpiApp


def step(fo_id: str, action: FulfillmentAction, **kwargs: object) -> FulfillmentUpdate:
    """A store step for one fulfillment order."""
    return FulfillmentUpdate(fo_id, action, **kwargs)  # type: ignore[arg-type]


def test_bopis_flow_fulfils_the_order_and_emits_events(backend: PosSpiBackend, app: SpiApp) -> None:
    start = backend.events(None)
    seeded = app.seed_online_order("STORE-7", kind="PICKUP")
    fo_id = seeded.fulfillment_order.fulfillment_order_id
    (listed,) = backend.fulfillment_orders(store_id="STORE-7")
    assert listed == seeded.fulfillment_order
    assert listed.kind == FulfillmentKind.PICKUP and listed.status == "ALLOCATED"
    assert backend.fulfillment_orders(store_id="OTHER") == ()
    for action in (
        FulfillmentAction.PICK,
        FulfillmentAction.PACK,
        FulfillmentAction.READY_FOR_PICKUP,
        FulfillmentAction.PICKED_UP,
    ):
        backend.update_fulfillment(step(fo_id, action))
    detail = backend.get_order(seeded.order.order_id)
    assert detail.status == "FULFILLED"
    assert detail.lines[0].quantity_fulfilled == Decimal(2)
    assert backend.fulfillment_orders(store_id="STORE-7") == ()
    batch = backend.events(start.checkpoint)
    assert [(e.old_status, e.new_status) for e in batch.events] == [
        (None, "ALLOCATED"),
        ("ALLOCATED", "PICKED"),
        ("PICKED", "PACKED"),
        ("PACKED", "READY_FOR_PICKUP"),
        ("READY_FOR_PICKUP", "PICKED_UP"),
    ]
    checkpoints = [int(e.checkpoint) for e in batch.events]
    assert checkpoints == sorted(checkpoints) and len(set(checkpoints)) == 5
    assert batch.checkpoint == batch.events[-1].checkpoint
    assert all(e.fulfillment_order_id == fo_id for e in batch.events)
    assert backend.events(batch.checkpoint).events == ()


def test_repeating_a_step_is_harmless(backend: PosSpiBackend, app: SpiApp) -> None:
    fo_id = app.seed_online_order("S").fulfillment_order.fulfillment_order_id
    backend.update_fulfillment(step(fo_id, FulfillmentAction.PICK))
    head = backend.events(None).checkpoint
    backend.update_fulfillment(step(fo_id, FulfillmentAction.PICK))
    assert backend.events(head).events == ()


def test_step_out_of_order_is_a_conflict(backend: PosSpiBackend, app: SpiApp) -> None:
    fo_id = app.seed_online_order("S").fulfillment_order.fulfillment_order_id
    with pytest.raises(Conflict) as caught:
        backend.update_fulfillment(step(fo_id, FulfillmentAction.PICKED_UP))
    assert (caught.value.code, caught.value.status) == ("INVALID_TRANSITION", 409)


def test_step_for_the_wrong_kind_is_rejected(backend: PosSpiBackend, app: SpiApp) -> None:
    fo_id = app.seed_online_order("S", kind="PICKUP").fulfillment_order.fulfillment_order_id
    with pytest.raises(Rejected) as caught:
        backend.update_fulfillment(step(fo_id, FulfillmentAction.SHIPPED))
    assert caught.value.code == "ACTION_NOT_ALLOWED"


def test_unknown_fulfillment_order_is_not_found(backend: PosSpiBackend) -> None:
    with pytest.raises(NotFound) as caught:
        backend.update_fulfillment(step("FO-NOPE", FulfillmentAction.PICK))
    assert caught.value.code == "FULFILLMENT_ORDER_NOT_FOUND"


def test_bofis_shipped_records_a_shipment(backend: PosSpiBackend, app: SpiApp) -> None:
    seeded = app.seed_online_order("S", kind="SHIP_FROM_STORE")
    fo_id = seeded.fulfillment_order.fulfillment_order_id
    assert seeded.fulfillment_order.ship_to is not None
    backend.update_fulfillment(step(fo_id, FulfillmentAction.PACK))
    backend.update_fulfillment(
        step(fo_id, FulfillmentAction.SHIPPED, carrier="UPS", tracking_number="1Z999")
    )
    detail = backend.get_order(seeded.order.order_id)
    (shipment,) = detail.shipments
    assert (shipment.carrier, shipment.tracking_number) == ("UPS", "1Z999")
    assert shipment.fulfillment_order_id == fo_id
    assert detail.status == "FULFILLED"


def test_bofis_reject_leaves_the_order_open(backend: PosSpiBackend, app: SpiApp) -> None:
    seeded = app.seed_online_order("S", kind="SHIP_FROM_STORE")
    fo_id = seeded.fulfillment_order.fulfillment_order_id
    backend.update_fulfillment(step(fo_id, FulfillmentAction.REJECT, reason="no stock"))
    assert backend.get_order(seeded.order.order_id).status == "OPEN"
    assert backend.fulfillment_orders(store_id="S") == ()


def test_partial_cancel_then_pickup(backend: PosSpiBackend, app: SpiApp) -> None:
    seeded = app.seed_online_order(
        "S",
        lines=[
            SeedLine("SKU-1", Decimal(3), Decimal("5.00")),
            SeedLine("SKU-2", Decimal(1), Decimal("8.00")),
        ],
    )
    fo = seeded.fulfillment_order
    first, second = fo.lines
    backend.update_fulfillment(
        step(
            fo.fulfillment_order_id,
            FulfillmentAction.CANCEL,
            lines=(FulfillmentLine(first.line_id, Decimal(1)),),
            reason="damaged",
        )
    )
    with pytest.raises(Rejected) as caught:
        backend.update_fulfillment(
            step(
                fo.fulfillment_order_id,
                FulfillmentAction.CANCEL,
                lines=(FulfillmentLine(second.line_id, Decimal(5)),),
                reason="damaged",
            )
        )
    assert caught.value.code == "QUANTITY_EXCEEDS_OPEN"
    (still_open,) = backend.fulfillment_orders(store_id="S")
    assert still_open.lines[0].quantity_cancelled == Decimal(1)
    assert still_open.total == Decimal("18.00")
    backend.update_fulfillment(step(fo.fulfillment_order_id, FulfillmentAction.READY_FOR_PICKUP))
    backend.update_fulfillment(step(fo.fulfillment_order_id, FulfillmentAction.PICKED_UP))
    detail = backend.get_order(seeded.order.order_id)
    assert [(li.quantity_fulfilled, li.quantity_cancelled) for li in detail.lines] == [
        (Decimal(2), Decimal(1)),
        (Decimal(1), Decimal(0)),
    ]
    assert detail.status == "PARTIALLY_CANCELLED"  # the rest was picked up


def test_full_cancel_cancels_the_order_lines(backend: PosSpiBackend, app: SpiApp) -> None:
    seeded = app.seed_online_order("S")
    fo_id = seeded.fulfillment_order.fulfillment_order_id
    backend.update_fulfillment(step(fo_id, FulfillmentAction.CANCEL, reason="no-show"))
    assert backend.get_order(seeded.order.order_id).status == "CANCELLED"


def test_ship_to_store_partial_receipt(backend: PosSpiBackend, app: SpiApp) -> None:
    seeded = app.seed_online_order("S", kind="SHIP_TO_STORE")
    fo = seeded.fulfillment_order
    assert fo.status == "IN_TRANSIT"
    line = fo.lines[0]
    backend.update_fulfillment(
        step(
            fo.fulfillment_order_id,
            FulfillmentAction.RECEIVED,
            lines=(FulfillmentLine(line.line_id, Decimal(1)),),
        )
    )
    assert backend.fulfillment_orders(store_id="S")[0].status == "PARTIALLY_RECEIVED"
    backend.update_fulfillment(step(fo.fulfillment_order_id, FulfillmentAction.RECEIVED))
    assert backend.fulfillment_orders(store_id="S")[0].status == "RECEIVED"
    backend.update_fulfillment(step(fo.fulfillment_order_id, FulfillmentAction.READY_FOR_PICKUP))
    backend.update_fulfillment(step(fo.fulfillment_order_id, FulfillmentAction.PICKED_UP))
    assert backend.get_order(seeded.order.order_id).status == "FULFILLED"


def test_events_from_now_skip_the_past(backend: PosSpiBackend, app: SpiApp) -> None:
    app.seed_online_order("S")
    batch = backend.events(None)
    assert batch.events == ()
    assert batch.checkpoint is not None
    app.seed_online_order("S")
    assert len(backend.events(batch.checkpoint).events) == 1


def test_events_long_poll_wakes_on_a_new_event(backend: PosSpiBackend, app: SpiApp) -> None:
    head = backend.events(None).checkpoint
    timer = threading.Timer(0.3, lambda: app.seed_online_order("S"))
    started = time.monotonic()
    timer.start()
    batch = backend.events(head, wait=5)
    elapsed = time.monotonic() - started
    timer.join()
    assert len(batch.events) == 1
    assert 0.2 < elapsed < 3


def test_events_long_poll_returns_empty_after_wait(backend: PosSpiBackend) -> None:
    head = backend.events(None).checkpoint
    started = time.monotonic()
    batch = backend.events(head, wait=0.3)
    assert batch.events == () and batch.checkpoint == head
    assert time.monotonic() - started >= 0.25


def test_checkpoints_keep_increasing_across_reset(backend: PosSpiBackend, app: SpiApp) -> None:
    app.seed_online_order("S")
    before = backend.events("0").checkpoint
    app.reset()
    app.seed_online_order("S")
    (event,) = backend.events(before).events
    assert int(event.checkpoint) > int(before or 0)


def test_bad_checkpoint_or_wait_is_invalid(backend: PosSpiBackend) -> None:
    with pytest.raises(InvalidTransaction) as caught:
        backend.events("yesterday")
    assert caught.value.code == "INVALID_CHECKPOINT"
    for wait in ("NaN", "soon"):
        with pytest.raises(InvalidTransaction) as bad_wait:
            backend._client.request(
                "GET", "fulfillment-events", operation="FULFILLMENT_EVENTS", params={"wait": wait}
            )
        assert bad_wait.value.issues[0].path == "wait"


def test_oms_side_status_change_emits_an_event(backend: PosSpiBackend, app: SpiApp) -> None:
    fo_id = app.seed_online_order("S").fulfillment_order.fulfillment_order_id
    head = backend.events(None).checkpoint
    app.set_fulfillment_status(fo_id, "ASSIGNED")
    (event,) = backend.events(head).events
    assert (event.old_status, event.new_status) == ("ALLOCATED", "ASSIGNED")
