"""``PosSpiBackend``: the POS's native Order SPI, hosted by the merchant, called over HTTP.

Every request and answer body is a core model class in the native JSON of :mod:`omsbridge.wire`,
so this module only chooses the path and the class. The contract is ``docs/pos-spi-openapi.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import attrs

from omsbridge import wire
from omsbridge.checked import native_json
from omsbridge.errors import BackendError, InvalidTransaction, TransientBackendError
from omsbridge.model import (
    CancelLine,
    CancelResult,
    EventBatch,
    FulfillmentOrder,
    FulfillmentUpdate,
    OrderDetail,
    OrderPage,
    OrderQuery,
    PostResult,
    Transaction,
)
from omsbridge.spi import Capability, MerchantContext, OrderBackend
from omsbridge_posspi.client import SpiClient, SpiResponse, segment
from omsbridge_posspi.config import PosSpiConfig
from omsbridge_posspi.errors import BACKEND, error_for_status
from omsbridge_posspi.messages import CancelLinesRequest, CancelOrderRequest

__all__ = ["PosSpiBackend"]

T = TypeVar("T")


class PosSpiBackend(OrderBackend):
    """Posts orders to, and reads them from, a merchant-hosted POS Order SPI."""

    name = "pos-spi"
    config_class = PosSpiConfig
    # Every capability, the flavours included: the SPI takes returns without receipt
    # (POST_UNREFERENCED_RETURN) and the POS posts returns as complete orders (RETURNS_AS_ORDERS).
    capabilities = frozenset(Capability)
    description = "The POS's native Order SPI, hosted by the merchant or its OMS vendor"

    def __init__(self, config: PosSpiConfig, merchant: MerchantContext) -> None:
        super().__init__(config, merchant)
        if config.capabilities is not None:
            # The SPI declares less than everything (omsbridge serve in front of such a backend).
            self.capabilities = frozenset(Capability(c) for c in config.capabilities)  # type: ignore[misc]
        self._client = SpiClient(config)

    def __repr__(self) -> str:
        return f"<PosSpiBackend merchant={self.merchant.merchant_id} url={self.config.base_url}>"

    def post(self, transaction: Transaction) -> PostResult:
        """POST the transaction as one order. The ``Idempotency-Key`` is the transaction id, so a
        re-post (after a timeout, say) answers 200 with the existing order: ``created=False``.

        A transaction the export job decoded from the outbox is sent as the stored JSON, which
        holds the same values as encoding it again would (:func:`omsbridge.checked.native_json`).
        """
        native = native_json(transaction)
        response = self._client.request(
            "POST",
            "orders",
            operation="POST_ORDER",
            json_body=None if native is not None else wire.unstructure(transaction),
            body=None if native is None else native.encode("utf-8"),
            headers={"Idempotency-Key": transaction.transaction_id},
        )
        if response.status == 202:
            raise _queued_upstream(response)
        return _post_result(response)

    def cancel_order(self, order_id: str, *, reason: str) -> CancelResult:
        """Cancel everything still open on an order."""
        response = self._client.request(
            "POST",
            f"orders/{segment(order_id)}/cancel",
            operation="CANCEL_ORDER",
            json_body=wire.unstructure(CancelOrderRequest(reason)),
        )
        return _read(response, CancelResult, "CANCEL_ORDER")

    def cancel_items(
        self, order_id: str, lines: Sequence[CancelLine], *, reason: str
    ) -> CancelResult:
        """Cancel a quantity of some lines (numbered as in the SPI's order detail)."""
        response = self._client.request(
            "POST",
            f"orders/{segment(order_id)}/cancel-lines",
            operation="CANCEL_LINES",
            json_body=wire.unstructure(CancelLinesRequest(tuple(lines), reason)),
        )
        return _read(response, CancelResult, "CANCEL_LINES")

    def search_orders(self, query: OrderQuery) -> OrderPage:
        """``SEARCH_ORDER``: the query's fields become query-string parameters."""
        params = {key: str(value) for key, value in wire.unstructure(query).items()}
        params["page_size"] = str(query.page_size)
        response = self._client.request("GET", "orders", operation="SEARCH_ORDER", params=params)
        return _read(response, OrderPage, "SEARCH_ORDER")

    def get_order(self, order_id: str) -> OrderDetail:
        """``GET_ORDER_DETAIL`` by order id, order number or POS transaction id."""
        response = self._client.request(
            "GET", f"orders/{segment(order_id)}", operation="GET_ORDER_DETAIL"
        )
        return _read(response, OrderDetail, "GET_ORDER_DETAIL")

    def get_order_for_return(self, order_id: str) -> OrderDetail:
        """``BORIS_GET_ORDER_DETAIL``: an (online) order as needed to return it in a store,
        with ``return_by`` and per-line ``quantity_returnable``. Not part of the core SPI."""
        response = self._client.request(
            "GET", f"orders/{segment(order_id)}/boris", operation="BORIS_GET_ORDER_DETAIL"
        )
        return _read(response, OrderDetail, "BORIS_GET_ORDER_DETAIL")

    def fulfillment_orders(self, *, store_id: str | None = None) -> Sequence[FulfillmentOrder]:
        """Open fulfillment orders, for one store or all."""
        params = {"store_id": store_id} if store_id else None
        response = self._client.request(
            "GET", "fulfillment-orders", operation="LIST_FULFILLMENT_ORDERS", params=params
        )
        return tuple(_read(response, _FulfillmentOrders, "LIST_FULFILLMENT_ORDERS").items)

    def update_fulfillment(self, update: FulfillmentUpdate) -> None:
        """Report a store's step; repeating the step already reached is harmless."""
        self._client.request(
            "POST",
            f"fulfillment-orders/{segment(update.fulfillment_order_id)}/updates",
            operation="UPDATE_FULFILLMENT",
            json_body=wire.unstructure(update),
        )

    def events(self, checkpoint: str | None, *, wait: float = 0.0) -> EventBatch:
        """Fulfillment events after ``checkpoint`` (None: from now), long-polling up to ``wait`` s."""
        wait = max(0.0, min(wait, self.config.max_event_wait))
        params = {"wait": f"{wait:g}"}
        if checkpoint is not None:
            params["after"] = checkpoint
        response = self._client.request(
            "GET",
            "fulfillment-events",
            operation="FULFILLMENT_EVENTS",
            params=params,
            timeout=self.config.timeout + wait,
        )
        return _read(response, EventBatch, "FULFILLMENT_EVENTS")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


@attrs.frozen
class _FulfillmentOrders:
    """The list answer of ``LIST_FULFILLMENT_ORDERS``, wrapped so it reads like the others."""

    items: tuple[FulfillmentOrder, ...]


def _queued_upstream(response: SpiResponse) -> BackendError:
    """202 from a server with an outbox (``omsbridge serve``): the transaction is not in the OMS
    yet but kept there, to be posted later. Raise what the OMS answered (``cause``), so the POS
    treats it as it would the OMS's own answer; posting again is safe (idempotent)."""
    body = response.data if isinstance(response.data, Mapping) else {}
    cause = body.get("cause") if isinstance(body.get("cause"), Mapping) else {}
    status = cause.get("status")
    error = error_for_status(
        status if isinstance(status, int) and status >= 400 else 503,
        cause,
        operation="POST_ORDER",
        retry_after=response.headers.get("retry-after"),
    )
    error.add_note(
        f"the server queued the transaction as its outbox entry {body.get('entry_id')!r}; it "
        "will post it itself, and posting again is safe"
    )
    return error


def _post_result(response: SpiResponse) -> PostResult:
    """The answer to ``POST_ORDER``; ``created`` follows the status (201 created, 200 found).

    The usual answer (an object of strings and a boolean, nothing else) is read directly; any
    other shape goes through :func:`_read`, which checks it and names what breaks the contract.
    """
    data = response.data
    created = response.status == 201
    if type(data) is dict and _POST_RESULT_KEYS.issuperset(data):
        transaction_id, order_id = data.get("transaction_id"), data.get("order_id")
        number = data.get("order_number")
        if (
            type(transaction_id) is str
            and type(order_id) is str
            and (number is None or type(number) is str)
            and type(data.get("created", True)) is bool
        ):
            return PostResult(transaction_id, order_id, number, created)
    result = _read(response, PostResult, "POST_ORDER")
    if result.created != created:
        result = PostResult(result.transaction_id, result.order_id, result.order_number, created)
    return result


_POST_RESULT_KEYS = frozenset(f.name for f in attrs.fields(PostResult))


def _read(response: SpiResponse, cls: type[T], operation: str) -> T:
    """Structure an answer with the shared converter; a malformed answer is the server's fault."""
    data = {"items": response.data} if cls is _FulfillmentOrders else response.data
    try:
        return wire.structure(data, cls)
    except InvalidTransaction as exc:
        raise TransientBackendError(
            f"{operation}: the SPI answered {response.status} with a body that breaks the "
            f"contract: {exc}",
            code="INVALID_RESPONSE",
            status=response.status,
            backend=BACKEND,
        ) from None
