"""The seed's LineNumber note: in SPI mode a return is its own order, numbered by the SPI side."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from posspi_support import return_of, sale

from omsbridge.errors import Rejected
from omsbridge.model import CashTender
from omsbridge_posspi import PosSpiBackend


def test_returned_line_number_1_becomes_line_number_2(backend: PosSpiBackend) -> None:
    sold = backend.post(sale("T-1"))
    original = backend.get_order(sold.order_id)
    assert [line.line_number for line in original.lines] == [1]
    assert original.lines[0].external_line_id == "L1"  # the POS's own line id is kept

    # The POS posts the complete return order; its line is number 1 on the POS side...
    txn = return_of("R-1", "T-1", line_id="L1")
    assert txn.lines[0].line_number == 1
    returned = backend.post(txn)

    # ...and the SPI numbers it by its own order item id: LineNumber 1 -> LineNumber 2.
    # (The post answers the original, where the return folds in; the return order itself
    # is read by its transaction id.)
    assert returned.order_id == sold.order_id
    detail = backend.get_order("R-1")
    (line,) = detail.lines
    assert line.line_number == 2
    assert line.line_id == "OI-2"
    assert line.total == Decimal("-10.00")
    assert detail.status == "FULFILLED"
    assert detail.order_id != sold.order_id  # a return is its own order

    # The original order records what came back, on its own line 1.
    after = backend.get_order(sold.order_id)
    assert after.line(1).quantity_returned == Decimal(1)
    assert after.status == "PARTIALLY_RETURNED"


def test_return_can_name_the_spi_line_number(backend: PosSpiBackend) -> None:
    sold = backend.post(sale("T-1", lines=(("SKU-A", "1", "10.00"), ("SKU-B", "1", "4.00"))))
    spi_numbers = [line.line_number for line in backend.get_order(sold.order_id).lines]
    assert spi_numbers == [1, 2]
    backend.post(
        return_of("R-1", sold.order_number or "", sku="SKU-B", unit_price="4.00", line_number=2)
    )
    detail = backend.get_order(sold.order_id)
    assert [line.quantity_returned for line in detail.lines] == [Decimal(0), Decimal(1)]


def test_line_numbers_of_a_second_order_continue(backend: PosSpiBackend) -> None:
    backend.post(sale("T-1", lines=(("SKU-A", "1", "10.00"), ("SKU-B", "1", "4.00"))))
    second = backend.post(sale("T-2"))
    assert [line.line_number for line in backend.get_order(second.order_id).lines] == [3]


def test_return_line_must_match_the_sku_of_the_original(backend: PosSpiBackend) -> None:
    backend.post(sale("T-1"))
    with pytest.raises(Rejected) as caught:
        backend.post(return_of("R-1", "T-1", sku="SKU-OTHER", line_number=1))
    assert caught.value.code == "ORIGINAL_LINE_NOT_FOUND"


def test_a_return_line_cannot_itself_be_returned(backend: PosSpiBackend) -> None:
    backend.post(sale("T-1"))
    returned = backend.post(return_of("R-1", "T-1", line_id="L1"))
    with pytest.raises(Rejected) as caught:
        backend.post(return_of("R-2", returned.order_id, line_number=2))
    assert caught.value.code == "ORIGINAL_LINE_NOT_FOUND"


def test_two_return_lines_for_one_sold_line_add_up(backend: PosSpiBackend) -> None:
    backend.post(sale("T-1", lines=(("SKU-A", "3", "10.00"),)))
    one = return_of("R-X", "T-1", line_id="L1").lines[0]
    two = attrs.evolve(one, line_number=2, line_id="R2")
    both = attrs.evolve(
        return_of("R-1", "T-1", line_id="L1"),
        lines=(one, two),
        total=Decimal("-20.00"),
        tenders=(CashTender(Decimal("-20.00")),),
    )
    backend.post(both)
    assert backend.get_order("T-1").lines[0].quantity_returned == Decimal(2)
    too_many = attrs.evolve(both, transaction_id="R-2")
    with pytest.raises(Rejected) as caught:
        backend.post(too_many)
    assert caught.value.code == "RETURN_QUANTITY_EXCEEDED"
    assert caught.value.message.endswith("already returned 2)")
