"""Cancelling orders and lines: whole orders, one line, online orders, and refusals."""

from __future__ import annotations

from decimal import Decimal

from omsbridge.errors import Conflict, NotFound, Rejected
from omsbridge.model import CancelLine
from omsbridge.spi import Capability
from omsbridge_contract import data
from omsbridge_contract.checks import assert_cancel_result, line_for, raises
from omsbridge_contract.contract import Contract
from omsbridge_contract.harness import OnlineLine, OnlineOrder
from omsbridge_contract.registry import scenario

SALE = Capability.POST_SALE
DETAIL = Capability.GET_ORDER
CANCEL = Capability.CANCEL_ORDER
CANCEL_ITEMS = Capability.CANCEL_ITEMS


def _pickup_later_order(oms: Contract, quantities: tuple[int, ...]) -> str:
    """Post an in-store order to pick up later (POS line ids L1, L2...); its order id."""
    txn = data.transaction(
        oms.ref,
        [
            data.line(i, f"SKU-CXL-{i}", q, "20.00", fulfillment=data.PICKUP_LATER)
            for i, q in enumerate(quantities, start=1)
        ],
        customer=data.customer(oms.ref),
    )
    return oms.post_new(txn).order_id


@scenario(
    "cancel an in-store order not yet picked up: every open quantity is cancelled; "
    "cancelling it again is a Conflict",
    area="cancel",
    requires=[SALE, CANCEL, DETAIL],
)
def test_cancel_order(oms: Contract) -> None:
    order_id = _pickup_later_order(oms, (1, 2))
    before = oms.detail(order_id)
    expected = {line.line_number: line.quantity_open for line in before.lines}
    result = oms.backend.cancel_order(order_id, reason="customer changed their mind")
    assert_cancel_result(result, order_id, expected)
    after = oms.detail(order_id)
    for line in after.lines:
        assert line.quantity_cancelled == line.quantity_ordered, (
            f"line {line.line_number}: cancelled {line.quantity_cancelled} of "
            f"{line.quantity_ordered}"
        )
        assert line.quantity_open == 0
    with raises(Conflict):
        oms.backend.cancel_order(order_id, reason="again")


@scenario(
    "cancel part of one line: only that quantity of that line is cancelled",
    area="cancel",
    requires=[SALE, CANCEL_ITEMS, DETAIL],
)
def test_cancel_one_line(oms: Contract) -> None:
    order_id = _pickup_later_order(oms, (1, 3))
    detail = oms.detail(order_id)
    second = line_for(detail, "L2")
    result = oms.backend.cancel_items(
        order_id, [CancelLine(second.line_number, Decimal(1))], reason="out of stock"
    )
    assert_cancel_result(result, order_id, {second.line_number: Decimal(1)})
    after = oms.detail(order_id)
    assert line_for(after, "L2").quantity_cancelled == Decimal(1)
    assert line_for(after, "L2").quantity_open == Decimal(2)
    assert line_for(after, "L1").quantity_cancelled == 0, "another line was cancelled too"


@scenario(
    "cancel an online order that has not shipped (BOPIS no-show, item unavailable)",
    area="cancel",
    requires=[CANCEL, DETAIL],
    harness=["seed_online_order"],
)
def test_cancel_online_order(oms: Contract) -> None:
    spec = OnlineOrder(
        ref=oms.ref,
        customer=data.customer(oms.ref),
        lines=(OnlineLine(1, "SKU-WEB-KETTLE", Decimal(1), Decimal("45.00")),),
        placed_at=data.at(-60),
        shipped=False,
    )
    order_id = oms.harness.seed_online_order(spec)
    result = oms.backend.cancel_order(order_id, reason="not picked up")
    kettle = next(line for line in oms.detail(order_id).lines if line.sku == "SKU-WEB-KETTLE")
    assert_cancel_result(result, order_id, {kettle.line_number: Decimal(1)})
    assert kettle.quantity_cancelled == Decimal(1)


@scenario(
    "cancelling more than is open is Rejected with the backend's code; nothing changes",
    area="bad input",
    requires=[SALE, CANCEL_ITEMS, DETAIL],
)
def test_bad_input_cancel_too_many(oms: Contract) -> None:
    order_id = _pickup_later_order(oms, (2,))
    first = line_for(oms.detail(order_id), "L1")
    with raises(Rejected) as caught:
        oms.backend.cancel_items(
            order_id, [CancelLine(first.line_number, Decimal(5))], reason="too many"
        )
    assert caught.error is not None and caught.error.code
    assert line_for(oms.detail(order_id), "L1").quantity_cancelled == 0


@scenario("cancelling an order the OMS does not have is NotFound", area="cancel", requires=[CANCEL])
def test_cancel_unknown_order(oms: Contract) -> None:
    with raises(NotFound):
        oms.backend.cancel_order(f"NO-SUCH-{oms.ref}", reason="test")


@scenario(
    "cancelling a line the order does not have is NotFound; nothing changes",
    area="cancel",
    requires=[SALE, CANCEL_ITEMS, DETAIL],
)
def test_cancel_unknown_line(oms: Contract) -> None:
    order_id = _pickup_later_order(oms, (1,))
    numbers = {line.line_number for line in oms.detail(order_id).lines}
    missing = max(numbers) + 1000
    with raises(NotFound):
        oms.backend.cancel_items(order_id, [CancelLine(missing, Decimal(1))], reason="test")
    assert all(line.quantity_cancelled == 0 for line in oms.detail(order_id).lines)
