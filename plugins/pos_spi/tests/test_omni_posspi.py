"""The omnichannel flows on the native SPI, through the bridge and the generic listener: BOPIS,
BOFIS, no-show and partial cancels, ship to store (ASN + receipts), a restart in the middle,
and BORIS refunded to the original card."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from omsbridge import Bridge, hookimpl
from omsbridge.listen import Listener, ListenerSettings
from omsbridge.model import (
    CardTender,
    FulfillmentAction,
    FulfillmentKind,
    FulfillmentLine,
    FulfillmentOrder,
    FulfillmentUpdate,
    LineItem,
    LineKind,
    OriginalLine,
    Transaction,
    TransactionKind,
)
from omsbridge.plugins import load_entry_point_plugins, new_plugin_manager
from omsbridge_posspi.server import DEFAULT_API_KEY, SeedLine, ServerHandle, SpiApp

D = Decimal
FAST = ListenerSettings(wait=0.2, handler_attempts=2, backoff_initial=0.05, backoff_max=0.2)


class Pos:
    """The POS platform's plugin: records imported fulfillment orders."""

    def __init__(self) -> None:
        self.received: list[FulfillmentOrder] = []
        self.arrived = threading.Condition()

    @hookimpl
    def omsbridge_fulfillment_order_received(
        self, merchant_id: str, fulfillment_order: FulfillmentOrder
    ) -> None:
        """Record it."""
        with self.arrived:
            self.received.append(fulfillment_order)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[FulfillmentOrder]:
        """Block until ``count`` orders arrived."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(self.received)} of {count} arrived"
                self.arrived.wait(left)
            return list(self.received)

    def ids(self) -> list[str]:
        """Fulfillment-order ids received, in order."""
        return [fo.fulfillment_order_id for fo in self.received]


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SPI_KEY", DEFAULT_API_KEY)


@pytest.fixture
def config(tmp_path: Path, server: ServerHandle) -> Path:
    path = tmp_path / "omsbridge.toml"
    path.write_text(
        '[store]\npath = "state.db"\n\n[merchants.ACME]\nbackend = "pos-spi"\n\n'
        f'[merchants.ACME.pos-spi]\nbase_url = "{server.url}"\n'
        'auth = { type = "api_key", api_key = { env = "TEST_SPI_KEY" } }\n'
    )
    return path


@contextmanager
def bridge_for(config: Path, pos: Pos) -> Iterator[Bridge]:
    pm = new_plugin_manager()
    load_entry_point_plugins(pm)
    pm.register(pos, name="pos")
    with Bridge.from_config(config, plugin_manager=pm) as bridge:
        yield bridge


@contextmanager
def listening(bridge: Bridge) -> Iterator[Listener]:
    listener = Listener(bridge.for_merchant("ACME"), bridge.store, settings=FAST)
    listener.poll()  # from now, before anything happens
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


def step(fo_id: str, action: FulfillmentAction, **kwargs: object) -> FulfillmentUpdate:
    return FulfillmentUpdate(fo_id, action, **kwargs)  # type: ignore[arg-type]


def test_bopis_imported_then_every_step(config: Path, app: SpiApp) -> None:
    pos = Pos()
    with bridge_for(config, pos) as bridge:
        merchant = bridge.for_merchant("ACME")
        with listening(bridge):
            seeded = app.seed_online_order("STORE-7", kind="PICKUP")
            (fo,) = pos.wait_for(1)
        assert fo == seeded.fulfillment_order
        assert (fo.kind, fo.store_id, fo.status) == (FulfillmentKind.PICKUP, "STORE-7", "ALLOCATED")
        assert list(merchant.fulfillment_orders(store_id="STORE-7")) == [fo]
        for action in (
            FulfillmentAction.PICK,
            FulfillmentAction.PACK,
            FulfillmentAction.READY_FOR_PICKUP,
            FulfillmentAction.PICKED_UP,
        ):
            merchant.update_fulfillment(step(fo.fulfillment_order_id, action))
        assert merchant.get_order(fo.order_id).status == "FULFILLED"
        assert app.store.fulfillment_order(fo.fulfillment_order_id).status == "PICKED_UP"
        # The status events that followed were read, but the order no longer waits: no import.
        with listening(bridge):
            nxt = app.seed_online_order("STORE-7", kind="PICKUP")
            pos.wait_for(2)
        assert pos.ids() == [fo.fulfillment_order_id, nxt.fulfillment_order.fulfillment_order_id]


def test_bofis_shipped_and_rejected(config: Path, app: SpiApp) -> None:
    pos = Pos()
    with bridge_for(config, pos) as bridge, listening(bridge):
        shipped = app.seed_online_order("STORE-2", kind="SHIP_FROM_STORE").fulfillment_order
        rejected = app.seed_online_order("STORE-2", kind="SHIP_FROM_STORE").fulfillment_order
        received = pos.wait_for(2)
        assert {fo.kind for fo in received} == {FulfillmentKind.SHIP_FROM_STORE}
        merchant = bridge.for_merchant("ACME")
        merchant.update_fulfillment(
            step(
                shipped.fulfillment_order_id,
                FulfillmentAction.SHIPPED,
                carrier="UPS",
                tracking_number="1Z1",
            )
        )
        merchant.update_fulfillment(
            step(rejected.fulfillment_order_id, FulfillmentAction.REJECT, reason="no stock")
        )
        detail = merchant.get_order(shipped.order_id)
        assert [(s.tracking_number, s.status) for s in detail.shipments] == [("1Z1", "SHIPPED")]
        assert app.store.fulfillment_order(rejected.fulfillment_order_id).status == "REJECTED"
        assert list(merchant.fulfillment_orders(store_id="STORE-2")) == []


def test_no_show_and_unavailable_item_cancels(config: Path, app: SpiApp) -> None:
    pos = Pos()
    lines = (SeedLine("TEE", D(2), D("20.00"), "Tee"), SeedLine("CAP", D(1), D("15.00"), "Cap"))
    with bridge_for(config, pos) as bridge, listening(bridge):
        no_show = app.seed_online_order("STORE-1", kind="PICKUP").fulfillment_order
        partial = app.seed_online_order("STORE-1", kind="PICKUP", lines=lines).fulfillment_order
        pos.wait_for(2)
        merchant = bridge.for_merchant("ACME")
        merchant.update_fulfillment(
            step(no_show.fulfillment_order_id, FulfillmentAction.READY_FOR_PICKUP)
        )
        merchant.update_fulfillment(
            step(no_show.fulfillment_order_id, FulfillmentAction.CANCEL, reason="No show")
        )
        assert merchant.get_order(no_show.order_id).status == "CANCELLED"
        tee = partial.lines[0]
        merchant.update_fulfillment(
            step(
                partial.fulfillment_order_id,
                FulfillmentAction.CANCEL,
                lines=(FulfillmentLine(tee.line_id, D(1)),),
                reason="Damaged",
            )
        )
        (left,) = merchant.fulfillment_orders(store_id="STORE-1")
        assert [line.quantity_cancelled for line in left.lines] == [D(1), D(0)]
        assert merchant.get_order(partial.order_id).lines[0].quantity_cancelled == D(1)


def test_ship_to_store_asn_partial_and_full_receipt(config: Path, app: SpiApp) -> None:
    pos = Pos()
    lines = (SeedLine("TEE", D(3), D("20.00"), "Tee"), SeedLine("CAP", D(1), D("15.00"), "Cap"))
    with bridge_for(config, pos) as bridge, listening(bridge):
        seeded = app.seed_online_order(
            "STORE-1", kind="SHIP_TO_STORE", lines=lines, carrier="UPS", tracking_number="1ZASN"
        )
        (fo,) = pos.wait_for(1)
        assert (fo.kind, fo.status) == (FulfillmentKind.SHIP_TO_STORE, "IN_TRANSIT")
        merchant = bridge.for_merchant("ACME")
        (asn,) = merchant.get_order(fo.order_id).shipments
        assert (asn.carrier, asn.tracking_number, asn.status) == ("UPS", "1ZASN", "IN_TRANSIT")
        tee, cap = fo.lines
        merchant.update_fulfillment(
            step(
                fo.fulfillment_order_id,
                FulfillmentAction.RECEIVED,
                lines=(FulfillmentLine(tee.line_id, D(2)),),
            )
        )
        assert app.store.fulfillment_order(fo.fulfillment_order_id).status == "PARTIALLY_RECEIVED"
        assert merchant.get_order(fo.order_id).shipments[0].status == "IN_TRANSIT"
        merchant.update_fulfillment(
            step(
                fo.fulfillment_order_id,
                FulfillmentAction.RECEIVED,
                lines=(FulfillmentLine(tee.line_id, D(1)), FulfillmentLine(cap.line_id, D(1))),
            )
        )
        assert app.store.fulfillment_order(fo.fulfillment_order_id).status == "RECEIVED"
        assert merchant.get_order(fo.order_id).shipments[0].status == "DELIVERED"
        merchant.update_fulfillment(
            step(fo.fulfillment_order_id, FulfillmentAction.READY_FOR_PICKUP)
        )
        merchant.update_fulfillment(step(fo.fulfillment_order_id, FulfillmentAction.PICKED_UP))
        assert merchant.get_order(seeded.order.order_id).status == "FULFILLED"


def test_restart_in_the_middle_misses_nothing_and_handles_nothing_twice(
    config: Path, app: SpiApp
) -> None:
    first, second = Pos(), Pos()
    with bridge_for(config, first) as bridge, listening(bridge):
        before = [app.seed_online_order("S1").fulfillment_order for _ in range(3)]
        first.wait_for(3)
    during = [app.seed_online_order("S2").fulfillment_order for _ in range(3)]
    with bridge_for(config, second) as bridge, listening(bridge):
        after = [app.seed_online_order("S1").fulfillment_order for _ in range(2)]
        second.wait_for(5)
        checkpoint = bridge.store.checkpoint("ACME", "fulfillment")
    assert first.ids() == [fo.fulfillment_order_id for fo in before]
    assert second.ids() == [fo.fulfillment_order_id for fo in during + after]
    # The feed delivers everything again from the start: every event id was seen, none handled.
    third = Pos()
    with bridge_for(config, third) as bridge:
        bridge.store.save_checkpoint("ACME", "fulfillment", "0")
        with listening(bridge) as listener:
            deadline = time.monotonic() + 10
            while listener.checkpoint != checkpoint and time.monotonic() < deadline:
                time.sleep(0.05)
            assert listener.checkpoint == checkpoint
    assert third.ids() == []


def test_boris_return_refunds_the_original_card(config: Path, app: SpiApp) -> None:
    seeded = app.seed_online_order("STORE-1", kind="PICKUP", fulfilled=True)
    with bridge_for(config, Pos()) as bridge:
        merchant = bridge.for_merchant("ACME")
        backend = merchant.backend
        detail = backend.get_order_for_return(seeded.order.order_number)  # type: ignore[attr-defined]
        (card,) = detail.payments
        line = detail.lines[0]
        refund = -line.unit_price
        returned = Transaction(
            transaction_id="BORIS-1",
            kind=TransactionKind.RETURN,
            created_at=datetime.now(UTC),
            currency="USD",
            store_id="STORE-1",
            lines=(
                LineItem(
                    1,
                    line.sku,
                    D(1),
                    line.unit_price,
                    kind=LineKind.RETURN,
                    return_reason="Too small",
                    original=OriginalLine(detail.order_id, line_number=line.line_number),
                ),
            ),
            total=refund,
            tenders=(CardTender(refund, brand=card.brand, last4=card.last4),),
        )
        result = merchant.post(returned)
        assert result.created
        # The return folds into the original: its refund is listed after the sale's payment.
        back = merchant.get_order(result.order_id)
        assert back.order_id == detail.order_id
        assert [(p.amount, p.last4) for p in back.payments] == [
            (card.amount, card.last4),
            (refund, card.last4),
        ]
        assert backend.get_order_for_return(detail.order_id).lines[0].quantity_returnable == D(1)  # type: ignore[attr-defined]
