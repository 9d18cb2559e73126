"""The OMS side of the reference SPI server: web orders and store routing, over its admin API.

:class:`PosSpiOmsSide` implements :class:`omsbridge.local.OmsSide` with the reference server's
``POST /__admin__/seed-online-order`` (what the merchant's web shop and routing would do in a
real OMS). ``omsbridge demo`` and the contract harness (``omsbridge_posspi.contract_harness``)
both use it, so they send the same requests.
"""

from __future__ import annotations

from typing import Any

import httpx

from omsbridge import wire
from omsbridge.local import WebOrder
from omsbridge.model import Customer, FulfillmentKind

__all__ = ["PosSpiOmsSide"]

_ROUTED_AT = "2026-11-20T12:00:00+00:00"  # when the web shop placed a routed order (fixed)


class PosSpiOmsSide:
    """Web orders and store routing on the reference server; ``http``'s base URL is the server."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def place_web_order(self, order: WebOrder) -> str:
        """An order placed on the web shop and shipped from elsewhere (or still open): no store
        has a fulfillment order for it; the order's id."""
        seeded = self.seed(
            store_id=None,
            kind=None,
            placed_at=order.placed_at.isoformat(),
            customer=order.customer,
            currency=order.currency,
            lines=[
                {
                    "sku": line.sku,
                    "quantity": str(line.quantity),
                    "unit_price": str(line.unit_price),
                    **({"name": line.name} if line.name else {}),
                }
                for line in order.lines
            ],
            fulfilled=order.shipped,
        )
        return str(seeded["order"]["order_id"])

    def route_to_store(
        self, store_id: str, kind: FulfillmentKind, *, ref: str, customer: Customer
    ) -> str:
        """An online order routed to ``store_id`` (BOPIS, BOFIS or ship to store), waiting on
        the store; the fulfillment order's id."""
        seeded = self.seed(
            store_id=store_id,
            kind=kind,
            customer=customer,
            currency="USD",
            lines=[{"sku": f"SKU-{ref}", "quantity": "2", "unit_price": "15.00"}],
            placed_at=_ROUTED_AT,
            fulfilled=False,
        )
        return str(seeded["fulfillment_order"]["fulfillment_order_id"])

    def seed(self, *, customer: Customer, **body: Any) -> dict[str, Any]:
        """``POST /__admin__/seed-online-order``: the server's answer."""
        payload = {**body, "customer": wire.unstructure(customer)}
        response = self.http.post("/__admin__/seed-online-order", json=payload)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer
