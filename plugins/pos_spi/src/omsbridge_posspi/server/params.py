"""Reading SPI requests the same way wherever they are answered (the reference server and
``omsbridge serve``): bodies and query strings into model objects, the ``Idempotency-Key``
rule, and the OAuth2 token request and answer."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

from werkzeug.wrappers import Request, Response

from omsbridge import wire
from omsbridge.model import FulfillmentUpdate, OrderQuery, Transaction
from omsbridge_posspi.server.errors import ApiError, json_response

__all__ = [
    "MAX_WAIT",
    "OAuthRefusal",
    "check_idempotency_key",
    "client_credentials",
    "event_wait",
    "order_query",
    "read_body",
    "read_update",
    "token_response",
]

T = TypeVar("T")

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


def read_body(request: Request, cls: type[T]) -> T:
    """The JSON body as ``cls`` through the shared converter (bad input: InvalidTransaction)."""
    value: T = wire.loads(request.get_data(), cls)
    return value


def read_update(request: Request, fo_id: str) -> FulfillmentUpdate:
    """``UPDATE_FULFILLMENT``'s body, whose ``fulfillment_order_id`` must be the path's."""
    update = read_body(request, FulfillmentUpdate)
    if update.fulfillment_order_id != fo_id:
        raise ApiError(
            400,
            "INVALID_REQUEST",
            f"fulfillment_order_id {update.fulfillment_order_id!r} differs from the path {fo_id!r}",
            field="fulfillment_order_id",
        )
    return update


def client_credentials(request: Request) -> tuple[str | None, str | None]:
    """``POST /oauth/token`` (RFC 6749 section 4.4): the client id and secret, from the form or
    HTTP Basic. An unsupported grant raises :class:`OAuthRefusal` (400)."""
    if request.form.get("grant_type") != "client_credentials":
        raise OAuthRefusal(400, "unsupported_grant_type")
    if request.authorization is not None and request.authorization.type == "basic":
        return request.authorization.username, request.authorization.password
    return request.form.get("client_id"), request.form.get("client_secret")


def token_response(request: Request, token: str, expires_in: int) -> Response:
    """The token answer (the scope asked for is echoed), never cached."""
    answer: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    }
    if request.form.get("scope"):
        answer["scope"] = request.form["scope"]
    return json_response(answer, headers={"Cache-Control": "no-store"})


class OAuthRefusal(Exception):
    """A token request refused in RFC 6749's error shape (``{"error": "invalid_client"}``)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error

    def response(self) -> Response:
        """The refusal as an answer."""
        return json_response({"error": self.error}, self.status)
