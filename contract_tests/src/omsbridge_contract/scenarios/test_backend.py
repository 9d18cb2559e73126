"""Scenarios about the backend itself: how it is registered, and what it refuses to do."""

from __future__ import annotations

from decimal import Decimal

import attrs

from omsbridge.config import Secret
from omsbridge.errors import Unsupported
from omsbridge.model import CancelLine, FulfillmentAction, FulfillmentUpdate, OrderQuery
from omsbridge.spi import OPERATION_FLAVOURS, Capability
from omsbridge_contract import data
from omsbridge_contract.checks import raises
from omsbridge_contract.contract import Contract
from omsbridge_contract.registry import scenario


@scenario("the backend class is well formed and builds from the harness's settings", area="backend")
def test_backend_registered(oms: Contract) -> None:
    backend = oms.backend
    cls = type(backend)
    assert isinstance(cls.capabilities, frozenset), "capabilities must be a frozenset"
    unknown = [c for c in cls.capabilities if not isinstance(c, Capability)]
    assert not unknown, f"capabilities must be omsbridge.Capability members, got {unknown}"
    assert attrs.has(cls.config_class), "config_class must be an attrs class"
    assert isinstance(backend.config, cls.config_class), "the backend keeps its settings"
    assert backend.merchant == oms.harness.merchant(), "the backend keeps its MerchantContext"
    for value in _secrets(backend.config):
        shown = repr(backend) + repr(backend.config) + str(backend.config)
        assert value not in shown, "the backend's or its settings' repr reveals a secret"


def _secrets(obj: object) -> list[str]:
    """Every Secret value inside a settings object."""
    if isinstance(obj, Secret):
        return [obj.reveal()]
    if attrs.has(type(obj)):
        return [s for f in attrs.fields(type(obj)) for s in _secrets(getattr(obj, f.name))]
    return []


@scenario(
    "every operation the backend does not declare raises Unsupported, writing nothing",
    area="backend",
    undeclared=True,
)
def test_unsupported_operations_raise(oms: Contract) -> None:
    ref = oms.ref
    missing = [c for c in Capability if not oms.has(c) and c not in OPERATION_FLAVOURS]
    assert missing, "the scenario is gated on a capability left undeclared"
    customer = data.customer(ref)
    sale = data.transaction(ref, [data.line(1, "SKU-UNS-1")], customer=customer)
    refund = data.transaction(
        ref, [data.returned(1, "SKU-UNS-1")], n=2, tenders=("cash",), customer=customer
    )
    exchange = data.transaction(
        ref,
        [data.returned(1, "SKU-UNS-1"), data.line(2, "SKU-UNS-2")],
        n=3,
        customer=customer,
    )
    calls = {
        Capability.POST_SALE: lambda: oms.backend.post(sale),
        Capability.POST_RETURN: lambda: oms.backend.post(refund),
        Capability.POST_EXCHANGE: lambda: oms.backend.post(exchange),
        Capability.CANCEL_ORDER: lambda: oms.backend.cancel_order("CT-none", reason="test"),
        Capability.CANCEL_ITEMS: lambda: oms.backend.cancel_items(
            "CT-none", [CancelLine(1, Decimal(1))], reason="test"
        ),
        Capability.SEARCH_ORDERS: lambda: oms.backend.search_orders(
            OrderQuery(email=customer.email)
        ),
        Capability.GET_ORDER: lambda: oms.backend.get_order("CT-none"),
        Capability.FULFILLMENT_ORDERS: lambda: oms.backend.fulfillment_orders(store_id=data.STORE),
        Capability.UPDATE_FULFILLMENT: lambda: oms.backend.update_fulfillment(
            FulfillmentUpdate("FO-none", FulfillmentAction.PICK)
        ),
        Capability.EVENTS: lambda: oms.backend.events(None),
    }
    before = oms.count()
    for capability in missing:
        try:
            with raises(Unsupported):
                calls[capability]()
        except AssertionError as exc:
            raise AssertionError(
                f"{capability.name} ({capability.value}) is not declared, so it must raise "
                f"Unsupported, never act or return silently: {exc}"
            ) from None
    assert oms.count() == before, "an unsupported operation wrote something"
