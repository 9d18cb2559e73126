"""Local emulators that plugins offer (``omsbridge_register_local_servers``), used by the demo.

A local server may also offer an *OMS side* (:class:`OmsSide`): what the merchant's web shop and
order routing do in the OMS, which the POS never does (place a web order, route an order to a
store). The demo plays omnichannel flows with it, and a contract-suite harness can reuse it
instead of writing the same calls again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import pluggy

from omsbridge.plugins import call_registration, get_plugin_manager

if TYPE_CHECKING:
    from omsbridge.model import Customer, FulfillmentKind

__all__ = ["LocalServer", "OmsSide", "WebLine", "WebOrder", "demo_merchant_id", "local_servers"]


@attrs.frozen
class WebLine:
    """One line of an order placed on the web shop."""

    sku: str
    quantity: Decimal
    unit_price: Decimal
    name: str | None = None


@attrs.frozen
class WebOrder:
    """An order placed on the merchant's web shop, paid by card.

    ``shipped`` means it left the warehouse and reached the customer (it can be returned in a
    store); otherwise it is still open. ``ref`` is unique per order and may name it.
    """

    ref: str
    customer: Customer
    lines: tuple[WebLine, ...]
    placed_at: datetime
    currency: str = "USD"
    shipped: bool = True


class OmsSide(Protocol):
    """What the OMS's own side does, which the POS never does; offered by a local server.

    Both operations go over the emulator's own API, as the merchant's web shop and order
    routing would, and return the id the backend then knows the record by.
    """

    def place_web_order(self, order: WebOrder) -> str:
        """Place ``order`` on the web shop; the backend's order id (what ``get_order`` takes)."""
        ...

    def route_to_store(
        self, store_id: str, kind: FulfillmentKind, *, ref: str, customer: Customer
    ) -> str:
        """Place a web order for two units of ``SKU-<ref>`` at 15.00 and route it to
        ``store_id`` as a fulfillment order of ``kind`` (BOPIS, BOFIS or ship to store),
        waiting on the store; the fulfillment order's id. The OMS announces it on its event
        feed, if it has one."""
        ...


@attrs.define
class LocalServer:
    """A running local emulator of an OMS and how to point a merchant's backend at it.

    ``settings`` is the ``[merchants.ID.<backend>]`` table; secrets in it are ``{ env = ... }``
    references whose values are in ``environment``. ``oms_side`` (optional) plays the OMS's own
    side for omnichannel flows; ``api_calls`` (optional) reads how many API calls the
    emulator has counted so far (Salesforce's DailyApiRequests), so the demo can show what each
    step spent.
    """

    backend: str
    url: str
    settings: Mapping[str, Any]
    stop: Callable[[], None]
    environment: Mapping[str, str] = attrs.field(factory=dict)
    description: str = ""
    oms_side: OmsSide | None = None
    api_calls: Callable[[], int] | None = None


def demo_merchant_id(backend: str) -> str:
    """The demo's merchant id for a backend's local server (``pos-spi`` -> ``DEMO_POS_SPI``)."""
    return "DEMO_" + re.sub(r"[^A-Za-z0-9]+", "_", backend).strip("_").upper()


def local_servers(
    pm: pluggy.PluginManager | None = None,
) -> dict[str, Callable[[], LocalServer]]:
    """Backend name -> start function, for every installed plugin that offers one."""
    found: dict[str, Callable[[], LocalServer]] = {}

    def register(backend: str, start: Callable[[], LocalServer]) -> None:
        found[backend] = start

    call_registration(
        pm or get_plugin_manager(), "omsbridge_register_local_servers", register=register
    )
    return found
