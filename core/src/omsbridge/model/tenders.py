"""How a transaction was paid (or refunded): card, cash, digital wallet, gift card.

In the native JSON a tender is an object with a ``type`` tag: ``card``, ``cash``,
``digital_wallet`` or ``gift_card``. ``amount`` is signed like the transaction total: negative
for money given back.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import ClassVar

import attrs

from omsbridge.model._checks import Checker, exact

_LAST4 = re.compile(r"^[0-9]{4}$")


def _check_common(tender: _TenderBase, check: Checker) -> bool:
    """Check the fields every tender has; True when ``amount`` is a usable number."""
    ok = check.decimal(tender.amount, "amount")
    check.text(tender.tender_id, "tender_id", optional=True, max_len=80)
    check.text(tender.gateway_reference, "gateway_reference", optional=True)
    return ok


@attrs.frozen
class _TenderBase:
    amount: Decimal
    tender_id: str | None = attrs.field(default=None, kw_only=True)
    gateway_reference: str | None = attrs.field(default=None, kw_only=True)

    tag: ClassVar[str]


@attrs.frozen
class CardTender(_TenderBase):
    """A credit or debit card, authorised at the register (the OMS records it as External)."""

    brand: str = attrs.field(kw_only=True)
    last4: str = attrs.field(kw_only=True)
    auth_code: str | None = attrs.field(default=None, kw_only=True)
    cardholder_name: str | None = attrs.field(default=None, kw_only=True)
    expiry_month: int | None = attrs.field(default=None, kw_only=True)
    expiry_year: int | None = attrs.field(default=None, kw_only=True)

    tag: ClassVar[str] = "card"

    def __attrs_post_init__(self) -> None:
        check = Checker()
        _check_common(self, check)
        check.text(self.brand, "brand", max_len=40)
        check.require(
            isinstance(self.last4, str) and bool(_LAST4.match(self.last4)),
            "last4",
            f"must be exactly 4 digits, got {self.last4!r}",
        )
        check.text(self.auth_code, "auth_code", optional=True, max_len=40)
        check.text(self.cardholder_name, "cardholder_name", optional=True)
        if self.expiry_month is not None:
            check.require(
                isinstance(self.expiry_month, int) and 1 <= self.expiry_month <= 12,
                "expiry_month",
                f"must be 1-12, got {self.expiry_month}",
            )
        if self.expiry_year is not None:
            check.require(
                isinstance(self.expiry_year, int) and 2000 <= self.expiry_year <= 2199,
                "expiry_year",
                f"must be a four-digit year, got {self.expiry_year}",
            )
        check.done()


@attrs.frozen
class CashTender(_TenderBase):
    """Cash. ``tendered`` and ``change`` are optional; when both are given they must match amount."""

    tendered: Decimal | None = attrs.field(default=None, kw_only=True)
    change: Decimal | None = attrs.field(default=None, kw_only=True)

    tag: ClassVar[str] = "cash"

    def __attrs_post_init__(self) -> None:
        check = Checker()
        ok = _check_common(self, check)
        ok = check.decimal(self.tendered, "tendered", optional=True, non_negative=True) and ok
        ok = check.decimal(self.change, "change", optional=True, non_negative=True) and ok
        if ok and self.tendered is not None and self.change is not None:
            with exact():
                balanced = self.tendered - self.change == self.amount
            check.require(
                balanced,
                "change",
                f"tendered {self.tendered} minus change {self.change} must equal amount "
                f"{self.amount}",
            )
        check.done()


@attrs.frozen
class DigitalWalletTender(_TenderBase):
    """A digital wallet payment such as Apple Pay or Google Pay."""

    wallet: str = attrs.field(kw_only=True)
    last4: str | None = attrs.field(default=None, kw_only=True)

    tag: ClassVar[str] = "digital_wallet"

    def __attrs_post_init__(self) -> None:
        check = Checker()
        _check_common(self, check)
        check.text(self.wallet, "wallet", max_len=40)
        if self.last4 is not None:
            check.require(
                bool(_LAST4.match(self.last4)),
                "last4",
                f"must be exactly 4 digits, got {self.last4!r}",
            )
        check.done()


@attrs.frozen
class GiftCardTender(_TenderBase):
    """A gift card; only its last four digits are ever carried."""

    last4: str = attrs.field(kw_only=True)

    tag: ClassVar[str] = "gift_card"

    def __attrs_post_init__(self) -> None:
        check = Checker()
        _check_common(self, check)
        check.require(
            isinstance(self.last4, str) and bool(_LAST4.match(self.last4)),
            "last4",
            f"must be exactly 4 digits, got {self.last4!r}",
        )
        check.done()


Tender = CardTender | CashTender | DigitalWalletTender | GiftCardTender
"""Any tender; the native JSON tells them apart by ``type``."""

TENDER_TYPES: tuple[type[_TenderBase], ...] = (
    CardTender,
    CashTender,
    DigitalWalletTender,
    GiftCardTender,
)
