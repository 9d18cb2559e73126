"""The read side: searching orders and reading one order back, plus the results of writes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

import attrs

from omsbridge.model._checks import Checker, indexed
from omsbridge.model.common import Customer
from omsbridge.model.fulfillment import FulfillmentOrder

MAX_PAGE_SIZE = 200

MAX_CURSOR_LENGTH = 4096
"""Longest search cursor accepted: five 255-character criteria and a position, base64-encoded,
fit (see :mod:`omsbridge.cursor`)."""


class OrderStatus(StrEnum):
    """The normalized status of an order, the same on every backend.

    Core derives it from the lines' quantities (:meth:`of`), so two backends holding the same
    quantities answer the same status by construction; the backend's own word for the order is
    kept beside it (``backend_status``). The first rule that holds wins, over the order's lines
    (units summed over all lines):

    1. ``CANCELLED``: every unit ordered was cancelled;
    2. ``RETURNED``: every unit not cancelled was returned (at least one was);
    3. ``PARTIALLY_RETURNED``: some unit was returned;
    4. ``PARTIALLY_CANCELLED``: some unit was cancelled (none returned);
    5. ``FULFILLED``: every unit not cancelled was handed over or shipped;
    6. ``PARTIALLY_FULFILLED``: some unit was handed over or shipped;
    7. ``OPEN``: nothing happened yet (also an order without lines).
    """

    OPEN = "OPEN"
    PARTIALLY_FULFILLED = "PARTIALLY_FULFILLED"
    FULFILLED = "FULFILLED"
    PARTIALLY_CANCELLED = "PARTIALLY_CANCELLED"
    CANCELLED = "CANCELLED"
    PARTIALLY_RETURNED = "PARTIALLY_RETURNED"
    RETURNED = "RETURNED"

    @classmethod
    def of(cls, lines: Iterable[OrderLine]) -> OrderStatus:
        """The status the quantities of ``lines`` give (the rules above)."""
        ordered = fulfilled = cancelled = returned = Decimal(0)
        for line in lines:
            ordered += line.quantity_ordered
            fulfilled += line.quantity_fulfilled
            cancelled += line.quantity_cancelled
            returned += line.quantity_returned
        kept = ordered - cancelled
        if ordered <= 0:
            return cls.OPEN
        if kept <= 0:
            return cls.CANCELLED
        if returned >= kept:
            return cls.RETURNED
        if returned > 0:
            return cls.PARTIALLY_RETURNED
        if cancelled > 0:
            return cls.PARTIALLY_CANCELLED
        if fulfilled >= kept:
            return cls.FULFILLED
        if fulfilled > 0:
            return cls.PARTIALLY_FULFILLED
        return cls.OPEN


class PaymentKind(StrEnum):
    """How a payment was made: the POS's tender kinds, the same on every backend."""

    CARD = "card"
    CASH = "cash"
    DIGITAL_WALLET = "digital_wallet"
    GIFT_CARD = "gift_card"
    OTHER = "other"
    """A payment the backend cannot place in the kinds above (e.g. an exchange credit)."""


@attrs.frozen
class OrderTotals:
    """An order's money, one meaning on every backend (amounts in the order's currency).

    ``ordered`` is what the order was worth when placed (lines, taxes, adjustments, charges);
    ``cancelled`` and ``returned`` are what cancellations and returns of its goods took off it
    (positive amounts); ``net = ordered - cancelled - returned`` is what the customer keeps
    paying for. A return of an order's goods counts on that order, whichever transaction posted
    it. An order that itself gives money back (a no-receipt return) has a negative ``ordered``.
    """

    ordered: Decimal
    """The order's total as placed (signed: negative for an order that gives money back)."""
    cancelled: Decimal = Decimal(0)
    """Value taken off by cancellations (0 or positive)."""
    returned: Decimal = Decimal(0)
    """Value taken off by returns of the order's goods (0 or positive)."""
    net: Decimal | None = None
    """``ordered - cancelled - returned``; computed when not given, checked when given."""

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.decimal(self.ordered, "ordered")
        check.decimal(self.cancelled, "cancelled", non_negative=True)
        check.decimal(self.returned, "returned", non_negative=True)
        if not check.issues:
            expected = self.ordered - self.cancelled - self.returned
            if self.net is None:
                object.__setattr__(self, "net", expected)
            else:
                check.decimal(self.net, "net")
                if not check.issues:
                    check.require(
                        self.net == expected,
                        "net",
                        f"must be ordered - cancelled - returned = {expected}, got {self.net}",
                    )
        check.done()


@attrs.frozen
class OrderQuery:
    """Search criteria for orders; all given criteria must match. ``cursor`` continues a page."""

    order_number: str | None = None
    """The POS order number (exact match)."""
    first_name: str | None = None
    """Customer first name (exact, case-insensitive where the OMS allows)."""
    last_name: str | None = None
    """Customer last name (exact, case-insensitive where the OMS allows)."""
    email: str | None = None
    """Customer email (exact, case-insensitive)."""
    customer_id: str | None = None
    """The POS customer id, or the OMS's own customer id where the backend says so."""
    placed_from: datetime | None = None
    """Orders placed at or after this time (timezone-aware)."""
    placed_to: datetime | None = None
    """Orders placed at or before this time (timezone-aware)."""
    page_size: int = 20
    """Hits per page, 1 to ``MAX_PAGE_SIZE`` (200)."""
    cursor: str | None = None
    """``OrderPage.next_cursor`` of the previous page: opaque, backend-made; continues that search."""

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
    """The OMS's id of the order (what ``get_order`` takes)."""
    order_number: str
    """The POS order number."""
    placed_at: datetime
    """When the order was placed (timezone-aware)."""
    total: Decimal
    """The order's net total (``OrderTotals.net``: after cancellations and returns)."""
    currency: str
    """ISO 4217 code of ``total``."""
    status: OrderStatus
    """The normalized status, derived by the backend with :meth:`OrderStatus.of` from the line
    quantities it reads with the hit (both first-party backends read them in the same query)."""
    item_count: int
    """Units ordered (the sum of line quantities)."""
    email: str | None = None
    """The customer's email, when known."""
    customer_name: str | None = None
    """The customer's full name, when known."""
    backend_status: str | None = None
    """The backend's own status of the order (free text: ``Created``, ``OPEN``...)."""


@attrs.frozen
class OrderPage:
    """A page of search hits; ``next_cursor`` fetches the next page, None on the last."""

    hits: tuple[OrderHit, ...]
    """The orders of this page, in the backend's order (newest first where it can)."""
    next_cursor: str | None = None
    """Pass as ``OrderQuery.cursor`` for the next page; None on the last page."""
    total_size: int | None = None
    """How many orders match in all, when the OMS says so."""


@attrs.frozen
class OrderLine:
    """One line of an order as the OMS sees it now, with its quantity bookkeeping.

    ``total`` is signed like a transaction's: negative for a line that gives money back (the line
    of a return order). ``external_line_id`` is the POS's ``line_id``; ``line_number`` is the
    OMS's own numbering, which may differ from the POS's (the seed's LineNumber note).
    """

    line_number: int
    """The OMS's number of the line, unique within the order (>= 1; not necessarily 1, 2, 3:
    the reference server numbers lines across orders). The one number every backend takes
    back: ``CancelLine.line_number`` and a return's ``original.line_number`` name a line by it.
    The POS's own line is named by ``external_line_id``."""
    sku: str
    """The product's SKU."""
    quantity_ordered: Decimal
    """Units ordered."""
    unit_price: Decimal
    """Price of one unit before adjustments."""
    total: Decimal
    """The line's total with its taxes and adjustments (signed: negative on a line that gives
    money back). Backends differ on whether cancellations and returns lower it; compare
    :attr:`OrderDetail.totals`, not line totals, across backends."""
    name: str | None = None
    """The product's name, when known."""
    line_id: str | None = None
    """The OMS's own id of the line."""
    external_line_id: str | None = None
    """The POS ``line_id`` the line was posted with."""
    quantity_fulfilled: Decimal = Decimal(0)
    """Units handed over or shipped."""
    quantity_cancelled: Decimal = Decimal(0)
    """Units cancelled."""
    quantity_returned: Decimal = Decimal(0)
    """Units returned."""
    fulfillment_method: str | None = None
    """How the line is fulfilled (the backend's name of the delivery method)."""

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
    """A payment or refund recorded on an order (amount is negative for a refund).

    Every backend lists the tenders of the sale as payments (positive ``amount``) and each
    refund as its own entry (negative ``amount``, the kind of the tender refunded to), so the
    sum of the amounts is the money the merchant keeps.
    """

    payment_id: str
    """The OMS's id of the payment or refund."""
    method: str
    """The backend's label of the payment method (free text: ``card``, ``Visa ****4242``)."""
    amount: Decimal
    """Amount (negative for a refund)."""
    status: str | None = None
    """The OMS's status of the payment, when it has one."""
    brand: str | None = None
    """Card brand as the POS sent it (``VISA``...) or the wallet's name, when known."""
    last4: str | None = None
    """Last four digits of the card (or gift card / wallet token), when known."""
    gateway_reference: str | None = None
    """The payment gateway's reference of the authorisation or capture."""
    kind: PaymentKind = PaymentKind.OTHER
    """How it was paid, normalized: card, cash, digital_wallet, gift_card (other when unknown)."""
    captured: Decimal | None = None
    """Amount captured (for a payment; None on a refund entry or when the backend cannot say)."""
    refunded: Decimal | None = None
    """Amount refunded against this payment, when the backend tracks refunds per payment."""


@attrs.frozen
class Shipment:
    """A package sent for a fulfillment order."""

    shipment_id: str
    """The OMS's id of the shipment."""
    fulfillment_order_id: str | None = None
    """The fulfillment order it ships, when known."""
    carrier: str | None = None
    """Carrier name."""
    tracking_number: str | None = None
    """Carrier tracking number."""
    status: str | None = None
    """The OMS's shipment status."""
    shipped_at: datetime | None = None
    """When it left (timezone-aware)."""


@attrs.frozen
class OrderDetail:
    """Everything about one order, aggregated: lines with quantities, payments, fulfillment, shipments.

    ``return_by`` is the last day a return is accepted, when the backend has such a rule.
    """

    order_id: str
    """The OMS's id of the order: what ``get_order`` takes and ``PostResult.order_id`` gives."""
    order_number: str
    """The POS order number (the OMS's own number where the POS sent none)."""
    backend_status: str
    """The backend's own status of the order (free text); :attr:`status` is the normalized one."""
    placed_at: datetime
    """When the order was placed, in the UTC offset the POS sent (``created_at``'s zone)."""
    currency: str
    """ISO 4217 code of every amount of the order."""
    totals: OrderTotals
    """Ordered, cancelled, returned and net money of the order (see :class:`OrderTotals`)."""
    lines: tuple[OrderLine, ...]
    """The order's lines with their quantity bookkeeping."""
    payments: tuple[Payment, ...] = ()
    """Payments and refunds recorded on the order."""
    fulfillment_orders: tuple[FulfillmentOrder, ...] = ()
    """The order's fulfillment orders (online orders, pickups)."""
    shipments: tuple[Shipment, ...] = ()
    """Packages sent for the order."""
    customer: Customer | None = None
    """The customer, when known."""
    store_id: str | None = None
    """The store where the order was placed, when known."""
    transaction_id: str | None = None
    """The POS transaction id the order was posted with."""
    return_by: date | None = None
    """The last day a return is accepted, when the backend has such a rule."""

    @property
    def status(self) -> OrderStatus:
        """The normalized status: :meth:`OrderStatus.of` the lines (same rules everywhere)."""
        return OrderStatus.of(self.lines)

    @property
    def total(self) -> Decimal:
        """The net total (``totals.net``)."""
        assert self.totals.net is not None  # set by OrderTotals itself
        return self.totals.net

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
    """The posted transaction's id."""
    order_id: str
    """The order ``get_order`` shows the transaction on, the same meaning on every backend: for
    a sale or an exchange, the new order; for a return of goods bought on an order, that
    original order (the return folds into its quantities and totals; with several originals,
    the first line's); for a return with no original (no receipt), the return's own order."""
    order_number: str | None = None
    """The order's number as ``OrderDetail.order_number`` shows it (the POS order number where
    the POS sent one), when known."""
    created: bool = True
    """False when the transaction had been posted before (nothing new was created)."""


@attrs.frozen
class CancelLine:
    """How many of one order line to cancel."""

    line_number: int
    """``OrderLine.line_number`` of the line."""
    quantity: Decimal
    """Units to cancel (positive)."""

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
    """The order the cancellation applied to."""
    cancelled: tuple[CancelLine, ...]
    """The lines and quantities cancelled by this call."""
    status: str | None = None
    """The backend's own status of the order afterwards, when the OMS says (the normalized one
    is ``get_order(order_id).status``)."""
