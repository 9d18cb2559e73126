"""The backend against the reference server: posting, idempotency, search, detail, cancel."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from posspi_support import CUSTOMER, make_backend, return_of, sale

from omsbridge import wire
from omsbridge.errors import (
    Conflict,
    InvalidTransaction,
    NotFound,
    Rejected,
    TransientBackendError,
)
from omsbridge.model import (
    Address,
    CancelLine,
    CashTender,
    Fulfillment,
    FulfillmentType,
    LineItem,
    OrderQuery,
    Transaction,
    TransactionKind,
)
from omsbridge_posspi import PosSpiBackend
from omsbridge_posspi.server import ServerHandle, SpiApp

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "transactions"


def test_post_sale_creates_one_order(backend: PosSpiBackend) -> None:
    result = backend.post(sale("T-1"))
    assert result.created is True
    assert result.transaction_id == "T-1"
    detail = backend.get_order(result.order_id)
    assert detail.transaction_id == "T-1"
    assert detail.total == Decimal("20.00")
    assert detail.status == "FULFILLED"
    assert [line.quantity_fulfilled for line in detail.lines] == [Decimal(2)]
    assert detail.payments[0].amount == Decimal("20.00")


def test_repost_same_transaction_is_idempotent(backend: PosSpiBackend, app: SpiApp) -> None:
    txn = sale("T-1")
    first = backend.post(txn)
    again = backend.post(txn)
    assert again.created is False
    assert again.order_id == first.order_id
    assert again.order_number == first.order_number
    page = backend.search_orders(OrderQuery(email=CUSTOMER.email))
    assert page.total_size == 1


def test_repost_with_different_body_is_a_conflict(backend: PosSpiBackend) -> None:
    backend.post(sale("T-1"))
    with pytest.raises(Conflict) as caught:
        backend.post(sale("T-1", lines=(("SKU-B", "1", "5.00"),)))
    assert caught.value.code == "IDEMPOTENCY_CONFLICT"
    assert caught.value.status == 409
    assert caught.value.backend == "pos-spi"


def test_concurrent_reposts_create_exactly_one_order(backend: PosSpiBackend) -> None:
    txn = sale("T-RACE")
    results = []

    def post() -> None:
        results.append(backend.post(txn))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.created for r in results) == [False] * 7 + [True]
    assert len({r.order_id for r in results}) == 1


def test_get_order_by_id_number_or_transaction_id(backend: PosSpiBackend) -> None:
    result = backend.post(sale("T-1", order_number="0042-1"))
    for ref in (result.order_id, "0042-1", "T-1"):
        assert backend.get_order(ref).order_id == result.order_id


def test_get_unknown_order_is_not_found(backend: PosSpiBackend) -> None:
    with pytest.raises(NotFound) as caught:
        backend.get_order("NOPE")
    assert (caught.value.code, caught.value.status) == ("ORDER_NOT_FOUND", 404)


def test_search_by_each_criterion_and_hit_fields(backend: PosSpiBackend) -> None:
    posted = backend.post(sale("T-1", order_number="N-1"))
    backend.post(sale("T-2", customer=None))
    for query in (
        OrderQuery(order_number="N-1"),
        OrderQuery(first_name="gra"),
        OrderQuery(last_name="HOPPER"),
        OrderQuery(email="GRACE@example.com"),
        OrderQuery(customer_id="C-7"),
    ):
        page = backend.search_orders(query)
        assert [hit.order_id for hit in page.hits] == [posted.order_id], query
    hit = backend.search_orders(OrderQuery(order_number="N-1")).hits[0]
    assert hit.email == CUSTOMER.email
    assert hit.total == Decimal("20.00")
    assert hit.item_count == 2
    assert hit.status == "FULFILLED"
    assert hit.customer_name == "Grace Hopper"


def test_search_by_date_range(backend: PosSpiBackend) -> None:
    day = datetime(2026, 11, 1, 12, tzinfo=UTC)
    for i in range(3):
        backend.post(sale(f"T-{i}", created_at=day + timedelta(days=i)))
    page = backend.search_orders(
        OrderQuery(placed_from=day + timedelta(hours=1), placed_to=day + timedelta(days=2))
    )
    assert [hit.placed_at for hit in page.hits] == [
        day + timedelta(days=2),
        day + timedelta(days=1),
    ]


def test_search_pages_with_a_cursor(backend: PosSpiBackend) -> None:
    for i in range(5):
        backend.post(sale(f"T-{i}"))
    seen: list[str] = []
    query = OrderQuery(customer_id="C-7", page_size=2)
    while True:
        page = backend.search_orders(query)
        assert page.total_size == 5
        seen += [hit.order_id for hit in page.hits]
        if page.next_cursor is None:
            break
        query = OrderQuery(cursor=page.next_cursor, page_size=2)
    assert len(seen) == 5 == len(set(seen))


def test_search_with_a_forged_cursor_is_invalid(backend: PosSpiBackend) -> None:
    with pytest.raises(InvalidTransaction) as caught:
        backend.search_orders(OrderQuery(cursor="not-a-cursor"))
    assert caught.value.code == "INVALID_CURSOR"
    assert caught.value.issues[0].path == "cursor"


def test_boris_detail_gives_return_by_and_returnable_quantities(
    backend: PosSpiBackend, app: SpiApp
) -> None:
    seeded = app.seed_online_order("STORE-1", fulfilled=True)
    detail = backend.get_order_for_return(seeded.order.order_number)
    assert detail.return_by == (detail.placed_at + timedelta(days=30)).date()
    assert [line.quantity_returnable for line in detail.lines] == [Decimal(2)]
    backend.post(return_of("R-1", seeded.order.order_id, sku="SKU-1", unit_price="25.00"))
    after = backend.get_order_for_return(seeded.order.order_id)
    assert after.lines[0].quantity_returnable == Decimal(1)
    assert after.status == "PARTIALLY_RETURNED"
    assert backend.get_order(seeded.order.order_id).return_by is None


def test_cannot_return_more_than_bought(backend: PosSpiBackend, app: SpiApp) -> None:
    posted = backend.post(sale("T-1"))
    backend.post(return_of("R-1", posted.order_id, line_id="L1", quantity="2"))
    with pytest.raises(Rejected) as caught:
        backend.post(return_of("R-2", posted.order_id, line_id="L1", quantity="1"))
    assert (caught.value.code, caught.value.status) == ("RETURN_QUANTITY_EXCEEDED", 422)
    assert backend.search_orders(OrderQuery(customer_id="C-7")).total_size == 2  # nothing written


def test_cannot_return_an_unfulfilled_online_order(backend: PosSpiBackend, app: SpiApp) -> None:
    seeded = app.seed_online_order("STORE-1")
    with pytest.raises(Rejected) as caught:
        backend.post(return_of("R-1", seeded.order.order_id, sku="SKU-1", unit_price="25.00"))
    assert caught.value.code == "RETURN_QUANTITY_EXCEEDED"


def test_return_of_unknown_order_is_rejected(backend: PosSpiBackend) -> None:
    with pytest.raises(Rejected) as caught:
        backend.post(return_of("R-1", "NO-SUCH-ORDER"))
    assert caught.value.code == "ORIGINAL_ORDER_NOT_FOUND"


def test_cancel_order_cancels_what_is_open(backend: PosSpiBackend, app: SpiApp) -> None:
    seeded = app.seed_online_order("STORE-1")
    result = backend.cancel_order(seeded.order.order_id, reason="customer changed their mind")
    assert result.status == "CANCELLED"
    assert [(c.line_number, c.quantity) for c in result.cancelled] == [
        (seeded.order.lines[0].line_number, Decimal(2))
    ]
    assert backend.fulfillment_orders(store_id="STORE-1") == ()
    with pytest.raises(Conflict) as caught:
        backend.cancel_order(seeded.order.order_id, reason="again")
    assert caught.value.code == "ORDER_ALREADY_CANCELLED"


def test_cancel_of_a_fulfilled_order_is_rejected(backend: PosSpiBackend) -> None:
    posted = backend.post(sale("T-1"))
    with pytest.raises(Rejected) as caught:
        backend.cancel_order(posted.order_id, reason="too late")
    assert (caught.value.code, caught.value.status) == ("NOTHING_TO_CANCEL", 422)


def test_cancel_lines_partially(backend: PosSpiBackend, app: SpiApp) -> None:
    seeded = app.seed_online_order("STORE-1")
    line = seeded.order.lines[0].line_number
    result = backend.cancel_items(
        seeded.order.order_id, [CancelLine(line, Decimal(1))], reason="oos"
    )
    assert result.status == "OPEN"
    detail = backend.get_order(seeded.order.order_id)
    assert detail.line(line).quantity_cancelled == Decimal(1)
    assert detail.fulfillment_orders[0].lines[0].quantity_cancelled == Decimal(1)
    with pytest.raises(Rejected) as caught:
        backend.cancel_items(seeded.order.order_id, [CancelLine(line, Decimal(2))], reason="oos")
    assert caught.value.code == "QUANTITY_NOT_CANCELLABLE"
    with pytest.raises(NotFound) as missing:
        backend.cancel_items(seeded.order.order_id, [CancelLine(999, Decimal(1))], reason="oos")
    assert missing.value.code == "LINE_NOT_FOUND"


def test_endless_aisle_and_pickup_later(backend: PosSpiBackend) -> None:
    ship_to = Address("1 Main St", "Springfield", "US")
    aisle = backend.post(
        sale("T-EA", fulfillment=Fulfillment(FulfillmentType.ONLINE, ship_to=ship_to))
    )
    detail = backend.get_order(aisle.order_id)
    assert detail.status == "OPEN"
    assert detail.lines[0].fulfillment_method == "ONLINE-DEFAULT"
    assert detail.fulfillment_orders == ()  # shipped from elsewhere: nothing for the store
    later = backend.post(sale("T-PL", fulfillment=Fulfillment(subtype="PICKUP_LATER")))
    (fo,) = backend.get_order(later.order_id).fulfillment_orders
    assert fo.store_id == "STORE-1"
    assert fo.delivery_method == "IN_STORE-PICKUP_LATER"


def test_exchange_is_one_order(backend: PosSpiBackend) -> None:
    bought = backend.post(sale("T-1"))
    original = backend.get_order(bought.order_id)
    sold_back = return_of("X", bought.order_id, line_id="L1").lines[0]
    new_item = LineItem(2, "SKU-B", Decimal(1), Decimal("15.00"), line_id="X2")
    exchange = Transaction(
        transaction_id="T-EX",
        kind=TransactionKind.EXCHANGE,
        created_at=datetime.now(UTC),
        currency="USD",
        store_id="STORE-1",
        lines=(sold_back, new_item),
        total=Decimal("5.00"),
        tenders=(CashTender(Decimal("5.00")),),
        customer=CUSTOMER,
    )
    result = backend.post(exchange)
    detail = backend.get_order(result.order_id)
    assert len(detail.lines) == 2
    assert detail.total == Decimal("5.00")
    assert (
        backend.get_order(bought.order_id).line(original.lines[0].line_number).quantity_returned
        == 1
    )


def test_every_example_transaction_posts(backend: PosSpiBackend) -> None:
    files = sorted(EXAMPLES.glob("*.json"))
    assert files, f"no examples in {EXAMPLES}"
    txns = [wire.loads(f.read_text(), Transaction) for f in files]
    # Sales first, so the returns and exchanges find what they take back.
    txns.sort(key=lambda t: t.kind != TransactionKind.SALE)
    for txn in txns:
        result = backend.post(txn)
        assert result.created, txn.transaction_id
        assert backend.get_order(txn.transaction_id).transaction_id == txn.transaction_id
        shown = backend.get_order(result.order_id)  # a return answers its original
        if txn.kind == TransactionKind.RETURN and txn.lines[0].original is not None:
            assert shown.order_number == txn.lines[0].original.order_id
        else:
            assert shown.transaction_id == txn.transaction_id


def test_bad_input_is_refused_with_the_field_path_and_nothing_written(
    backend: PosSpiBackend, app: SpiApp
) -> None:
    body = wire.unstructure(sale("T-BAD"))
    body["lines"][0]["quantity"] = "-1"
    with pytest.raises(InvalidTransaction) as caught:
        backend._client.request("POST", "orders", operation="POST_ORDER", json_body=body)
    assert caught.value.status == 400
    assert caught.value.code == "INVALID_REQUEST"
    assert "lines[0].quantity" in [issue.path for issue in caught.value.issues]
    with pytest.raises(NotFound):
        backend.get_order("T-BAD")


def test_timeout_then_repost_finds_the_order(server: ServerHandle, app: SpiApp) -> None:
    slow = make_backend(server.url, timeout=0.3)
    txn = sale("T-1")
    app.inject_fault("timeout", delay=0.8)
    with pytest.raises(TransientBackendError) as caught:
        slow.post(txn)
    assert caught.value.code == "TIMEOUT"
    # The server finishes the work after the client gave up; re-posting must not duplicate it.
    deadline = time.monotonic() + 5
    while app.order_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    result = slow.post(txn)
    assert result.created is False
    assert slow.search_orders(OrderQuery(customer_id="C-7")).total_size == 1
    slow.close()
