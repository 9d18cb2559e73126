"""The bridge: one backend per merchant, built once, shared by threads; capabilities enforced."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from fakes import MemoryBackend
from test_config import GOOD, write

from omsbridge import Bridge, hookimpl, wire
from omsbridge.errors import NotFound, UnknownMerchant, Unsupported
from omsbridge.model import CancelLine, Transaction


@pytest.fixture
def bridge(tmp_path, pm, registry, monkeypatch):
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    return Bridge.from_config(write(tmp_path, GOOD), registry=registry, plugin_manager=pm)


def test_backend_built_once_even_under_threads(bridge):
    before = MemoryBackend.built
    with ThreadPoolExecutor(8) as pool:
        merchants = list(pool.map(lambda _: bridge.for_merchant("SHOPNOW"), range(64)))
    assert MemoryBackend.built == before + 1
    assert all(m is merchants[0] for m in merchants)
    assert merchants[0].backend.merchant.merchant_id == "SHOPNOW"


def test_post_is_routed_and_observed(bridge, pm, example):
    posted: list[tuple[str, str, bool]] = []

    class Observer:
        @hookimpl
        def omsbridge_order_posted(self, merchant_id, transaction, result):
            posted.append((merchant_id, transaction.transaction_id, result.created))

    pm.register(Observer())
    txn = wire.structure(example("sale-card"), Transaction)
    merchant = bridge.for_merchant("SHOPNOW")
    first = merchant.post(txn)
    again = merchant.post(txn)
    assert (first.created, again.created) == (True, False)
    assert first.order_id == again.order_id
    assert posted == [("SHOPNOW", txn.transaction_id, True), ("SHOPNOW", txn.transaction_id, False)]
    assert merchant.get_order(first.order_id).total == txn.total


def test_post_failure_is_observed(bridge, pm, example, monkeypatch):
    failures = []

    class Observer:
        @hookimpl
        def omsbridge_post_failed(self, merchant_id, error):
            failures.append((merchant_id, type(error).__name__))

    pm.register(Observer())
    merchant = bridge.for_merchant("SHOPNOW")

    def refuse(txn):
        raise NotFound("gone", backend="memory")

    monkeypatch.setattr(merchant.backend, "post", refuse)
    with pytest.raises(NotFound):
        merchant.post(wire.structure(example("sale-cash"), Transaction))
    assert failures == [("SHOPNOW", "NotFound")]


def test_undeclared_capability_raises_unsupported(bridge, example):
    merchant = bridge.for_merchant("SHOPNOW")
    with pytest.raises(Unsupported, match="backend 'memory' does not support cancel_items"):
        merchant.cancel_items("O-1", [CancelLine(1, Decimal(1))], reason="x")
    with pytest.raises(Unsupported, match="post of a EXCHANGE"):
        merchant.post(wire.structure(example("exchange"), Transaction))
    other = bridge.for_merchant("ACME")
    with pytest.raises(Unsupported, match="backend 'other' does not support post"):
        other.backend.post(wire.structure(example("sale-cash"), Transaction))


def test_return_without_receipt_needs_its_capability(bridge, example, monkeypatch):
    merchant = bridge.for_merchant("SHOPNOW")
    sent = []
    monkeypatch.setattr(merchant.backend, "post", sent.append)
    no_receipt = wire.structure(example("return-no-receipt"), Transaction)
    with pytest.raises(Unsupported, match="post of a return without receipt"):
        merchant.post(no_receipt, outbox=False)
    (outcome,) = merchant.post_batch([no_receipt])
    assert isinstance(outcome, Unsupported)
    assert sent == [], "the backend was called for a return it cannot take"
    # A return naming its original order needs only post:return.
    merchant.post(wire.structure(example("return-with-receipt"), Transaction), outbox=False)
    assert len(sent) == 1


def test_unknown_merchant(bridge):
    with pytest.raises(
        UnknownMerchant, match="unknown merchant 'NOPE'; configured merchants: SHOPNOW, ACME"
    ):
        bridge.for_merchant("NOPE")


def test_post_takes_only_transactions(bridge, example):
    with pytest.raises(TypeError, match="post\\(\\) takes a Transaction, got dict"):
        bridge.for_merchant("SHOPNOW").post(example("sale-cash"))  # type: ignore[arg-type]


def test_fulfillment_order_delivery_isolated(bridge, pm):
    got = []

    class Pos:
        @hookimpl
        def omsbridge_fulfillment_order_received(self, merchant_id, fulfillment_order):
            got.append((merchant_id, fulfillment_order))

    class Crashing:
        @hookimpl
        def omsbridge_fulfillment_order_received(self, fulfillment_order):
            raise ValueError("bad store")

    pm.register(Pos())
    pm.register(Crashing())
    failures = bridge.for_merchant("SHOPNOW").deliver("FO-1")  # type: ignore[arg-type]
    assert got == [("SHOPNOW", "FO-1")]
    assert len(failures) == 1


def test_fulfillment_updated_observed(tmp_path, pm, registry, monkeypatch):
    from fakes import MemoryBackend as Base

    from omsbridge import Capability
    from omsbridge.model import FulfillmentAction, FulfillmentUpdate

    sent: list[str] = []
    seen: list[str] = []

    class WithUpdates(Base):
        name = "memory"
        capabilities = Base.capabilities | {Capability.UPDATE_FULFILLMENT}

        def update_fulfillment(self, update):
            sent.append(update.fulfillment_order_id)

    class Observer:
        @hookimpl
        def omsbridge_fulfillment_updated(self, merchant_id, update):
            seen.append(f"{merchant_id}:{update.action}")

    registry._backends.pop("memory")
    registry.register(WithUpdates)
    pm.register(Observer())
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    bridge = Bridge.from_config(write(tmp_path, GOOD), registry=registry, plugin_manager=pm)
    bridge.for_merchant("SHOPNOW").update_fulfillment(
        FulfillmentUpdate("FO-9", FulfillmentAction.PACK)
    )
    assert sent == ["FO-9"] and seen == ["SHOPNOW:PACK"]


def test_close_closes_backends(bridge):
    merchant = bridge.for_merchant("SHOPNOW")
    closed = []
    merchant.backend.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with bridge:
        pass
    assert closed == [True]
