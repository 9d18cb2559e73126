"""The demo's omnichannel day: orders the web shop places and routes to the store, end to end.

The OMS's own side (placing web orders, routing them to the store) is played by the local
server's :class:`omsbridge.local.OmsSide`; everything the store does goes through omsbridge like
any POS: the event feed (a :class:`omsbridge.listen.Listener` with the config's durable
checkpoint), fulfillment orders, status updates, search, order detail and a return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from omsbridge.bridge import Merchant
from omsbridge.demo.store_day import JANE, SAM, STORE, Step
from omsbridge.local import OmsSide, WebLine, WebOrder
from omsbridge.model import (
    CardTender,
    Customer,
    FulfillmentAction,
    FulfillmentEvent,
    FulfillmentKind,
    FulfillmentUpdate,
    LineItem,
    LineKind,
    OrderQuery,
    OriginalLine,
    Transaction,
    TransactionKind,
)
from omsbridge.spi import Capability
from omsbridge.store import Store

__all__ = ["omnichannel"]

_EVENT_WAIT = 2.0  # seconds one events() call may long-poll
_EVENT_TRIES = 5  # polls before the demo says the routed order never arrived
_A = FulfillmentAction


def _now() -> datetime:
    return datetime.now(timezone(timedelta(hours=-8)))


def _waiting(merchant: Merchant) -> set[str]:
    return {fo.fulfillment_order_id for fo in merchant.fulfillment_orders(store_id=STORE)}


def _steps(merchant: Merchant, fo_id: str, *actions: FulfillmentAction, **kw: Any) -> list[str]:
    """Report each store step; the fulfillment order's status after each (while it waits)."""
    seen = []
    for action in actions:
        extra = kw if action in (_A.SHIPPED, _A.CANCEL, _A.REJECT) else {}
        merchant.update_fulfillment(FulfillmentUpdate(fo_id, action, occurred_at=_now(), **extra))
        seen.append(str(action))
    return seen


def _gone(merchant: Merchant, fo_id: str, what: str) -> None:
    if fo_id in _waiting(merchant):
        raise AssertionError(f"{fo_id} still waits on {STORE} after {what}")


def omnichannel(stamp: str, oms: OmsSide, store: Store) -> list[Step]:
    """The omnichannel steps for one merchant, played with the local server's OMS side."""

    def arrives(merchant: Merchant, state: dict[str, Any]) -> dict[str, Any]:
        from omsbridge.listen import Listener, ListenerSettings

        imported: list[str] = []

        def handler(m: Merchant, events: Sequence[FulfillmentEvent]) -> None:
            wanted = list(dict.fromkeys(e.fulfillment_order_id for e in events))
            for fo in m.backend.fulfillment_orders_by_id(wanted):
                m.deliver(fo)  # to the POS's observers, as the worker's listener does
                imported.append(fo.fulfillment_order_id)

        listener = Listener(
            merchant, store, handler, ListenerSettings(channel="demo", wait=_EVENT_WAIT)
        )
        listener.poll()  # the first read marks "now": what is routed next comes after it
        fo_id = oms.route_to_store(STORE, FulfillmentKind.PICKUP, ref=f"{stamp}B", customer=JANE)
        events = 0
        for _ in range(_EVENT_TRIES):
            events += listener.poll()
            if fo_id in imported:
                break
        else:
            raise AssertionError(f"no event imported the routed BOPIS order {fo_id}")
        if fo_id not in _waiting(merchant):
            raise AssertionError(f"the imported {fo_id} is not listed for {STORE}")
        state["bopis"] = fo_id
        return {"fulfillment_order": fo_id, "events": events, "checkpoint": listener.checkpoint}

    def bopis(action: FulfillmentAction) -> Callable[[Merchant, dict[str, Any]], dict[str, Any]]:
        def run(merchant: Merchant, state: dict[str, Any]) -> dict[str, Any]:
            fo_id = state["bopis"]
            _steps(merchant, fo_id, action)
            if action is _A.PICKED_UP:
                _gone(merchant, fo_id, "pickup")
            elif fo_id not in _waiting(merchant):
                raise AssertionError(f"{fo_id} stopped waiting on {STORE} after {action}")
            return {"fulfillment_order": fo_id, "step": str(action)}

        return run

    def routed(
        kind: FulfillmentKind, suffix: str, *actions: FulfillmentAction, **kw: Any
    ) -> Callable[[Merchant, dict[str, Any]], dict[str, Any]]:
        def run(merchant: Merchant, state: dict[str, Any]) -> dict[str, Any]:
            fo_id = oms.route_to_store(STORE, kind, ref=f"{stamp}{suffix}", customer=SAM)
            done = _steps(merchant, fo_id, *actions, **kw)
            _gone(merchant, fo_id, done[-1])
            return {"fulfillment_order": fo_id, "steps": " > ".join(done)}

        return run

    def boris(merchant: Merchant, state: dict[str, Any]) -> dict[str, Any]:
        email = f"web.{stamp.lower()}@example.com"
        customer = Customer(
            customer_id=f"W-{stamp}", email=email, first_name="Robin", last_name="Web"
        )
        order = WebOrder(
            ref=f"{stamp}W", customer=customer, placed_at=_now() - timedelta(days=3),
            lines=(WebLine("SKU-WEB-DRESS", Decimal(1), Decimal("79.00"), "Linen Dress"),
                   WebLine("SKU-WEB-SCARF", Decimal(2), Decimal("19.50"), "Silk Scarf")),
        )  # fmt: skip
        order_id = oms.place_web_order(order)
        hits = merchant.search_orders(OrderQuery(email=email)).hits
        if [h.order_id for h in hits] != [order_id]:
            raise AssertionError(f"search by {email} found {[h.order_id for h in hits]}")
        scarf = next(x for x in merchant.get_order(order_id).lines if x.sku == "SKU-WEB-SCARF")
        line = LineItem(
            line_number=1, line_id="R1", sku="SKU-WEB-SCARF", name="Silk Scarf",
            quantity=Decimal(1), unit_price=Decimal("19.50"), kind=LineKind.RETURN,
            return_reason="Changed mind",
            original=OriginalLine(order_id, line_number=scarf.line_number),
        )  # fmt: skip
        txn = Transaction(
            transaction_id=f"DEMO-{stamp}-BORIS", kind=TransactionKind.RETURN,
            created_at=_now(), currency="USD", store_id=STORE, register_id="REG-3",
            associate_id="A-1187", locale="en_US", region="US", lines=(line,),
            total=line.signed_total, customer=customer,
            tenders=(CardTender(line.signed_total, brand="VISA", last4="4242"),),
        )  # fmt: skip
        result = merchant.post(txn)
        after = next(x for x in merchant.get_order(order_id).lines if x.sku == "SKU-WEB-SCARF")
        if after.quantity_returned != Decimal(1):
            raise AssertionError(f"the scarf line counts {after.quantity_returned} returned")
        return {"web_order": order_id, "return": result.order_id, "refund": f"{txn.total} USD"}

    upd = Capability.UPDATE_FULFILLMENT
    return [
        Step("BOPIS order arrives as an event, imported", Capability.EVENTS, arrives),
        Step("BOPIS picked", upd, bopis(_A.PICK)),
        Step("BOPIS packed", upd, bopis(_A.PACK)),
        Step("BOPIS ready for pickup", upd, bopis(_A.READY_FOR_PICKUP)),
        Step("BOPIS picked up", upd, bopis(_A.PICKED_UP)),
        Step("BOFIS picked, packed, shipped", upd, routed(
            FulfillmentKind.SHIP_FROM_STORE, "S", _A.PICK, _A.PACK, _A.SHIPPED,
            carrier="UPS", tracking_number=f"1Z{stamp}")),
        Step("BOFIS rejected by the store", upd, routed(
            FulfillmentKind.SHIP_FROM_STORE, "J", _A.REJECT, reason="damaged stock")),
        Step("ship to store received, ready, picked up", upd, routed(
            FulfillmentKind.SHIP_TO_STORE, "T", _A.RECEIVED, _A.READY_FOR_PICKUP, _A.PICKED_UP)),
        Step("BOPIS no-show cancelled", upd, routed(
            FulfillmentKind.PICKUP, "N", _A.READY_FOR_PICKUP, _A.CANCEL,
            reason="customer did not pick up")),
        Step("BORIS: web order looked up and returned in store", Capability.POST_RETURN, boris),
    ]  # fmt: skip
