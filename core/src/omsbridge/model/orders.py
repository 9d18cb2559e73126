"""The read side: searching orders and reading one order back, plus the results of writes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import attrs

from omsbridge.model._checks import Checker, indexed
from omsbridge.model.common import Customer
from omsbridge.model.fulfillment import FulfillmentOrder

MAX_PAGE_SIZE = 200

MAX_CURSOR_LENGTH = 4096
"""Longest search cursor accepted: five 255-character criteria and a position, base64-encoded,
fit (see :mod:`omsbridge.cursor`)."""


@attrs.frozen
class OrderQuery:
    """Search criteria for orders; all given criteria must match. ``cursor`` continues a page."""

    order_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    customer_id: str | None = None
    placed_from: datetime | None = None
    placed_to: datetime | None = None
    page_size: int = 20
    cursor: str | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        for name in ("order_number", "first_name", "last_name", "email", "customer_id"):
            check.text(getattr(self, name), name, optional=True, max_len=255)
        check.text(self.cursor, "cursor", optional=True, max_len=MAX_CURSOR_LENGTH)
        check.aware(self.placed_from, "placed_from", optional=True)
        check.aware(self.placed_to, "placed_to", optional=True)
        if (
            not check.issues
            and self.placed_from is not None
            and self.placed_to is not None
            and self.placed_from > self.placed_to
        ):
            check.fail("placed_to", f"must not be before placed_from ({self.placed_from})")
        check.require(
            isinstance(self.page_size, int) and 1 <= self.page_size <= MAX_PAGE_SIZE,
            "page_size",
            f"must be 1-{MAX_PAGE_SIZE}, got {self.page_size}",
        )
        check.require(
            self.cursor is not None or any(self.criteria.values()),
            "",
            "give at least one of order_number, first_name, last_name, email, customer_id, "
            "placed_from, placed_to",
        )
        check.done()

    @property
    def criteria(self) -> dict[str, object]:
        """The criteria that were given, by name."""
        names = ("order_number", "first_name", "last_name", "email", "customer_id")
        found: dict[str, object] = {n: getattr(self, n) for n in names if getattr(self, n)}
        for name in ("placed_from", "placed_to"):
            if getattr(self, name) is not None:
                found[name] = getattr(self, name)
        return found


@attrs.frozen
class OrderHit:
    """One order in a search result (the seed's fields: email, order id, total, date, count, status)."""

    order_id: str
    order_number: str
    placed_at: datetime
    total: Decimal
    currency: str
    status: str
    item_count: int
    email: str | None = None
    customer_name: str | None = None


@attrs.frozen
class OrderPage:
    """A page of search hits; ``next_cursor`` fetches the next page, None on the last."""

    hits: tuple[OrderHit, ...]
    next_cursor: str | None = None
    total_size: int | None = None


@attrs.frozen
class OrderLine:
    """One line of an order as the OMS sees it now, with its quantity bookkeeping.

    ``total`` is signed like a transaction's: negative for a line that gives money back (the line
    of a return order). ``external_line_id`` is the POS's ``line_id``; ``line_number`` is the
    OMS's own numbering, which may differ (the seed's LineNumber note).
    """

    line_number: int
    sku: str
    quantity_ordered: Decimal
    unit_price: Decimal
    total: Decimal
    name: str | None = None
    line_id: str | None = None
    external_line_id: str | None = None
    quantity_fulfilled: Decimal = Decimal(0)
    quantity_cancelled: Decimal = Decimal(0)
    quantity_returned: Decimal = Decimal(0)
    fulfillment_method: str | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        for name in ("quantity_ordered", "quantity_fulfilled", "quantity_cancelled"):
            check.decimal(getattr(self, name), name, non_negative=True)
        check.decimal(self.quantity_returned, "quantity_returned", non_negative=True)
        if not check.issues:
            check.require(
                self.quantity_cancelled + self.quantity_returned <= self.quantity_ordered,
                "quantity_cancelled",
                f"cancelled {self.quantity_cancelled} plus returned {self.quantity_returned} "
                f"exceed ordered {self.quantity_ordered}",
            )
        check.done()

    @property
    def quantity_open(self) -> Decimal:
        """Ordered but neither fulfilled nor cancelled: what can still be cancelled."""
        return max(
            Decimal(0), self.quantity_ordered - self.quantity_fulfilled - self.quantity_cancelled
        )

    @property
    def quantity_returnable(self) -> Decimal:
        """Fulfilled and not yet returned: what can still be returned."""
        return max(Decimal(0), self.quantity_fulfilled - self.quantity_returned)


@attrs.frozen
class Payment:
    """A payment or refund recorded on an order (amount is negative for a refund)."""

    payment_id: str
    method: str
    amount: Decimal
    status: str | None = None
    brand: str | None = None
    last4: str | None = None
    gateway_reference: str | None = None


@attrs.frozen
class Shipment:
    """A package sent for a fulfillment order."""

    shipment_id: str
    fulfillment_order_id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    status: str | None = None
    shipped_at: datetime | None = None


@attrs.frozen
class OrderDetail:
    """Everything about one order, aggregated: lines with quantities, payments, fulfillment, shipments.

    ``return_by`` is the last day a return is accepted, when the backend has such a rule.
    """

    order_id: str
    order_number: str
    status: str
    placed_at: datetime
    currency: str
    total: Decimal
    lines: tuple[OrderLine, ...]
    payments: tuple[Payment, ...] = ()
    fulfillment_orders: tuple[FulfillmentOrder, ...] = ()
    shipments: tuple[Shipment, ...] = ()
    customer: Customer | None = None
    store_id: str | None = None
    transaction_id: str | None = None
    return_by: date | None = None

    def line(self, line_number: int) -> OrderLine:
        """The line with this number (KeyError if there is none)."""
        for line in self.lines:
            if line.line_number == line_number:
                return line
        raise KeyError(line_number)

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.aware(self.placed_at, "placed_at")
        numbers = [line.line_number for line in self.lines]
        for path, line in indexed("lines", self.lines):
            check.require(
                numbers.count(line.line_number) == 1,
                f"{path}.line_number",
                f"{line.line_number} appears more than once",
            )
        check.done()


@attrs.frozen
class PostResult:
    """What posting a transaction produced. ``created`` is False when it had been posted before."""

    transaction_id: str
    order_id: str
    order_number: str | None = None
    created: bool = True


@attrs.frozen
class CancelLine:
    """How many of one order line to cancel."""

    line_number: int
    quantity: Decimal

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.require(
            isinstance(self.line_number, int) and self.line_number >= 1,
            "line_number",
            f"must be >= 1, got {self.line_number}",
        )
        check.decimal(self.quantity, "quantity", positive=True)
        check.done()


@attrs.frozen
class CancelResult:
    """What a cancellation did: the order and the lines (and quantities) now cancelled."""

    order_id: str
    cancelled: tuple[CancelLine, ...]
    status: str | None = None
