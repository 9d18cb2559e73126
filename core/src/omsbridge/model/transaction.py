"""The write side: a POS transaction (sale, return or exchange) and its parts.

Amounts are ``Decimal`` in the transaction's ``currency``. Line and charge amounts are positive;
direction comes from the line's ``kind`` (a RETURN line gives money back). ``Transaction.total``
and tender amounts are signed: positive when the customer pays, negative for a refund.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import attrs

from omsbridge.errors import InvalidTransaction
from omsbridge.model._checks import Checker, decimal_places, exact, indexed, minor_units, money_sum
from omsbridge.model.common import Address, Adjustment, Customer, TaxLine
from omsbridge.model.tenders import Tender

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,79}$")
_SUBTYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class TransactionKind(StrEnum):
    """What the transaction does: sell, take back, or both at once."""

    SALE = "SALE"
    RETURN = "RETURN"
    EXCHANGE = "EXCHANGE"


class LineKind(StrEnum):
    """Whether a line sells goods or takes them back."""

    SALE = "SALE"
    RETURN = "RETURN"


class FulfillmentType(StrEnum):
    """How goods reach the customer; with the subtype it names the OMS delivery method."""

    IN_STORE = "IN_STORE"  # take-with (DEFAULT) or picked up later (PICKUP_LATER)
    ONLINE = "ONLINE"  # endless aisle: shipped to the customer from elsewhere
    SHIP_TO_STORE = "SHIP_TO_STORE"  # shipped to a store, collected there


@attrs.frozen
class Fulfillment:
    """How a group of lines is fulfilled. Lines with equal fulfillments form one delivery group.

    ``IN_STORE/DEFAULT`` is a take-with sale, ``IN_STORE/PICKUP_LATER`` an in-store order picked
    up later, ``ONLINE/DEFAULT`` an endless-aisle order shipped to ``ship_to``, and
    ``SHIP_TO_STORE`` goods sent to ``store_id`` for collection.
    """

    type: FulfillmentType = FulfillmentType.IN_STORE
    subtype: str = "DEFAULT"
    store_id: str | None = None
    ship_to: Address | None = None
    location_id: str | None = None
    shipping_method: str | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.require(
            isinstance(self.type, FulfillmentType),
            "type",
            f"must be one of {', '.join(FulfillmentType)}, got {self.type!r}",
        )
        check.require(
            isinstance(self.subtype, str) and bool(_SUBTYPE.match(self.subtype)),
            "subtype",
            f"must be an upper-case identifier such as DEFAULT or PICKUP_LATER, got {self.subtype!r}",
        )
        if self.type == FulfillmentType.ONLINE:
            check.require(self.ship_to is not None, "ship_to", "is required for ONLINE fulfillment")
        if self.type == FulfillmentType.SHIP_TO_STORE:
            check.text(self.store_id, "store_id")
        for name in ("store_id", "location_id", "shipping_method"):
            check.text(getattr(self, name), name, optional=True)
        check.done()

    @property
    def method_name(self) -> str:
        """The delivery-method name the OMS knows it by: ``FulfillmentType-FulfillmentSubType``."""
        return f"{self.type}-{self.subtype}"

    @property
    def is_take_with(self) -> bool:
        """True for goods handed over at the register (nothing left to fulfil)."""
        return self.type == FulfillmentType.IN_STORE and self.subtype == "DEFAULT"


@attrs.frozen
class OriginalLine:
    """Where a returned line was bought: the original order and, when known, its line.

    ``purchased_quantity``, when given, caps how many may be returned.
    """

    order_id: str
    line_number: int | None = None
    line_id: str | None = None
    purchased_quantity: Decimal | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.text(self.order_id, "order_id", max_len=80)
        if self.line_number is not None:
            check.require(
                isinstance(self.line_number, int) and self.line_number >= 1,
                "line_number",
                f"must be >= 1, got {self.line_number}",
            )
        check.text(self.line_id, "line_id", optional=True, max_len=80)
        check.decimal(self.purchased_quantity, "purchased_quantity", optional=True, positive=True)
        check.done()


@attrs.frozen
class LineItem:
    """One line of a transaction: a product sold or returned, with its taxes and adjustments.

    ``line_id`` is the POS's own id for the line; backends keep it as the external order-item id
    so that a later return can find the line again.
    """

    line_number: int
    sku: str
    quantity: Decimal
    unit_price: Decimal
    name: str | None = None
    kind: LineKind = LineKind.SALE
    line_id: str | None = None
    taxes: tuple[TaxLine, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()
    fulfillment: Fulfillment = Fulfillment()
    return_reason: str | None = None
    original: OriginalLine | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.require(
            isinstance(self.line_number, int)
            and not isinstance(self.line_number, bool)
            and self.line_number >= 1,
            "line_number",
            f"must be >= 1, got {self.line_number}",
        )
        check.text(self.sku, "sku", max_len=80)
        check.text(self.name, "name", optional=True)
        check.text(self.line_id, "line_id", optional=True, max_len=80)
        qty_ok = check.decimal(self.quantity, "quantity", positive=True)
        price_ok = check.decimal(self.unit_price, "unit_price", non_negative=True)
        if self.kind == LineKind.RETURN:
            check.text(self.return_reason, "return_reason")
        else:
            check.require(
                self.return_reason is None, "return_reason", "only a RETURN line has a reason"
            )
            check.require(self.original is None, "original", "only a RETURN line has an original")
        if qty_ok and self.original is not None and self.original.purchased_quantity is not None:
            bought = self.original.purchased_quantity
            check.require(
                self.quantity <= bought,
                "quantity",
                f"returns {self.quantity} but only {bought} were bought on the original line",
            )
        adjustments_ok = all(
            check.decimal(a.amount, f"adjustments[{j}].amount")
            for j, a in enumerate(self.adjustments)
        )
        if qty_ok and price_ok and adjustments_ok:
            check.require(
                self.subtotal + self.discount >= 0,
                "adjustments",
                f"discounts {self.discount} exceed the line subtotal {self.subtotal}",
            )
        check.done()

    # The amounts below are computed once per line (cached_property: the line is frozen, so
    # they cannot change): validation, the backends' graphs and totals read them many times.
    @functools.cached_property
    def subtotal(self) -> Decimal:
        """Quantity times unit price, before adjustments and tax (exact, never rounded)."""
        with exact():
            return self.quantity * self.unit_price

    @functools.cached_property
    def discount(self) -> Decimal:
        """Sum of the line's adjustments (negative for discounts)."""
        return money_sum(a.amount for a in self.adjustments)

    @functools.cached_property
    def tax(self) -> Decimal:
        """Sum of the line's taxes."""
        return money_sum(t.amount for t in self.taxes)

    @functools.cached_property
    def total(self) -> Decimal:
        """What the line is worth: subtotal plus adjustments plus tax (always >= 0)."""
        with exact():
            return self.subtotal + self.discount + self.tax

    @property
    def signed_total(self) -> Decimal:
        """The line's total as it counts toward the transaction: negative for a RETURN line."""
        return -self.total if self.kind == LineKind.RETURN else self.total


class ChargeType(StrEnum):
    """What a non-product charge is for."""

    DELIVERY = "DELIVERY"
    SERVICE = "SERVICE"


@attrs.frozen
class Charge:
    """A charge that is not a product, such as delivery; it belongs to a fulfillment group."""

    type: ChargeType
    amount: Decimal
    fulfillment: Fulfillment = Fulfillment()
    name: str | None = None
    taxes: tuple[TaxLine, ...] = ()

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.require(
            isinstance(self.type, ChargeType),
            "type",
            f"must be one of {', '.join(ChargeType)}, got {self.type!r}",
        )
        check.decimal(self.amount, "amount", non_negative=True)
        check.text(self.name, "name", optional=True)
        check.done()

    @property
    def total(self) -> Decimal:
        """Amount plus taxes."""
        with exact():
            return self.amount + money_sum(t.amount for t in self.taxes)


@attrs.frozen
class Transaction:
    """A complete POS transaction, posted to the merchant's OMS as one order.

    ``transaction_id`` is the POS's unique id: posting is idempotent on it. Construction checks
    every invariant and raises :class:`~omsbridge.errors.InvalidTransaction` naming each broken
    field, e.g. ``lines[2].quantity: must be > 0, got -1``.
    """

    transaction_id: str
    kind: TransactionKind
    created_at: datetime
    currency: str
    store_id: str
    lines: tuple[LineItem, ...]
    total: Decimal
    tenders: tuple[Tender, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()
    charges: tuple[Charge, ...] = ()
    customer: Customer | None = None
    order_number: str | None = None
    register_id: str | None = None
    associate_id: str | None = None
    locale: str | None = None
    region: str | None = None
    attributes: Mapping[str, str] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.require(
            isinstance(self.transaction_id, str) and bool(_ID.match(self.transaction_id)),
            "transaction_id",
            "must be 1-80 characters of letters, digits and . _ : - (starting with a letter or "
            f"digit), got {self.transaction_id!r}",
        )
        check.require(
            isinstance(self.kind, TransactionKind),
            "kind",
            f"must be one of {', '.join(TransactionKind)}, got {self.kind!r}",
        )
        check.aware(self.created_at, "created_at")
        currency_ok = check.require(
            isinstance(self.currency, str) and bool(_CURRENCY.match(self.currency)),
            "currency",
            f"must be an ISO 4217 code such as USD, got {self.currency!r}",
        )
        check.text(self.store_id, "store_id", max_len=80)
        for name in ("order_number", "register_id", "associate_id", "locale", "region"):
            check.text(getattr(self, name), name, optional=True, max_len=80)
        for key, value in dict(self.attributes).items():
            check.require(
                isinstance(key, str) and isinstance(value, str),
                f"attributes.{key}",
                "attribute names and values must be strings",
            )
        total_ok = check.decimal(self.total, "total")
        if not self.lines:
            check.fail("lines", "a transaction needs at least one line")
        self._check_lines(check)
        if currency_ok:
            self._check_precision(check, minor_units(self.currency))
        if total_ok and not check.issues:
            self._check_totals(check)
        check.done()

    def _check_lines(self, check: Checker) -> None:
        seen: dict[int, int] = {}
        for i, line in enumerate(self.lines):
            if line.line_number in seen:
                check.fail(
                    f"lines[{i}].line_number",
                    f"{line.line_number} is already used by lines[{seen[line.line_number]}]",
                )
            seen.setdefault(line.line_number, i)
        ids: dict[str, int] = {}
        for i, line in enumerate(self.lines):
            if line.line_id is None:
                continue
            if line.line_id in ids:
                check.fail(
                    f"lines[{i}].line_id",
                    f"{line.line_id!r} is already used by lines[{ids[line.line_id]}]",
                )
            ids.setdefault(line.line_id, i)
        groups = {line.fulfillment for line in self.lines if line.kind == LineKind.SALE}
        for path, charge in indexed("charges", self.charges):
            if charge.fulfillment not in groups:
                check.fail(
                    f"{path}.fulfillment",
                    f"no SALE line is fulfilled by {charge.fulfillment.method_name} with these "
                    "details; a charge belongs to the fulfillment group of its lines",
                )
        kinds = {line.kind for line in self.lines}
        if self.kind == TransactionKind.SALE and LineKind.RETURN in kinds:
            check.fail("kind", "a SALE has only SALE lines; use EXCHANGE to mix in returns")
        if self.kind == TransactionKind.RETURN and LineKind.SALE in kinds:
            check.fail("kind", "a RETURN has only RETURN lines; use EXCHANGE to mix in sales")
        if self.kind == TransactionKind.EXCHANGE and kinds != {LineKind.SALE, LineKind.RETURN}:
            check.fail("kind", "an EXCHANGE needs at least one SALE line and one RETURN line")
        later = next(
            (
                (i, line)
                for i, line in enumerate(self.lines)
                if line.kind == LineKind.SALE and not line.fulfillment.is_take_with
            ),
            None,
        )
        if later is not None and self.customer is None:
            i, line = later
            check.fail(
                "customer",
                f"is required when goods are fulfilled later "
                f"(lines[{i}] is {line.fulfillment.method_name})",
            )

    def _check_precision(self, check: Checker, places: int) -> None:
        """Every amount in the currency's minor units; taxes never negative (kind signs them)."""
        amounts: list[tuple[str, Decimal]] = [("total", self.total)]
        taxes: list[tuple[str, Decimal]] = []
        for path, line in indexed("lines", self.lines):
            amounts.append((f"{path}.unit_price", line.unit_price))
            taxes += [(f"{path}.taxes[{j}].amount", t.amount) for j, t in enumerate(line.taxes)]
            amounts += [
                (f"{path}.adjustments[{j}].amount", a.amount)
                for j, a in enumerate(line.adjustments)
            ]
        amounts += [(f"{p}.amount", a.amount) for p, a in indexed("adjustments", self.adjustments)]
        for path, charge in indexed("charges", self.charges):
            amounts.append((f"{path}.amount", charge.amount))
            taxes += [(f"{path}.taxes[{j}].amount", t.amount) for j, t in enumerate(charge.taxes)]
        for path, tender in indexed("tenders", self.tenders):
            amounts.append((f"{path}.amount", tender.amount))
            for name in ("tendered", "change"):
                value = getattr(tender, name, None)
                if value is not None:
                    amounts.append((f"{path}.{name}", value))
        for path, amount in amounts:
            check.decimal(amount, path, places=places)
        for path, amount in taxes:
            check.decimal(amount, path, places=places, non_negative=True)
        if check.issues:
            return
        for path, line in indexed("lines", self.lines):
            # quantity x unit_price must itself be whole minor units, or no total can match it.
            if decimal_places(line.subtotal) > places:
                check.fail(
                    path,
                    f"quantity {line.quantity} x unit_price {line.unit_price} = {line.subtotal} "
                    f"has more than the {places} decimal places {self.currency} has",
                )

    def _check_totals(self, check: Checker) -> None:
        if self.kind == TransactionKind.SALE and self.total < 0:
            check.fail("total", f"a SALE cannot give money back, got {self.total}")
        if self.kind == TransactionKind.RETURN and self.total > 0:
            check.fail("total", f"a RETURN cannot take money, got {self.total}")
        computed = self.computed_total
        if computed != self.total:
            check.fail(
                "total",
                f"is {self.total} but lines, adjustments and charges add up to {computed}",
            )
        tendered = money_sum(t.amount for t in self.tenders)
        if tendered != self.total:
            check.fail(
                "tenders",
                f"add up to {tendered} but the total is {self.total}"
                + (" (a refund is a negative tender amount)" if self.total < 0 else ""),
            )
        for path, tender in indexed("tenders", self.tenders):
            if tender.amount != 0 and (tender.amount > 0) != (self.total > 0):
                check.fail(
                    f"{path}.amount",
                    f"{tender.amount} has the opposite sign of the total {self.total}",
                )

    @property
    def computed_total(self) -> Decimal:
        """Signed line totals plus order-level adjustments plus charges."""
        with exact():
            return (
                money_sum(line.signed_total for line in self.lines)
                + money_sum(a.amount for a in self.adjustments)
                + money_sum(c.total for c in self.charges)
            )

    @functools.cached_property
    def sale_lines(self) -> tuple[LineItem, ...]:
        """The lines that sell goods."""
        return tuple(line for line in self.lines if line.kind == LineKind.SALE)

    @property
    def return_lines(self) -> tuple[LineItem, ...]:
        """The lines that take goods back."""
        return tuple(line for line in self.lines if line.kind == LineKind.RETURN)

    def fulfillment_groups(self) -> dict[Fulfillment, tuple[LineItem, ...]]:
        """Sale lines grouped by fulfillment, in order of first appearance (one delivery group each)."""
        groups: dict[Fulfillment, list[LineItem]] = {}
        for line in self.sale_lines:
            groups.setdefault(line.fulfillment, []).append(line)
        return {f: tuple(lines) for f, lines in groups.items()}

    def line(self, line_number: int) -> LineItem:
        """The line with this number; :class:`InvalidTransaction` if there is none."""
        for line in self.lines:
            if line.line_number == line_number:
                return line
        raise InvalidTransaction(f"no line {line_number} in transaction {self.transaction_id}")
