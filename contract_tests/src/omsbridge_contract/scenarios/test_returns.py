"""Returns and exchanges at the POS, and BORIS: buy online, return in store."""

from __future__ import annotations

from decimal import Decimal

from omsbridge.errors import Rejected
from omsbridge.model import OrderQuery, PostResult, Transaction
from omsbridge.spi import Capability
from omsbridge_contract import data
from omsbridge_contract.checks import assert_page, line_for, raises
from omsbridge_contract.contract import Contract
from omsbridge_contract.harness import OnlineLine, OnlineOrder
from omsbridge_contract.registry import scenario

SALE = Capability.POST_SALE
RETURN = Capability.POST_RETURN
DETAIL = Capability.GET_ORDER
OWN_ORDER = Capability.RETURNS_AS_ORDERS


def _recorded_return(oms: Contract, txn: Transaction, result: PostResult, original: str) -> None:
    """Where the return was recorded: ``post`` answers the original order on every backend (the
    return folds into its quantities and totals).

    With :attr:`Capability.RETURNS_AS_ORDERS` (the native SPI) the return is also an order of
    its own, read back by its transaction id like what was posted.
    """
    assert result.order_id == original, (
        "a return's post answers the original order it folds into: post answered "
        f"{result.order_id!r}, not {original!r}"
    )
    recorded = oms.detail(result.order_id)
    assert recorded.order_id == original, (
        f"post answered {result.order_id!r}, which reads back as {recorded.order_id!r}"
    )
    if oms.has(OWN_ORDER):
        own = oms.detail(txn.transaction_id)
        assert own.order_id != original, (
            "the backend declares RETURNS_AS_ORDERS: a return is posted as its own order"
        )
        oms.verify(txn, PostResult(txn.transaction_id, own.order_id, own.order_number))


def _sold(oms: Contract, quantity: int = 2, price: str = "40.00") -> tuple[str, str]:
    """Post a take-with sale of ``quantity`` x SKU-RET (POS line id L1); its order id and SKU."""
    sale = data.transaction(
        oms.ref,
        [data.line(1, "SKU-RET", quantity, price, tax=None)],
        customer=data.customer(oms.ref),
    )
    return oms.post_new(sale).order_id, "SKU-RET"


@scenario(
    "a return with receipt: recorded as the backend's return mode says; the original line "
    "counts it as returned",
    area="return",
    requires=[SALE, RETURN, DETAIL],
)
def test_return_with_receipt(oms: Contract) -> None:
    original, sku = _sold(oms, 2)
    refund = data.transaction(
        oms.ref,
        [data.returned(1, sku, 1, "40.00", order_id=original, original_line_id="L1")],
        n=2,
        tenders=("card",),
        customer=data.customer(oms.ref),
    )
    assert refund.total == Decimal("-40.00")
    result = oms.post_new(refund)
    _recorded_return(oms, refund, result, original)
    sold = line_for(oms.detail(original), "L1")
    assert sold.quantity_returned == Decimal(1), (
        f"the original line must count 1 returned, got {sold.quantity_returned}"
    )
    assert sold.quantity_returnable == Decimal(1)


@scenario(
    "a return without receipt: refunded in cash, no original order",
    area="return",
    requires=[RETURN, Capability.POST_UNREFERENCED_RETURN],
)
def test_return_without_receipt(oms: Contract) -> None:
    refund = data.transaction(
        oms.ref,
        [data.returned(1, "SKU-NORECEIPT", 1, "18.00", tax="1.44", reason="NO_RECEIPT")],
        tenders=("cash",),
    )
    assert refund.total == Decimal("-19.44")
    result = oms.post_new(refund)
    oms.verify(refund, result)


@scenario(
    "a partial return, then another: returned quantities add up on the original line",
    area="return",
    requires=[SALE, RETURN, DETAIL],
)
def test_partial_return(oms: Contract) -> None:
    original, sku = _sold(oms, 3, "15.00")
    for n in (2, 3):
        refund = data.transaction(
            oms.ref,
            [data.returned(1, sku, 1, "15.00", order_id=original, original_line_id="L1")],
            n=n,
            tenders=("cash",),
        )
        oms.post_new(refund)
    sold = line_for(oms.detail(original), "L1")
    assert sold.quantity_returned == Decimal(2), f"returned {sold.quantity_returned}, expected 2"
    assert sold.quantity_returnable == Decimal(1)


@scenario(
    "returning more than is returnable is Rejected with the backend's code; nothing is written",
    area="bad input",
    requires=[SALE, RETURN, DETAIL],
)
def test_bad_input_over_return(oms: Contract) -> None:
    original, sku = _sold(oms, 2)
    refund = data.transaction(
        oms.ref,
        [data.returned(1, sku, 3, "40.00", order_id=original, original_line_id="L1")],
        n=2,
        tenders=("cash",),
    )
    before = oms.count()
    with raises(Rejected) as caught:
        oms.backend.post(refund)
    assert caught.error is not None and caught.error.code, (
        "a Rejected error carries the backend's code"
    )
    assert oms.count() == before, "a refused return wrote an order"
    sold = line_for(oms.detail(original), "L1")
    assert sold.quantity_returned == 0, "a refused return changed the original line"


@scenario(
    "a return naming an order the OMS does not have is Rejected; nothing is written",
    area="bad input",
    requires=[RETURN],
)
def test_bad_input_unknown_original_order(oms: Contract) -> None:
    refund = data.transaction(
        oms.ref,
        [data.returned(1, "SKU-GHOST", 1, "9.00", order_id=f"NO-SUCH-{oms.ref}", original_line=1)],
        tenders=("cash",),
    )
    before = oms.count()
    with raises(Rejected):
        oms.backend.post(refund)
    assert oms.count() == before, "a refused return wrote an order"


@scenario(
    "an exchange: one line back, another out, the difference paid by card",
    area="exchange",
    requires=[SALE, Capability.POST_EXCHANGE, DETAIL],
)
def test_exchange(oms: Contract) -> None:
    original, sku = _sold(oms, 1, "30.00")
    exchange = data.transaction(
        oms.ref,
        [
            data.returned(
                1, sku, 1, "30.00", order_id=original, original_line_id="L1", reason="SIZE"
            ),
            data.line(2, "SKU-RET-L", 1, "34.00", tax="2.72"),
        ],
        n=2,
        customer=data.customer(oms.ref),
    )
    assert exchange.total == Decimal("6.72")
    result = oms.post_new(exchange)
    assert result.order_id != original, "an exchange's new goods make a new order"
    sold = line_for(oms.detail(original), "L1")
    assert sold.quantity_returned == Decimal(1), f"returned {sold.quantity_returned}, expected 1"
    assert sold.quantity_returnable == Decimal(0)
    if oms.has(OWN_ORDER):
        oms.verify(exchange, result)
        return
    # The return half is recorded on the original order; the order post answers holds the sale
    # half, paid by what was tendered plus the credit of what came back.
    detail = oms.detail(result.order_id)
    new = line_for(detail, "L2")
    assert (new.sku, new.quantity_ordered, new.total) == ("SKU-RET-L", Decimal(1), Decimal("36.72"))
    assert detail.total == Decimal("36.72"), f"the new order's total is {detail.total}"
    paid = sum((p.amount for p in detail.payments), Decimal(0))
    assert paid == detail.total, f"the new order's payments add up to {paid}, not {detail.total}"
    assert Decimal("6.72") in [p.amount for p in detail.payments], (
        f"the card's 6.72 is not among the new order's payments {detail.payments}"
    )
    credit = detail.total - exchange.total
    assert credit == Decimal("30.00"), (
        f"the exchange credit is {credit}, the returned line was worth 30.00"
    )


@scenario(
    "BORIS: find an online order by the customer's email, read it, return a line in store",
    area="boris",
    requires=[Capability.SEARCH_ORDERS, DETAIL, RETURN],
    harness=["seed_online_order"],
)
def test_boris_return_online_order(oms: Contract) -> None:
    customer = data.customer(oms.ref)
    spec = OnlineOrder(
        ref=oms.ref,
        customer=customer,
        lines=(
            OnlineLine(1, "SKU-WEB-DRESS", Decimal(1), Decimal("79.00")),
            OnlineLine(2, "SKU-WEB-SCARF", Decimal(2), Decimal("19.50")),
        ),
        placed_at=data.at(-24 * 60),
        shipped=True,
    )
    order_id = oms.harness.seed_online_order(spec)
    page = assert_page(oms.backend.search_orders(OrderQuery(email=customer.email)), "page")
    assert [hit.order_id for hit in page.hits] == [order_id], (
        f"searching {customer.email} must find the online order {order_id}, got {page.hits}"
    )
    assert page.hits[0].total == spec.total
    detail = oms.detail(order_id)
    assert detail.total == spec.total
    scarf = next((line for line in detail.lines if line.sku == "SKU-WEB-SCARF"), None)
    assert scarf is not None, f"the online order lost SKU-WEB-SCARF: {detail.lines}"
    assert scarf.quantity_fulfilled == Decimal(2), "a shipped online order is fulfilled"
    refund = data.transaction(
        oms.ref,
        [
            data.returned(
                1, "SKU-WEB-SCARF", 1, "19.50", order_id=order_id, original_line=scarf.line_number
            )
        ],
        tenders=("card",),
        customer=customer,
    )
    oms.post_new(refund)
    after = next(line for line in oms.detail(order_id).lines if line.sku == "SKU-WEB-SCARF")
    assert after.quantity_returned == Decimal(1), (
        f"the online line must count 1 returned, got {after.quantity_returned}"
    )
