"""POS posting flows: sales by tender, in-store order, endless aisle, mixed cart, idempotency."""

from __future__ import annotations

from decimal import Decimal

from omsbridge.errors import InvalidTransaction
from omsbridge.model import CardTender
from omsbridge.spi import Capability
from omsbridge_contract import data
from omsbridge_contract.checks import raises
from omsbridge_contract.contract import Contract
from omsbridge_contract.registry import scenario

SALE = Capability.POST_SALE
DETAIL = Capability.GET_ORDER


@scenario("a take-with sale paid in cash, with taxes and a discount", area="sale", requires=[SALE])
def test_sale_cash(oms: Contract) -> None:
    txn = data.transaction(
        oms.ref,
        [
            data.line(1, "SKU-TEE", 2, "19.99", tax="3.20"),
            data.line(2, "SKU-CAP", 1, "24.00", tax="1.60", discount="4.00"),
        ],
        tenders=("cash",),
    )
    assert txn.total == Decimal("64.78")
    result = oms.post_new(txn)
    detail = oms.verify(txn, result)
    if detail is not None:
        assert [p.amount for p in detail.payments] == [Decimal("64.78")]


@scenario("a take-with sale paid by card", area="sale", requires=[SALE])
def test_sale_card(oms: Contract) -> None:
    txn = data.transaction(oms.ref, [data.line(1, "SKU-JACKET", 1, "129.00", tax="10.32")])
    assert isinstance(txn.tenders[0], CardTender)
    result = oms.post_new(txn)
    detail = oms.verify(txn, result)
    if detail is not None:
        assert any(p.last4 == "4242" for p in detail.payments), (
            f"the card's last four digits are lost: {detail.payments}"
        )


@scenario("a take-with sale paid with a digital wallet", area="sale", requires=[SALE])
def test_sale_digital_wallet(oms: Contract) -> None:
    txn = data.transaction(
        oms.ref, [data.line(1, "SKU-SOCKS", 3, "6.50", tax="1.56")], tenders=("wallet",)
    )
    result = oms.post_new(txn)
    detail = oms.verify(txn, result)
    if detail is not None:
        assert len(detail.payments) == 1
        assert detail.payments[0].amount == Decimal("21.06")


@scenario(
    "a sale split over card, gift card and cash: one payment per tender",
    area="sale",
    requires=[SALE],
)
def test_sale_split_tender(oms: Contract) -> None:
    txn = data.transaction(
        oms.ref,
        [data.line(1, "SKU-BOOTS", 1, "89.00", tax="7.12"), data.line(2, "SKU-LACES", 2, "3.00")],
        tenders=(("card", "50.00"), ("gift", "25.00"), "cash"),
    )
    assert [t.amount for t in txn.tenders] == [Decimal("50.00"), Decimal("25.00"), Decimal("27.12")]
    result = oms.post_new(txn)
    detail = oms.verify(txn, result)
    if detail is not None:
        assert len(detail.payments) == 3, f"one payment per tender, got {detail.payments}"


@scenario(
    "an in-store order picked up later (IN_STORE/PICKUP_LATER): open, not fulfilled",
    area="sale",
    requires=[SALE],
)
def test_in_store_order_pickup_later(oms: Contract) -> None:
    txn = data.transaction(
        oms.ref,
        [data.line(1, "SKU-SOFA", 1, "899.00", tax="71.92", fulfillment=data.PICKUP_LATER)],
        customer=data.customer(oms.ref),
    )
    result = oms.post_new(txn)
    detail = oms.verify(txn, result)
    if detail is not None:
        assert detail.customer is not None, "the order lost its customer"
        assert detail.customer.email == data.customer(oms.ref).email


@scenario(
    "an endless-aisle order shipped to the customer (ONLINE/DEFAULT) with a delivery charge",
    area="sale",
    requires=[SALE],
)
def test_endless_aisle_order(oms: Contract) -> None:
    online = data.online()
    txn = data.transaction(
        oms.ref,
        [data.line(1, "SKU-TENT", 1, "249.00", tax="19.92", fulfillment=online)],
        customer=data.customer(oms.ref),
        charges=[data.delivery_charge("12.00", online)],
    )
    assert txn.total == Decimal("280.92"), "the delivery charge counts toward the total"
    result = oms.post_new(txn)
    oms.verify(txn, result)


@scenario(
    "a mixed cart: take-with, pickup-later and ship-to-customer lines in one order",
    area="sale",
    requires=[SALE],
)
def test_mixed_cart_order(oms: Contract) -> None:
    online = data.online()
    txn = data.transaction(
        oms.ref,
        [
            data.line(1, "SKU-MUG", 2, "12.00", tax="1.92"),
            data.line(2, "SKU-TABLE", 1, "340.00", tax="27.20", fulfillment=data.PICKUP_LATER),
            data.line(3, "SKU-LAMP", 1, "75.00", tax="6.00", fulfillment=online),
        ],
        tenders=(("gift", "100.00"), "card"),
        customer=data.customer(oms.ref),
        charges=[data.delivery_charge("9.95", online)],
    )
    result = oms.post_new(txn)
    detail = oms.verify(txn, result)
    if detail is not None:
        methods = sorted(str(line.fulfillment_method) for line in detail.lines)
        assert methods == ["IN_STORE-DEFAULT", "IN_STORE-PICKUP_LATER", "ONLINE-DEFAULT"]


@scenario(
    "posting the same transaction again answers the same order with created=False: no second order",
    area="sale",
    requires=[SALE],
)
def test_post_idempotent_repost(oms: Contract) -> None:
    txn = data.transaction(oms.ref, [data.line(1, "SKU-BELT", 1, "35.00", tax="2.80")])
    before = oms.count()
    first = oms.post(txn, created=True)
    again = oms.post(txn, created=False)
    assert again.order_id == first.order_id, (
        f"the re-post answered order {again.order_id}, the first post {first.order_id}"
    )
    if first.order_number is not None and again.order_number is not None:
        assert again.order_number == first.order_number
    assert oms.count() == before + 1, (
        f"two posts of {txn.transaction_id} must leave one order: "
        f"order_count went from {before} to {oms.count()}"
    )
    if oms.has(DETAIL):
        assert oms.detail(first.order_id).total == txn.total


@scenario(
    "a transaction that breaks the model's rules is refused with InvalidTransaction naming "
    "the field, and nothing is written",
    area="bad input",
    requires=[SALE],
)
def test_bad_input_invalid_transaction(oms: Contract) -> None:
    txn = data.transaction(oms.ref, [data.line(1, "SKU-BAD", 1, "10.00")], tenders=("cash",))
    # Built around the constructor's checks, as a transaction read by another tool could be:
    # the backend (or the system behind it) must still refuse it, naming the field.
    object.__setattr__(txn.lines[0], "quantity", Decimal(-1))
    before = oms.count()
    with raises(InvalidTransaction, path="lines[0].quantity"):
        oms.backend.post(txn)
    assert oms.count() == before, "a refused transaction wrote an order"
