"""Omnichannel: fulfillment orders imported from the OMS, their events, and status updates.

A fulfillment order is the OMS asking a store to do something (hand over a BOPIS order, ship a
BOFIS order, receive a ship-to-store parcel). The OMS tells us through events; the store answers
with :class:`FulfillmentUpdate` objects.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import attrs

from omsbridge.model._checks import Checker, indexed
from omsbridge.model.common import Address, Adjustment, Customer, TaxLine


class FulfillmentKind(StrEnum):
    """What a store is asked to do with a fulfillment order."""

    PICKUP = "PICKUP"  # BOPIS: the customer collects it in the store
    SHIP_FROM_STORE = "SHIP_FROM_STORE"  # BOFIS: the store ships it
    SHIP_TO_STORE = "SHIP_TO_STORE"  # inbound to the store for collection


class FulfillmentAction(StrEnum):
    """A step the store reports; each backend maps it to its own status value."""

    PICK = "PICK"
    PACK = "PACK"
    READY_FOR_PICKUP = "READY_FOR_PICKUP"
    PICKED_UP = "PICKED_UP"
    SHIPPED = "SHIPPED"
    RECEIVED = "RECEIVED"  # ship to store: the parcel arrived in the store
    CANCEL = "CANCEL"  # no-show, item unavailable, or cannot fulfil
    REJECT = "REJECT"  # BOFIS: the store cannot fulfil; the OMS re-routes


@attrs.frozen
class FulfillmentOrderLine:
    """One line of a fulfillment order (the POS's order detail)."""

    line_id: str
    sku: str
    quantity: Decimal
    unit_price: Decimal
    name: str | None = None
    order_line_number: int | None = None
    quantity_cancelled: Decimal = Decimal(0)
    taxes: tuple[TaxLine, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()


@attrs.frozen
class FulfillmentOrder:
    """A fulfillment order for one store, in the POS's model (the seed's FO -> Order mapping)."""

    fulfillment_order_id: str
    order_id: str
    status: str
    kind: FulfillmentKind
    lines: tuple[FulfillmentOrderLine, ...]
    currency: str
    order_number: str | None = None
    store_id: str | None = None
    delivery_method: str | None = None
    customer: Customer | None = None
    ship_to: Address | None = None
    created_at: datetime | None = None
    total: Decimal | None = None


@attrs.frozen
class FulfillmentLine:
    """A quantity of one fulfillment-order line, for partial cancels and partial receipts."""

    line_id: str
    quantity: Decimal

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.text(self.line_id, "line_id")
        check.decimal(self.quantity, "quantity", positive=True)
        check.done()


@attrs.frozen
class FulfillmentUpdate:
    """A status step reported by the store for one fulfillment order.

    ``lines`` limits a CANCEL or RECEIVED to part of the order; empty means all of it.
    """

    fulfillment_order_id: str
    action: FulfillmentAction
    lines: tuple[FulfillmentLine, ...] = ()
    reason: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    occurred_at: datetime | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.text(self.fulfillment_order_id, "fulfillment_order_id")
        check.require(
            isinstance(self.action, FulfillmentAction),
            "action",
            f"must be one of {', '.join(FulfillmentAction)}, got {self.action!r}",
        )
        partial = {FulfillmentAction.CANCEL, FulfillmentAction.RECEIVED}
        if self.lines and self.action not in partial:
            check.fail(
                "lines", f"only CANCEL and RECEIVED apply to part of an order, not {self.action}"
            )
        ids = [line.line_id for line in self.lines]
        for path, line in indexed("lines", self.lines):
            check.require(ids.count(line.line_id) == 1, f"{path}.line_id", "appears more than once")
        if self.action in (FulfillmentAction.CANCEL, FulfillmentAction.REJECT):
            check.text(self.reason, "reason")
        check.aware(self.occurred_at, "occurred_at", optional=True)
        check.done()


@attrs.frozen
class FulfillmentEvent:
    """The OMS says a fulfillment order changed status. ``checkpoint`` resumes the feed after it."""

    event_id: str
    fulfillment_order_id: str
    new_status: str
    checkpoint: str
    old_status: str | None = None
    order_id: str | None = None
    occurred_at: datetime | None = None


@attrs.frozen
class EventBatch:
    """Events read from a backend's feed, and the checkpoint after the last of them."""

    events: tuple[FulfillmentEvent, ...]
    checkpoint: str | None
