"""Small value objects shared by the write and read sides: people, addresses, taxes, adjustments."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum

import attrs

from omsbridge.model._checks import Checker

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@attrs.frozen
class Address:
    """A postal address (billing, shipping or a store's)."""

    line1: str
    city: str
    country: str
    line2: str | None = None
    region: str | None = None
    postal_code: str | None = None
    name: str | None = None
    phone: str | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.text(self.line1, "line1")
        check.text(self.city, "city")
        if check.require(isinstance(self.country, str), "country", "is required"):
            check.require(
                bool(_COUNTRY.match(self.country)),
                "country",
                f"must be an ISO 3166-1 alpha-2 code such as US, got {self.country!r}",
            )
        for name in ("line2", "region", "postal_code", "name", "phone"):
            check.text(getattr(self, name), name, optional=True)
        check.done()


@attrs.frozen
class Customer:
    """The shopper, when known. An anonymous sale has no customer at all."""

    customer_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    billing_address: Address | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        for name in ("customer_id", "first_name", "last_name", "phone"):
            check.text(getattr(self, name), name, optional=True)
        if self.email is not None:
            check.require(
                isinstance(self.email, str) and bool(_EMAIL.match(self.email)),
                "email",
                f"must be an email address, got {self.email!r}",
            )
        check.require(
            any((self.customer_id, self.email, self.first_name, self.last_name, self.phone)),
            "",
            "a customer needs at least one of customer_id, email, first_name, last_name, phone",
        )
        check.done()

    @property
    def full_name(self) -> str | None:
        """First and last name joined, or None when neither is known."""
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or None


@attrs.frozen
class TaxLine:
    """One tax on a line or charge (amount is what was charged; rate is informational)."""

    name: str
    amount: Decimal
    rate: Decimal | None = None
    code: str | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.text(self.name, "name")
        check.decimal(self.amount, "amount")
        if check.decimal(self.rate, "rate", optional=True, non_negative=True) and self.rate:
            check.require(self.rate <= 1, "rate", f"must be a fraction <= 1, got {self.rate}")
        check.text(self.code, "code", optional=True)
        check.done()


class AdjustmentType(StrEnum):
    """Why a price changed."""

    PROMOTION = "PROMOTION"
    DISCOUNT = "DISCOUNT"
    COUPON = "COUPON"
    PRICE_OVERRIDE = "PRICE_OVERRIDE"


@attrs.frozen
class Adjustment:
    """A price adjustment on a line or on the whole transaction.

    ``amount`` is signed: a discount is negative. Only a ``PRICE_OVERRIDE`` may raise a price, and
    an override must give its ``reason``.
    """

    type: AdjustmentType
    amount: Decimal
    description: str | None = None
    reason: str | None = None
    promotion_id: str | None = None
    code: str | None = None

    def __attrs_post_init__(self) -> None:
        check = Checker()
        check.require(
            isinstance(self.type, AdjustmentType),
            "type",
            f"must be one of {', '.join(AdjustmentType)}, got {self.type!r}",
        )
        if check.decimal(self.amount, "amount") and self.type != AdjustmentType.PRICE_OVERRIDE:
            check.require(
                self.amount <= 0, "amount", f"must be <= 0 (a discount), got {self.amount}"
            )
        if self.type == AdjustmentType.PRICE_OVERRIDE:
            check.text(self.reason, "reason")
        else:
            check.text(self.reason, "reason", optional=True)
        for name in ("description", "promotion_id", "code"):
            check.text(getattr(self, name), name, optional=True)
        check.done()
