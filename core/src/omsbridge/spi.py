"""The contract every order-management backend implements.

A backend is a subclass of :class:`OrderBackend` that declares its ``name``, its settings class
(``config_class``, an attrs class read from the merchant's section of the config file) and its
``capabilities``. It overrides the operations it supports; the others raise
:class:`~omsbridge.errors.Unsupported`, never a silent no-op. Every error a backend raises is one
of :mod:`omsbridge.errors`.

Backends are built once per merchant and shared by threads, so operations must be thread-safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from omsbridge.errors import BackendError, Unsupported
from omsbridge.model import (
    CancelLine,
    CancelResult,
    EventBatch,
    FulfillmentOrder,
    FulfillmentUpdate,
    LineKind,
    OrderDetail,
    OrderPage,
    OrderQuery,
    PostResult,
    Transaction,
    TransactionKind,
)

if TYPE_CHECKING:
    from omsbridge.backend_cache import BackendCache

__all__ = [
    "OPERATION_FLAVOURS",
    "ApiBudget",
    "Capability",
    "MerchantContext",
    "OrderBackend",
    "needs_unreferenced_returns",
]


class Capability(StrEnum):
    """An operation (or flavour of one) a backend supports."""

    POST_SALE = "post:sale"
    POST_RETURN = "post:return"
    POST_EXCHANGE = "post:exchange"
    CANCEL_ORDER = "cancel:order"
    CANCEL_ITEMS = "cancel:items"
    SEARCH_ORDERS = "search"
    GET_ORDER = "order:detail"
    FULFILLMENT_ORDERS = "fulfillment:orders"
    UPDATE_FULFILLMENT = "fulfillment:update"
    EVENTS = "fulfillment:events"
    POST_UNREFERENCED_RETURN = "post:return:unreferenced"
    """Returns without receipt: RETURN lines with no ``original`` order (refunded as they are)."""
    RETURNS_AS_ORDERS = "post:return:own-order"
    """A trait, not an operation: a return (or an exchange's return half) is also posted as an
    order of its own that ``get_order(transaction_id)`` reads back like a sale. With or without
    it the return folds into its original order's quantities and totals, and ``post`` answers
    that original order (``PostResult.order_id``); without it (Salesforce OM's submit-return)
    there is no order of its own."""
    MULTI_CURRENCY = "currency:multi"
    """A trait: the backend records each order in the transaction's own currency, so a merchant
    whose config lists several ``currencies`` may post in any of them. Without it a merchant
    takes only its ``currency``."""


OPERATION_FLAVOURS = frozenset(
    {Capability.POST_UNREFERENCED_RETURN, Capability.RETURNS_AS_ORDERS, Capability.MULTI_CURRENCY}
)
"""Capabilities that refine how an operation behaves rather than naming one of the methods."""


def needs_unreferenced_returns(transaction: Transaction) -> bool:
    """Whether ``transaction`` returns a line without naming its original order."""
    return any(line.kind == LineKind.RETURN and line.original is None for line in transaction.lines)


POST_CAPABILITY = {
    TransactionKind.SALE: Capability.POST_SALE,
    TransactionKind.RETURN: Capability.POST_RETURN,
    TransactionKind.EXCHANGE: Capability.POST_EXCHANGE,
}


@attrs.frozen
class MerchantContext:
    """What a backend knows about the merchant it serves, besides its own settings.

    ``plugin_manager`` is the bridge's, for backends that call their own hooks; ``cache``
    keeps what a backend looked up across processes (see :mod:`omsbridge.backend_cache`).
    """

    merchant_id: str
    locale: str | None = None
    region: str | None = None
    currency: str | None = None
    plugin_manager: Any = attrs.field(default=None, eq=False, repr=False)
    cache: BackendCache | None = attrs.field(default=None, eq=False, repr=False)
    """A durable per-merchant cache in the bridge's store (None without a store)."""


@attrs.frozen
class ApiBudget:
    """What is left of the backend's API allowance, as it last reported (e.g. Sforce-Limit-Info)."""

    remaining: int
    limit: int | None
    observed_at: datetime


class OrderBackend:
    """Base class of order-management backends. Override the operations you support.

    ``__init__(config, merchant)`` receives the merchant's typed settings (an instance of
    ``config_class``) and a :class:`MerchantContext`.
    """

    name: ClassVar[str]
    """The name merchants select with ``backend = "..."`` in the config file."""

    config_class: ClassVar[type[Any]]
    """The attrs class of this backend's settings (the ``[merchants.ID.<name>]`` table)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    """What this backend supports; everything else raises :class:`Unsupported`."""

    description: ClassVar[str] = ""
    """One line shown by ``omsbridge backends``."""

    max_batch_size: ClassVar[int] = 1
    """How many transactions :meth:`post_batch` sends in one request; 1 means no batching.
    A backend that can post many in one request (a composite call) sets it higher and
    overrides :meth:`post_batch`; the export job then hands it that many at a time."""

    def __init__(self, config: Any, merchant: MerchantContext) -> None:
        self.config = config
        self.merchant = merchant

    def _unsupported(self, operation: str) -> Unsupported:
        return Unsupported(
            f"backend {self.name!r} does not support {operation}",
            code="UNSUPPORTED",
            backend=self.name,
        )

    def post(self, transaction: Transaction) -> PostResult:
        """Post a sale, return or exchange as one order. Idempotent on ``transaction_id``:
        posting the same transaction again returns the existing order with ``created=False``."""
        raise self._unsupported("post")

    def post_batch(self, transactions: Sequence[Transaction]) -> list[PostResult | BackendError]:
        """Post up to ``max_batch_size`` transactions, each succeeding or failing on its own.

        Returns one item per transaction, in order: its :class:`PostResult`, or the error that
        item met. Idempotent on each ``transaction_id`` like :meth:`post`. Raise only when the
        request as a whole failed (then nothing is known about any item). The default posts
        them one by one."""
        results: list[PostResult | BackendError] = []
        for transaction in transactions:
            try:
                results.append(self.post(transaction))
            except BackendError as error:
                results.append(error)
        return results

    def api_budget(self) -> ApiBudget | None:
        """The API budget left as the backend last heard it, if the OMS reports one; shown in
        the export metrics. The default reports nothing."""
        return None

    def cancel_order(self, order_id: str, *, reason: str) -> CancelResult:
        """Cancel everything still open on an order."""
        raise self._unsupported("cancel_order")

    def cancel_items(
        self, order_id: str, lines: Sequence[CancelLine], *, reason: str
    ) -> CancelResult:
        """Cancel some quantity of some lines of an order."""
        raise self._unsupported("cancel_items")

    def search_orders(self, query: OrderQuery) -> OrderPage:
        """Find orders; pass ``page.next_cursor`` back as ``query.cursor`` for the next page."""
        raise self._unsupported("search_orders")

    def get_order(self, order_id: str) -> OrderDetail:
        """Read one order with its lines, payments, fulfillment orders and shipments.
        ``order_id`` may be the backend's order id, the POS order number or the POS
        transaction id of the order's sale."""
        raise self._unsupported("get_order")

    def fulfillment_orders(self, *, store_id: str | None = None) -> Sequence[FulfillmentOrder]:
        """The fulfillment orders waiting on stores (all stores, or one)."""
        raise self._unsupported("fulfillment_orders")

    def fulfillment_orders_by_id(self, ids: Sequence[str]) -> Sequence[FulfillmentOrder]:
        """The named fulfillment orders that still wait on a store (others are left out).

        The default filters :meth:`fulfillment_orders`; override it when the OMS can fetch by
        id, so an import never lists every open order (or misses one past a page limit)."""
        wanted = set(ids)
        return [fo for fo in self.fulfillment_orders() if fo.fulfillment_order_id in wanted]

    def update_fulfillment(self, update: FulfillmentUpdate) -> None:
        """Report a store's step (pick, pack, ready, picked up, shipped, cancel...) to the OMS."""
        raise self._unsupported("update_fulfillment")

    def events(self, checkpoint: str | None, *, wait: float = 0.0) -> EventBatch:
        """Read fulfillment events after ``checkpoint`` (None: from now), waiting up to ``wait``
        seconds for the first one. Store an event's ``checkpoint`` only after handling it."""
        raise self._unsupported("events")

    def close(self) -> None:
        """Release connections and other resources. The default does nothing."""
