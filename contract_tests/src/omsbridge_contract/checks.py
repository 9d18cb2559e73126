"""Assertions the scenarios share. pytest rewrites this module's asserts, so failures show values.

Each check names what it looked at (``detail.lines[1].total``) so a failing scenario says which
field of which answer broke the contract.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from omsbridge.errors import BackendError, InvalidTransaction, RetryableError
from omsbridge.model import (
    CancelResult,
    FulfillmentOrder,
    LineKind,
    OrderDetail,
    OrderHit,
    OrderLine,
    OrderPage,
    OrderTotals,
    PostResult,
    Transaction,
)

__all__ = [
    "ErrorInfo",
    "assert_cancel_result",
    "assert_detail_matches",
    "assert_fulfillment_order",
    "assert_money",
    "assert_no_floats",
    "assert_page",
    "assert_post_result",
    "line_for",
    "raises",
]

# Fields that hold money or quantities in the read-side model: they must be Decimal.
_DECIMAL_FIELDS = {
    "total",
    "amount",
    "unit_price",
    "quantity",
    "quantity_ordered",
    "quantity_fulfilled",
    "quantity_cancelled",
    "quantity_returned",
    "captured",
    "refunded",
}
# Every field of OrderTotals is money (``cancelled`` elsewhere names CancelResult's lines).
_TOTALS_FIELDS = {"ordered", "cancelled", "returned", "net"}


def assert_money(value: Any, where: str) -> Decimal:
    """``value`` is a finite Decimal (never a float or an int); return it."""
    assert isinstance(value, Decimal) and not isinstance(value, bool), (
        f"{where} must be a Decimal, got {type(value).__name__} {value!r}"
    )
    assert value.is_finite(), f"{where} must be finite, got {value}"
    return value


def assert_no_floats(obj: Any, where: str) -> None:
    """Walk an answer (attrs objects, tuples, mappings) and fail on any float, and on any money or
    quantity field that is not a Decimal."""
    if isinstance(obj, float):
        raise AssertionError(f"{where} is a float ({obj!r}); money and quantities must be Decimal")
    if attrs.has(type(obj)):
        for field in attrs.fields(type(obj)):
            value = getattr(obj, field.name)
            here = f"{where}.{field.name}"
            money = _DECIMAL_FIELDS | (_TOTALS_FIELDS if isinstance(obj, OrderTotals) else set())
            if field.name in money and value is not None:
                assert_money(value, here)
            assert_no_floats(value, here)
    elif isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            assert_no_floats(item, f"{where}[{i}]")
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            assert_no_floats(value, f"{where}[{key!r}]")


def _aware(value: Any, where: str) -> None:
    assert isinstance(value, datetime), f"{where} must be a datetime, got {type(value).__name__}"
    assert value.utcoffset() is not None, f"{where} must be timezone-aware, got {value!r}"


def assert_post_result(result: Any, txn: Transaction, *, created: bool) -> PostResult:
    """A post answered a :class:`PostResult` for this transaction, created (or found) as expected."""
    assert isinstance(result, PostResult), (
        f"post() must return a PostResult, got {type(result).__name__} {result!r}"
    )
    assert result.transaction_id == txn.transaction_id, (
        f"result.transaction_id is {result.transaction_id!r}, posted {txn.transaction_id!r}"
    )
    assert isinstance(result.order_id, str) and result.order_id.strip(), (
        f"result.order_id must be a non-empty string, got {result.order_id!r}"
    )
    assert result.created is created, (
        f"result.created must be {created} "
        + ("(first post)" if created else "(the transaction was posted before: no second order)")
        + f", got {result.created!r}"
    )
    return result


def assert_detail_matches(detail: Any, txn: Transaction, result: PostResult) -> OrderDetail:
    """``get_order`` of a posted transaction gives back what was posted: ids, total, lines,
    payments, each amount a Decimal."""
    assert isinstance(detail, OrderDetail), (
        f"get_order() must return an OrderDetail, got {type(detail).__name__}"
    )
    assert_no_floats(detail, "detail")
    assert detail.order_id == result.order_id, (
        f"detail.order_id is {detail.order_id!r}, post answered {result.order_id!r}"
    )
    if result.order_number is not None:
        assert detail.order_number == result.order_number, (
            f"detail.order_number is {detail.order_number!r}, post answered {result.order_number!r}"
        )
    assert detail.transaction_id == txn.transaction_id, (
        f"detail.transaction_id is {detail.transaction_id!r}, posted {txn.transaction_id!r}"
    )
    assert detail.currency == txn.currency, (
        f"detail.currency {detail.currency!r} != {txn.currency!r}"
    )
    assert detail.total == txn.total, f"detail.total is {detail.total}, posted total {txn.total}"
    _aware(detail.placed_at, "detail.placed_at")
    assert detail.store_id in (None, txn.store_id), (
        f"detail.store_id is {detail.store_id!r}, posted {txn.store_id!r}"
    )
    assert len(detail.lines) == len(txn.lines), (
        f"detail has {len(detail.lines)} lines, posted {len(txn.lines)}"
    )
    for line in txn.lines:
        got = line_for(detail, line.line_id) if line.line_id else detail.line(line.line_number)
        where = f"detail line {line.line_id or line.line_number}"
        assert got.sku == line.sku, f"{where}: sku is {got.sku!r}, posted {line.sku!r}"
        assert got.quantity_ordered == line.quantity, (
            f"{where}: quantity_ordered is {got.quantity_ordered}, posted {line.quantity}"
        )
        assert got.unit_price == line.unit_price, (
            f"{where}: unit_price is {got.unit_price}, posted {line.unit_price}"
        )
        assert got.total == line.signed_total, (
            f"{where}: total is {got.total}, posted line total {line.signed_total} "
            "(quantity x unit price + adjustments + taxes; negative for a RETURN line)"
        )
        if line.kind == LineKind.SALE:
            method = line.fulfillment.method_name
            assert got.fulfillment_method == method, (
                f"{where}: fulfillment_method is {got.fulfillment_method!r}, posted {method!r}"
            )
            fulfilled = line.quantity if line.fulfillment.is_take_with else Decimal(0)
            assert got.quantity_fulfilled == fulfilled, (
                f"{where}: quantity_fulfilled is {got.quantity_fulfilled}, expected {fulfilled} "
                + (
                    "(take-with goods leave with the customer)"
                    if fulfilled
                    else "(not yet fulfilled)"
                )
            )
    paid = sorted(p.amount for p in detail.payments)
    tendered = sorted(t.amount for t in txn.tenders)
    assert paid == tendered, f"detail.payments amounts {paid} != tendered amounts {tendered}"
    return detail


def line_for(detail: OrderDetail, pos_line_id: str) -> OrderLine:
    """The order line that carries the POS's line id (as ``external_line_id`` or ``line_id``).

    A backend may renumber lines (the OMS's own item ids), so scenarios find lines by the POS
    line id they posted and use the backend's ``line_number`` for later cancels and returns.
    """
    found = [line for line in detail.lines if pos_line_id in (line.external_line_id, line.line_id)]
    assert len(found) == 1, (
        f"order {detail.order_id} must have exactly one line carrying the POS line id "
        f"{pos_line_id!r} (external_line_id), found {len(found)}: "
        f"{[(x.line_number, x.line_id, x.external_line_id) for x in detail.lines]}"
    )
    return found[0]


def assert_page(page: Any, where: str) -> OrderPage:
    """A search answer is an :class:`OrderPage` of well-formed hits."""
    assert isinstance(page, OrderPage), f"{where} must be an OrderPage, got {type(page).__name__}"
    assert_no_floats(page, where)
    for i, hit in enumerate(page.hits):
        assert isinstance(hit, OrderHit), f"{where}.hits[{i}] must be an OrderHit"
        assert isinstance(hit.item_count, int) and hit.item_count >= 1, (
            f"{where}.hits[{i}].item_count must be a whole number >= 1, got {hit.item_count!r}"
        )
        _aware(hit.placed_at, f"{where}.hits[{i}].placed_at")
    ids = [hit.order_id for hit in page.hits]
    assert len(ids) == len(set(ids)), f"{where} lists an order twice: {ids}"
    return page


def assert_cancel_result(result: Any, order_id: str, expected: Mapping[int, Decimal]) -> None:
    """A cancel answered a :class:`CancelResult` naming exactly the lines and quantities cancelled."""
    assert isinstance(result, CancelResult), (
        f"cancel must return a CancelResult, got {type(result).__name__} {result!r}"
    )
    assert_no_floats(result, "cancel result")
    assert result.order_id == order_id, f"result.order_id is {result.order_id!r}, not {order_id!r}"
    got = {line.line_number: line.quantity for line in result.cancelled}
    assert got == dict(expected), f"cancelled {got}, expected {dict(expected)}"


def assert_fulfillment_order(fo: Any, where: str) -> FulfillmentOrder:
    """A fulfillment order in the POS's model, with lines and Decimal quantities."""
    assert isinstance(fo, FulfillmentOrder), (
        f"{where} must be a FulfillmentOrder, got {type(fo).__name__}"
    )
    assert_no_floats(fo, where)
    assert fo.lines, f"{where} has no lines"
    for i, line in enumerate(fo.lines):
        assert line.quantity > 0, f"{where}.lines[{i}].quantity must be > 0, got {line.quantity}"
    return fo


@attrs.define
class ErrorInfo:
    """What :func:`raises` caught (``error`` is set once the block has raised)."""

    error: BackendError | None = None


@contextmanager
def raises(
    expected: type[BackendError], *, path: str | None = None, code: str | None = None
) -> Iterator[ErrorInfo]:
    """Expect the block to raise ``expected`` (one class of :mod:`omsbridge.errors`).

    Anything else fails with a message naming what was raised instead. For
    :class:`InvalidTransaction`, ``path`` must name one of the issues (exactly, or as a prefix:
    ``lines[0]`` matches ``lines[0].quantity``). The error's ``retryable`` flag must agree with
    its class.
    """
    info = ErrorInfo()
    try:
        yield info
    except BackendError as exc:
        info.error = exc
    except Exception as exc:
        raise AssertionError(
            f"expected {expected.__name__}, but {type(exc).__module__}.{type(exc).__name__} was "
            f"raised: {exc!r} (every backend error must be one of omsbridge.errors)"
        ) from exc
    else:
        raise AssertionError(f"expected {expected.__name__}, but nothing was raised")
    error = info.error
    assert isinstance(error, expected), (
        f"expected {expected.__name__}, got {type(error).__name__}: {error!r}"
    )
    assert error.retryable is isinstance(error, RetryableError), (
        f"{type(error).__name__}.retryable is {error.retryable!r}"
    )
    if code is not None:
        assert error.code == code, f"error code is {error.code!r}, expected {code!r}"
    if path is not None:
        assert isinstance(error, InvalidTransaction), "only InvalidTransaction names fields"
        paths = [issue.path for issue in error.issues]
        assert any(
            p == path or p.startswith(path + ".") or p.startswith(path + "[") for p in paths
        ), f"expected an issue at {path!r}, the error names {paths} ({error})"
