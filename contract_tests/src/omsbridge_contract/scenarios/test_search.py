"""Order search (order number, email, last name, customer id, paging) and order detail."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from omsbridge.errors import InvalidTransaction, NotFound
from omsbridge.model import OrderHit, OrderQuery, PostResult, Transaction
from omsbridge.spi import Capability
from omsbridge_contract import data
from omsbridge_contract.checks import assert_detail_matches, assert_page, raises
from omsbridge_contract.contract import Contract
from omsbridge_contract.registry import scenario

SALE = Capability.POST_SALE
SEARCH = Capability.SEARCH_ORDERS
DETAIL = Capability.GET_ORDER


def _posted(oms: Contract, n: int = 1, quantity: int = 2) -> tuple[Transaction, PostResult]:
    txn = data.transaction(
        oms.ref,
        [data.line(1, f"SKU-FIND-{n}", quantity, "12.50", tax="2.00")],
        n=n,
        customer=data.customer(oms.ref),
    )
    return txn, oms.post_new(txn)


def _only_hit(oms: Contract, query: OrderQuery, txn: Transaction, result: PostResult) -> OrderHit:
    page = assert_page(oms.backend.search_orders(query), "page")
    assert [hit.order_id for hit in page.hits] == [result.order_id], (
        f"{query.criteria} must find exactly order {result.order_id}, got "
        f"{[hit.order_id for hit in page.hits]}"
    )
    assert page.next_cursor is None, "one hit fits on one page"
    hit = page.hits[0]
    assert hit.total == txn.total, f"hit.total is {hit.total}, posted {txn.total}"
    assert hit.currency == txn.currency
    assert isinstance(hit.status, str) and hit.status
    quantity = sum((line.quantity for line in txn.lines), Decimal(0))
    assert hit.item_count in (int(quantity), len(txn.lines)), (
        f"hit.item_count is {hit.item_count}: neither the quantity ({quantity}) nor the number "
        f"of lines ({len(txn.lines)})"
    )
    if result.order_number is not None:
        assert hit.order_number == result.order_number
    return hit


@scenario("search by order number finds exactly that order", area="search", requires=[SALE, SEARCH])
def test_search_by_order_number(oms: Contract) -> None:
    txn, result = _posted(oms)
    number = result.order_number
    if number is None:
        if not oms.has(DETAIL):
            pytest.skip("post() answered no order_number and the backend has no order:detail")
        number = oms.detail(result.order_id).order_number
    _only_hit(oms, OrderQuery(order_number=number), txn, result)


@scenario("search by the customer's email", area="search", requires=[SALE, SEARCH])
def test_search_by_email(oms: Contract) -> None:
    txn, result = _posted(oms)
    email = data.customer(oms.ref).email
    hit = _only_hit(oms, OrderQuery(email=email), txn, result)
    assert hit.email is not None and hit.email.lower() == str(email).lower()


@scenario("search by the customer's last name", area="search", requires=[SALE, SEARCH])
def test_search_by_last_name(oms: Contract) -> None:
    txn, result = _posted(oms)
    _only_hit(oms, OrderQuery(last_name=data.customer(oms.ref).last_name), txn, result)


@scenario("search by the customer id", area="search", requires=[SALE, SEARCH])
def test_search_by_customer_id(oms: Contract) -> None:
    txn, result = _posted(oms)
    _only_hit(oms, OrderQuery(customer_id=data.customer(oms.ref).customer_id), txn, result)


@scenario(
    "three orders, pages of two: every order once, the last page has no cursor",
    area="search",
    requires=[SALE, SEARCH],
)
def test_search_paging(oms: Contract) -> None:
    posted = {_posted(oms, n)[1].order_id for n in (1, 2, 3)}
    query = OrderQuery(email=data.customer(oms.ref).email, page_size=2)
    first = assert_page(oms.backend.search_orders(query), "page 1")
    assert len(first.hits) == 2, f"page 1 must hold 2 hits, got {len(first.hits)}"
    assert first.next_cursor, "page 1 of 3 hits must give a next_cursor"
    if first.total_size is not None:
        assert first.total_size == 3, f"total_size is {first.total_size}, expected 3"
    second = assert_page(
        oms.backend.search_orders(attrs.evolve(query, cursor=first.next_cursor)), "page 2"
    )
    assert len(second.hits) == 1, f"page 2 must hold the last hit, got {len(second.hits)}"
    assert second.next_cursor is None, "the last page has no next_cursor"
    found = [hit.order_id for hit in (*first.hits, *second.hits)]
    assert sorted(found) == sorted(posted), f"pages list {found}, posted {sorted(posted)}"


@scenario("a search that matches nothing answers an empty page", area="search", requires=[SEARCH])
def test_search_no_match(oms: Contract) -> None:
    page = assert_page(
        oms.backend.search_orders(OrderQuery(email=f"nobody-{oms.ref}@contract.example")), "page"
    )
    assert page.hits == (), f"expected no hits, got {page.hits}"
    assert page.next_cursor is None
    assert page.total_size in (None, 0)


@scenario(
    "a cursor the backend never issued is InvalidTransaction naming 'cursor'",
    area="bad input",
    requires=[SEARCH],
)
def test_bad_input_search_cursor(oms: Contract) -> None:
    with raises(InvalidTransaction, path="cursor"):
        oms.backend.search_orders(OrderQuery(cursor="not-a-cursor-of-yours"))


@scenario(
    "order detail: lines, quantities, taxes, payments and customer as posted, by order id and "
    "by order number",
    area="detail",
    requires=[SALE, DETAIL],
)
def test_order_detail(oms: Contract) -> None:
    txn = data.transaction(
        oms.ref,
        [
            data.line(1, "SKU-COAT", 1, "150.00", tax="11.20", discount="10.00"),
            data.line(2, "SKU-GLOVES", 2, "22.50", tax="3.60"),
        ],
        tenders=(("card", "100.00"), "cash"),
        customer=data.customer(oms.ref),
    )
    result = oms.post_new(txn)
    detail = assert_detail_matches(oms.backend.get_order(result.order_id), txn, result)
    assert detail.customer is not None and detail.customer.email == data.customer(oms.ref).email
    by_number = oms.backend.get_order(detail.order_number)
    assert by_number.order_id == result.order_id, (
        f"get_order({detail.order_number!r}) found {by_number.order_id}, not {result.order_id}"
    )


@scenario(
    "order detail of an order the OMS does not have is NotFound", area="detail", requires=[DETAIL]
)
def test_order_detail_not_found(oms: Contract) -> None:
    with raises(NotFound):
        oms.backend.get_order(f"NO-SUCH-{oms.ref}")
