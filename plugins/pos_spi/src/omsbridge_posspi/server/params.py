"""Reading SPI requests the same way wherever they are answered (the reference server and
``omsbridge serve``): query strings into model objects, and the ``Idempotency-Key`` rule."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from omsbridge import wire
from omsbridge.model import OrderQuery, Transaction
from omsbridge_posspi.server.errors import ApiError

__all__ = ["MAX_WAIT", "check_idempotency_key", "event_wait", "order_query"]

MAX_WAIT = 30.0
"""The longest long-poll of ``GET /fulfillment-events`` in seconds."""


def order_query(args: Mapping[str, str]) -> OrderQuery:
    """``SEARCH_ORDER``'s query string as an :class:`OrderQuery` (bad values: InvalidTransaction)."""
    params: dict[str, Any] = dict(args.items())
    if "page_size" in params:
        size = params["page_size"]
        params["page_size"] = int(size) if size.isdigit() else size
    query: OrderQuery = wire.structure(params, OrderQuery)
    return query


def event_wait(args: Mapping[str, str]) -> float:
    """The ``wait`` of ``GET /fulfillment-events`` in seconds, clamped to ``0..MAX_WAIT``."""
    wait_text = args.get("wait", "0")
    try:
        wait_seconds = Decimal(wait_text)
        if not wait_seconds.is_finite():
            raise ArithmeticError(wait_text)
        wait = float(wait_seconds)
    except ArithmeticError:
        raise ApiError(
            400, "INVALID_REQUEST", f"wait must be seconds, got {wait_text!r}", field="wait"
        ) from None
    return min(max(wait, 0.0), MAX_WAIT)


def check_idempotency_key(key: str | None, txn: Transaction) -> None:
    """The ``Idempotency-Key`` header, when sent, must equal the transaction id (else 400)."""
    if key is not None and key != txn.transaction_id:
        raise ApiError(
            400,
            "IDEMPOTENCY_KEY_MISMATCH",
            f"Idempotency-Key {key!r} must equal transaction_id {txn.transaction_id!r}",
            field="transaction_id",
        )
