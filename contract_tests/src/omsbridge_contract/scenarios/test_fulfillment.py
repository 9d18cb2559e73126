"""BOPIS / BOFIS: fulfillment orders routed to a store, the store's steps, and the event feed."""

from __future__ import annotations

from collections.abc import Sequence

from omsbridge.errors import Conflict, NotFound
from omsbridge.model import FulfillmentAction, FulfillmentKind, FulfillmentOrder, FulfillmentUpdate
from omsbridge.spi import Capability
from omsbridge_contract import data
from omsbridge_contract.checks import assert_fulfillment_order, raises
from omsbridge_contract.contract import Contract
from omsbridge_contract.registry import scenario

LIST = Capability.FULFILLMENT_ORDERS
UPDATE = Capability.UPDATE_FULFILLMENT
EVENTS = Capability.EVENTS
MAKE_FO = ["make_fulfillment_order"]
A = FulfillmentAction


def _make(oms: Contract, kind: FulfillmentKind) -> str:
    fo_id = oms.harness.make_fulfillment_order(
        data.STORE, kind, ref=oms.ref, customer=data.customer(oms.ref)
    )
    assert isinstance(fo_id, str) and fo_id, (
        f"make_fulfillment_order must return an id, got {fo_id!r}"
    )
    return fo_id


def _waiting(oms: Contract, store_id: str | None = data.STORE) -> dict[str, FulfillmentOrder]:
    found = oms.backend.fulfillment_orders(store_id=store_id)
    assert isinstance(found, Sequence), (
        f"fulfillment_orders() must return a sequence, got {found!r}"
    )
    fos = {
        fo.fulfillment_order_id: assert_fulfillment_order(fo, f"fulfillment_orders()[{i}]")
        for i, fo in enumerate(found)
    }
    if store_id is not None:
        others = [fo_id for fo_id, fo in fos.items() if fo.store_id not in (None, store_id)]
        assert not others, (
            f"fulfillment_orders(store_id={store_id!r}) lists other stores': {others}"
        )
    return fos


def _step(oms: Contract, fo_id: str, action: FulfillmentAction, **kw: object) -> None:
    update = FulfillmentUpdate(fo_id, action, occurred_at=data.at(90), **kw)  # type: ignore[arg-type]
    answer = oms.backend.update_fulfillment(update)
    assert answer is None, f"update_fulfillment() returns None, got {answer!r}"


def _listed_fo(oms: Contract, fo_id: str, kind: FulfillmentKind) -> FulfillmentOrder:
    waiting = _waiting(oms)
    assert fo_id in waiting, f"{fo_id} is waiting on {data.STORE} but not listed: {sorted(waiting)}"
    fo = waiting[fo_id]
    assert fo.kind == kind, f"{fo_id} is a {fo.kind}, made as {kind}"
    assert fo.store_id in (None, data.STORE)
    assert fo.currency == data.CURRENCY
    assert fo_id not in _waiting(oms, data.OTHER_STORE), f"{fo_id} is listed for another store"
    return fo


@scenario(
    "BOPIS: a pickup fulfillment order routed to the store is listed for that store only",
    area="fulfillment",
    requires=[LIST],
    harness=MAKE_FO,
)
def test_fulfillment_orders_bopis(oms: Contract) -> None:
    fo_id = _make(oms, FulfillmentKind.PICKUP)
    fo = _listed_fo(oms, fo_id, FulfillmentKind.PICKUP)
    assert fo.customer is not None, "a pickup order names the customer who collects it"


@scenario(
    "BOFIS: a ship-from-store fulfillment order is listed for that store only",
    area="fulfillment",
    requires=[LIST],
    harness=MAKE_FO,
)
def test_fulfillment_orders_bofis(oms: Contract) -> None:
    fo_id = _make(oms, FulfillmentKind.SHIP_FROM_STORE)
    _listed_fo(oms, fo_id, FulfillmentKind.SHIP_FROM_STORE)


@scenario(
    "BOPIS steps: pick, pack, ready for pickup (still waiting, new status), picked up "
    "(no longer waiting; the order counts it fulfilled)",
    area="fulfillment",
    requires=[LIST, UPDATE],
    harness=MAKE_FO,
)
def test_bopis_status_updates(oms: Contract) -> None:
    fo_id = _make(oms, FulfillmentKind.PICKUP)
    first = _listed_fo(oms, fo_id, FulfillmentKind.PICKUP)
    statuses = [first.status]
    for action in (A.PICK, A.PACK, A.READY_FOR_PICKUP):
        _step(oms, fo_id, action)
        now = _waiting(oms)
        assert fo_id in now, f"after {action} the order still waits on the store"
        statuses.append(now[fo_id].status)
    assert len(set(statuses)) == len(statuses), (
        f"each step must change the fulfillment order's status, saw {statuses}"
    )
    _step(oms, fo_id, A.PICKED_UP)
    assert fo_id not in _waiting(oms), "a picked-up order no longer waits on the store"
    if oms.has(Capability.GET_ORDER):
        detail = oms.detail(first.order_id)
        for fo_line in first.lines:
            sold = [x for x in detail.lines if x.sku == fo_line.sku]
            assert sold and sold[0].quantity_fulfilled == fo_line.quantity, (
                f"after pickup, {fo_line.sku} must count {fo_line.quantity} fulfilled: {sold}"
            )


@scenario(
    "BOFIS steps: pick, pack, shipped with carrier and tracking number (no longer waiting; "
    "the order shows the shipment)",
    area="fulfillment",
    requires=[LIST, UPDATE],
    harness=MAKE_FO,
)
def test_bofis_shipped(oms: Contract) -> None:
    fo_id = _make(oms, FulfillmentKind.SHIP_FROM_STORE)
    fo = _listed_fo(oms, fo_id, FulfillmentKind.SHIP_FROM_STORE)
    _step(oms, fo_id, A.PICK)
    _step(oms, fo_id, A.PACK)
    _step(oms, fo_id, A.SHIPPED, carrier="UPS", tracking_number=f"1Z-{oms.ref}")
    assert fo_id not in _waiting(oms), "a shipped order no longer waits on the store"
    if oms.has(Capability.GET_ORDER):
        shipments = oms.detail(fo.order_id).shipments
        assert any(s.tracking_number == f"1Z-{oms.ref}" for s in shipments), (
            f"the order must show the shipment's tracking number: {shipments}"
        )


@scenario(
    "ship to store: the parcel is received in the store (still waiting), made ready, picked up "
    "(no longer waiting)",
    area="fulfillment",
    requires=[LIST, UPDATE],
    harness=MAKE_FO,
)
def test_ship_to_store_received(oms: Contract) -> None:
    fo_id = _make(oms, FulfillmentKind.SHIP_TO_STORE)
    first = _listed_fo(oms, fo_id, FulfillmentKind.SHIP_TO_STORE)
    _step(oms, fo_id, A.RECEIVED)
    received = _waiting(oms)
    assert fo_id in received, "a received parcel waits in the store for its customer"
    assert received[fo_id].status != first.status, "receiving must change the status"
    _step(oms, fo_id, A.READY_FOR_PICKUP)
    _step(oms, fo_id, A.PICKED_UP)
    assert fo_id not in _waiting(oms), "a picked-up parcel no longer waits on the store"


@scenario(
    "BOPIS no-show: cancelled by the store (no longer waiting); a later pickup is a Conflict",
    area="fulfillment",
    requires=[LIST, UPDATE],
    harness=MAKE_FO,
)
def test_bopis_cancel_no_show(oms: Contract) -> None:
    fo_id = _make(oms, FulfillmentKind.PICKUP)
    _step(oms, fo_id, A.READY_FOR_PICKUP)
    _step(oms, fo_id, A.CANCEL, reason="customer did not pick up")
    assert fo_id not in _waiting(oms), "a cancelled order no longer waits on the store"
    with raises(Conflict):
        _step(oms, fo_id, A.PICKED_UP)


@scenario(
    "BOFIS: the store cannot fulfil and rejects the order (no longer waiting)",
    area="fulfillment",
    requires=[LIST, UPDATE],
    harness=MAKE_FO,
)
def test_bofis_reject(oms: Contract) -> None:
    fo_id = _make(oms, FulfillmentKind.SHIP_FROM_STORE)
    _step(oms, fo_id, A.REJECT, reason="damaged stock")
    assert fo_id not in _waiting(oms), "a rejected order no longer waits on the store"


@scenario(
    "a status update for a fulfillment order the OMS does not have is NotFound",
    area="fulfillment",
    requires=[UPDATE],
)
def test_fulfillment_update_unknown(oms: Contract) -> None:
    with raises(NotFound):
        _step(oms, f"NO-SUCH-FO-{oms.ref}", A.PICK)


@scenario(
    "the event feed: a new fulfillment order (and a store step) appear after the checkpoint, once",
    area="fulfillment",
    requires=[EVENTS],
    harness=MAKE_FO,
)
def test_fulfillment_events(oms: Contract) -> None:
    start = oms.backend.events(None)
    assert start.checkpoint is not None, "events(None) must give a checkpoint marking 'now'"
    fo_id = _make(oms, FulfillmentKind.PICKUP)
    batch = oms.backend.events(start.checkpoint, wait=2.0)
    mine = [e for e in batch.events if e.fulfillment_order_id == fo_id]
    assert mine, f"no event for the new fulfillment order {fo_id} after {start.checkpoint}"
    assert batch.checkpoint == batch.events[-1].checkpoint, (
        "the batch checkpoint is its last event's"
    )
    seen = {e.event_id for e in batch.events}
    if oms.has(UPDATE):
        _step(oms, fo_id, A.PICK)
    later = oms.backend.events(batch.checkpoint, wait=2.0 if oms.has(UPDATE) else 0.0)
    repeated = seen & {e.event_id for e in later.events}
    assert not repeated, f"events after a checkpoint repeat earlier ones: {sorted(repeated)}"
    if oms.has(UPDATE):
        picked = [e for e in later.events if e.fulfillment_order_id == fo_id]
        assert picked, "the store's step must show in the feed"
        assert picked[-1].new_status != mine[-1].new_status
