"""The normalized read model: the same transactions give the same answers on every backend.

Status (derived from the line quantities), totals (ordered, cancelled, returned, net), the zone
of ``placed_at``, payments (kind, brand, last 4), the customer and the store; and a return's
original named by its POS order number or by the backend's order id, ``post`` answering that
original order.
"""

from __future__ import annotations

from decimal import Decimal

from omsbridge.model import (
    CancelLine,
    OrderDetail,
    OrderQuery,
    OrderStatus,
    OrderTotals,
    PaymentKind,
    Transaction,
)
from omsbridge.spi import Capability
from omsbridge_contract import data
from omsbridge_contract.checks import assert_page, line_for
from omsbridge_contract.contract import Contract
from omsbridge_contract.registry import scenario

SALE = Capability.POST_SALE
RETURN = Capability.POST_RETURN
DETAIL = Capability.GET_ORDER
SEARCH = Capability.SEARCH_ORDERS
CANCEL_ITEMS = Capability.CANCEL_ITEMS

_ZERO = Decimal(0)


def _totals(detail: OrderDetail, ordered: str, cancelled: str, returned: str, net: str) -> None:
    want = OrderTotals(Decimal(ordered), Decimal(cancelled), Decimal(returned), Decimal(net))
    assert detail.totals == want, (
        f"order {detail.order_id}: totals are {detail.totals}, expected {want} "
        "(ordered as placed; cancelled and returned taken off; net what is left)"
    )
    assert detail.total == want.net, f"detail.total is {detail.total}, must be totals.net"


def _status(detail: OrderDetail, want: OrderStatus) -> None:
    assert detail.status == want, (
        f"order {detail.order_id}: status is {detail.status}, expected {want} "
        f"(backend_status {detail.backend_status!r}; lines "
        f"{[(x.quantity_ordered, x.quantity_fulfilled, x.quantity_cancelled, x.quantity_returned) for x in detail.lines]})"
    )
    assert isinstance(detail.backend_status, str), "backend_status keeps the backend's own word"


def _sale(oms: Contract, quantity: int = 2, *, tenders: tuple[str, ...] = ("card",)) -> Transaction:
    return data.transaction(
        oms.ref,
        [data.line(1, "SKU-RM", quantity, "40.00", tax=f"{Decimal('3.20') * quantity:.2f}")],
        customer=data.customer(oms.ref),
        tenders=tenders,
        order_number=f"ON-{oms.ref}",
        zone=data.PACIFIC,
    )


@scenario(
    "a card sale reads back normalized: FULFILLED, totals, placed_at in the POS's zone, the "
    "card's kind, brand and last 4, the customer and the store; its search hit agrees",
    area="read model",
    requires=[SALE, DETAIL, SEARCH],
)
def test_read_model_sale(oms: Contract) -> None:
    sale = _sale(oms)
    result = oms.post_new(sale)
    detail = oms.detail(result.order_id)
    _status(detail, OrderStatus.FULFILLED)
    _totals(detail, "86.40", "0", "0", "86.40")
    assert detail.order_number == sale.order_number, (
        f"detail.order_number is {detail.order_number!r}, the POS sent {sale.order_number!r}"
    )
    assert detail.placed_at == sale.created_at, f"placed_at {detail.placed_at} != posted"
    assert detail.placed_at.utcoffset() == sale.created_at.utcoffset(), (
        f"placed_at {detail.placed_at.isoformat()} lost the POS's zone "
        f"({sale.created_at.isoformat()})"
    )
    (payment,) = detail.payments
    assert payment.kind == PaymentKind.CARD, f"payment kind is {payment.kind!r}, paid by card"
    assert (payment.brand or "").lower() == "visa", f"card brand is {payment.brand!r}, not VISA"
    assert payment.last4 == "4242", f"card last4 is {payment.last4!r}"
    assert payment.amount == Decimal("86.40"), f"payment amount is {payment.amount}"
    assert payment.captured in (None, Decimal("86.40")), f"captured is {payment.captured}"
    sent = sale.customer
    assert sent is not None
    got = detail.customer
    assert got is not None, "the customer was dropped"
    kept = (got.customer_id, got.first_name, got.last_name, got.email, got.phone)
    assert kept == (sent.customer_id, sent.first_name, sent.last_name, sent.email, sent.phone), (
        f"customer reads back as {kept}"
    )
    assert detail.store_id == sale.store_id, f"store_id is {detail.store_id!r}"
    page = assert_page(
        oms.backend.search_orders(OrderQuery(order_number=sale.order_number)), "search"
    )
    hits = [hit for hit in page.hits if hit.order_id == result.order_id]
    assert hits, f"search by order number {sale.order_number!r} did not find {result.order_id}"
    (hit,) = hits
    assert (hit.status, hit.total, hit.placed_at.utcoffset()) == (
        OrderStatus.FULFILLED,
        Decimal("86.40"),
        sale.created_at.utcoffset(),
    ), f"hit {hit} disagrees with the order"


def _return(
    oms: Contract, sale: Transaction, n: int, original: str, *, line_number: int | None = None
) -> Transaction:
    return data.transaction(
        oms.ref,
        [
            data.returned(
                1,
                "SKU-RM",
                1,
                "40.00",
                tax="3.20",
                order_id=original,
                original_line=line_number,
                original_line_id=None if line_number else "L1",
            )
        ],
        n=n,
        tenders=("card",),
        customer=sale.customer,
        zone=data.PACIFIC,
    )


@scenario(
    "a partial return named by the POS order number, then a full return named by the order "
    "id: post answers the original; PARTIALLY_RETURNED then RETURNED; returned and net totals; "
    "the refunds listed as payments",
    area="read model",
    requires=[SALE, RETURN, DETAIL],
)
def test_read_model_returns(oms: Contract) -> None:
    sale = _sale(oms)
    order_id = oms.post_new(sale).order_id
    assert sale.order_number is not None
    first = _return(oms, sale, 2, sale.order_number)
    result = oms.post_new(first)
    assert result.order_id == order_id, (
        f"a return's post answers its original order {order_id!r}, got {result.order_id!r}"
    )
    detail = oms.detail(order_id)
    _status(detail, OrderStatus.PARTIALLY_RETURNED)
    _totals(detail, "86.40", "0", "43.20", "43.20")
    assert line_for(detail, "L1").quantity_returned == Decimal(1)
    refunds = [p for p in detail.payments if p.amount < 0]
    assert [p.amount for p in refunds] == [Decimal("-43.20")], (
        f"the refund is not listed as a payment: {detail.payments}"
    )
    assert sum((p.amount for p in detail.payments), _ZERO) == detail.totals.net, (
        "the payments (refunds negative) add up to what the merchant keeps"
    )

    number = line_for(detail, "L1").line_number
    second = _return(oms, sale, 3, order_id, line_number=number)
    result = oms.post_new(second)
    assert result.order_id == order_id, f"post answered {result.order_id!r}, not {order_id!r}"
    detail = oms.detail(result.order_id)
    _status(detail, OrderStatus.RETURNED)
    _totals(detail, "86.40", "0", "86.40", "0.00")


@scenario(
    "cancelling part, then the rest, of an order to pick up later: PARTIALLY_CANCELLED then "
    "CANCELLED; cancelled and net totals",
    area="read model",
    requires=[SALE, CANCEL_ITEMS, DETAIL],
)
def test_read_model_cancel(oms: Contract) -> None:
    txn = data.transaction(
        oms.ref,
        [data.line(1, "SKU-RMC", 2, "20.00", tax="3.20", fulfillment=data.PICKUP_LATER)],
        customer=data.customer(oms.ref),
        tenders=("cash",),
    )
    order_id = oms.post_new(txn).order_id
    detail = oms.detail(order_id)
    _status(detail, OrderStatus.OPEN)
    _totals(detail, "43.20", "0", "0", "43.20")
    number = line_for(detail, "L1").line_number
    oms.backend.cancel_items(order_id, [CancelLine(number, Decimal(1))], reason="changed mind")
    detail = oms.detail(order_id)
    _status(detail, OrderStatus.PARTIALLY_CANCELLED)
    _totals(detail, "43.20", "21.60", "0", "21.60")
    oms.backend.cancel_items(order_id, [CancelLine(number, Decimal(1))], reason="changed mind")
    detail = oms.detail(order_id)
    _status(detail, OrderStatus.CANCELLED)
    _totals(detail, "43.20", "43.20", "0", "0.00")
