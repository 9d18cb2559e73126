"""``omsbridge serve`` as a WSGI app: the POS Order SPI for every merchant, answered by the bridge.

Each merchant has its own base URL, ``/merchants/{merchant_id}/``, under which every path of
``docs/pos-spi-openapi.yaml`` is served. A request goes: authenticate the client (API key or
bearer token) -> check it may reach the merchant -> parse the body with the shared converter
(:mod:`omsbridge.wire`, the same classes as the reference server and the client) -> the
merchant's :class:`~omsbridge.bridge.Merchant` -> the model object back as JSON. Errors are the
contract's error bodies (:mod:`omsbridge_posspi.serve.errors`). Outside the merchants:
``/oauth/token``, ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.yaml`` and the outbox
admin under ``/admin/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from omsbridge import wire
from omsbridge.bridge import Bridge, Merchant
from omsbridge.errors import BackendError, InvalidTransaction, UnknownMerchant
from omsbridge.model import (
    FulfillmentAction,
    FulfillmentOrder,
    OrderDetail,
    Transaction,
)
from omsbridge.outbox import Queued
from omsbridge_posspi.messages import CancelLinesRequest, CancelOrderRequest
from omsbridge_posspi.serve import admin
from omsbridge_posspi.serve.auth import Authenticator
from omsbridge_posspi.serve.config import ServeConfig
from omsbridge_posspi.serve.errors import api_error_for, queued_response
from omsbridge_posspi.serve.ops import ServeMetrics, log_request, request_id, store_ready
from omsbridge_posspi.server.errors import (
    ApiError,
    error_response,
    invalid_input,
    json_response,
    model_response,
)
from omsbridge_posspi.server.params import (
    OAuthRefusal,
    check_idempotency_key,
    client_credentials,
    event_wait,
    order_query,
    read_body,
    read_update,
    token_response,
)

__all__ = ["MAX_BODY_BYTES", "ServeApp"]

log = logging.getLogger("omsbridge.serve")

MAX_BODY_BYTES = 2 * 1024 * 1024
"""A request body larger than this is refused (413): a transaction is a few kilobytes."""

_M = "/merchants/<merchant_id>"
_CLIENT_KEY = "omsbridge.serve.client"  # the WSGI environ key naming the authenticated caller


class ServeApp:
    """The WSGI app of ``omsbridge serve`` (see the module doc).

    :param bridge: the merchants and their backends (with the outbox of the config's store).
    :param config: the checked ``[serve]`` section.
    :param openapi: the bytes served at ``/openapi.yaml`` (the contract document).
    """

    def __init__(self, bridge: Bridge, config: ServeConfig, *, openapi: bytes) -> None:
        self.bridge = bridge
        self.config = config
        self.auth = Authenticator(config)
        self.metrics = ServeMetrics(bridge)
        self._openapi = openapi
        self._ready_checks: list[Callable[[], str | None]] = [store_ready(bridge)]
        rules = [
            ("/healthz", "GET", self._healthz, "plain"),
            ("/readyz", "GET", self._readyz, "plain"),
            ("/metrics", "GET", self._metrics, "plain"),
            ("/openapi.yaml", "GET", self._openapi_doc, "plain"),
            ("/oauth/token", "POST", self._token, "plain"),
            (f"{_M}/oauth/token", "POST", self._token, "plain"),
            (f"{_M}/health", "GET", self._health, "plain"),
            ("/admin/outbox", "GET", self._admin_list, "admin"),
            ("/admin/outbox/<int:entry_id>", "GET", self._admin_show, "admin"),
            ("/admin/outbox/<int:entry_id>/retry", "POST", self._admin_retry, "admin"),
            (f"{_M}/orders", "POST", self._post_order, "spi"),
            (f"{_M}/orders", "GET", self._search, "spi"),
            (f"{_M}/orders/<ref>", "GET", self._detail, "spi"),
            (f"{_M}/orders/<ref>/boris", "GET", self._boris, "spi"),
            (f"{_M}/orders/<ref>/cancel", "POST", self._cancel, "spi"),
            (f"{_M}/orders/<ref>/cancel-lines", "POST", self._cancel_lines, "spi"),
            (f"{_M}/fulfillment-orders", "GET", self._fos, "spi"),
            (f"{_M}/fulfillment-orders/<fo_id>", "GET", self._fo, "spi"),
            (f"{_M}/fulfillment-orders/<fo_id>/updates", "POST", self._update, "spi"),
            (f"{_M}/fulfillment-events", "GET", self._events, "spi"),
        ]
        self._routes = Map(
            [
                Rule(path, methods=[method], endpoint=(handler, kind, path))
                for path, method, handler, kind in rules
            ]
        )

    def add_ready_check(self, check: Callable[[], str | None]) -> None:
        """Make ``/readyz`` also depend on ``check`` (None: ready; a string: why not)."""
        self._ready_checks.append(check)

    # -- WSGI -------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Answer one HTTP request (the WSGI entry point)."""
        started = time.monotonic()
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        rid = request_id(request.headers.get("X-Request-Id"))
        route, response = self._dispatch(request)
        response.headers["X-Request-Id"] = rid
        self.metrics.observe(
            route, request.method, response.status_code, time.monotonic() - started
        )
        log_request(
            rid=rid,
            method=request.method,
            route=route,
            path=request.path,
            status=response.status_code,
            started=started,
            client=request.environ.get(_CLIENT_KEY),
        )
        if response.status_code >= 500 and response.status_code not in (501, 503):
            log.error(
                "request %s failed with %d", rid, response.status_code, extra={"request_id": rid}
            )
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> tuple[str, Response]:
        """The route's name and the answer; the caller's name goes in the environ (for the log)."""
        adapter = self._routes.bind_to_environ(request.environ)
        try:
            (handler, kind, route), args = adapter.match()
        except MethodNotAllowed as exc:
            return "-", error_response(ApiError(405, "METHOD_NOT_ALLOWED", str(exc.description)))
        except NotFound:
            return "-", error_response(
                ApiError(404, "NO_SUCH_ENDPOINT", f"no endpoint {request.path}")
            )
        except HTTPException as exc:  # pragma: no cover - routing raises only the above
            return "-", error_response(
                ApiError(exc.code or 500, "HTTP_ERROR", str(exc.description))
            )
        try:
            if kind == "admin":
                self.auth.require_admin(request.headers)
                request.environ[_CLIENT_KEY] = "admin"
            elif kind == "spi":
                caller = self.auth.client(request.headers)
                request.environ[_CLIENT_KEY] = caller.name
                merchant_id = args.pop("merchant_id")
                if (
                    not caller.may_reach(merchant_id)
                    or merchant_id not in self.bridge.config.merchants
                ):
                    # The same answer for "not yours" and "no such merchant": no existence oracle.
                    raise ApiError(
                        404, "UNKNOWN_MERCHANT", f"no merchant {merchant_id!r} for this client"
                    )
                args["merchant"] = self.bridge.for_merchant(merchant_id)
            response: Response = handler(request, **args)
            return route, response
        except ApiError as error:
            return route, error_response(error)
        except InvalidTransaction as exc:
            return route, error_response(invalid_input(exc, exc.code or "INVALID_REQUEST"))
        except BackendError as exc:
            return route, error_response(api_error_for(exc))
        except UnknownMerchant as exc:
            return route, error_response(ApiError(404, "UNKNOWN_MERCHANT", str(exc)))
        except RequestEntityTooLarge:
            return route, error_response(
                ApiError(413, "BODY_TOO_LARGE", f"the body is larger than {MAX_BODY_BYTES} bytes")
            )
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return route, error_response(
                ApiError(500, "INTERNAL_ERROR", "the server failed; try again later")
            )

    # -- helpers ----------------------------------------------------------------------------

    # -- outside the merchants --------------------------------------------------------------

    def _healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    def _readyz(self, request: Request) -> Response:
        problems = [p for p in (check() for check in self._ready_checks) if p]
        if problems:
            return json_response({"status": "not ready", "problems": problems}, 503)
        return json_response({"status": "ready"})

    def _metrics(self, request: Request) -> Response:
        return Response(
            self.metrics.text(), content_type="text/plain; version=0.0.4; charset=utf-8"
        )

    def _openapi_doc(self, request: Request) -> Response:
        return Response(self._openapi, content_type="application/yaml")

    def _health(self, request: Request, merchant_id: str) -> Response:
        return json_response({"status": "ok"})

    def _token(self, request: Request, merchant_id: str | None = None) -> Response:
        """OAuth2 client credentials (RFC 6749 section 4.4), credentials in the form or Basic."""
        try:
            grant = self.auth.grant(*client_credentials(request))
        except OAuthRefusal as refusal:
            return refusal.response()
        if grant is None:
            return OAuthRefusal(401, "invalid_client").response()
        return token_response(request, grant.token, grant.expires_in)

    # -- the outbox admin -------------------------------------------------------------------

    def _admin_list(self, request: Request) -> Response:
        return json_response(admin.list_entries(self.bridge.store, request.args))

    def _admin_show(self, request: Request, entry_id: int) -> Response:
        return json_response(admin.entry_detail(self.bridge.store, entry_id))

    def _admin_retry(self, request: Request, entry_id: int) -> Response:
        return json_response(admin.retry_entry(self.bridge.store, entry_id))

    # -- the SPI, per merchant --------------------------------------------------------------

    def _post_order(self, request: Request, merchant: Merchant) -> Response:
        txn: Transaction = read_body(request, Transaction)
        check_idempotency_key(request.headers.get("Idempotency-Key"), txn)
        try:
            result = merchant.post(txn)
        except Queued as queued:
            self.metrics.queued.labels(merchant.merchant_id).inc()
            return queued_response(queued)
        if not result.created:
            return model_response(result, 200, {"Idempotent-Replayed": "true"})
        location = f"/merchants/{merchant.merchant_id}/orders/{result.order_id}"
        return model_response(result, 201, {"Location": location})

    def _search(self, request: Request, merchant: Merchant) -> Response:
        return model_response(merchant.search_orders(order_query(request.args)))

    def _detail(self, request: Request, merchant: Merchant, ref: str) -> Response:
        return model_response(merchant.get_order(ref))

    def _boris(self, request: Request, merchant: Merchant, ref: str) -> Response:
        # A backend with a BORIS read of its own (the pos-spi backend) uses it; the others'
        # aggregated detail already carries return_by and quantity_returnable.
        for_return: Callable[[str], OrderDetail] | None = getattr(
            merchant.backend, "get_order_for_return", None
        )
        return model_response(for_return(ref) if for_return else merchant.get_order(ref))

    def _cancel(self, request: Request, merchant: Merchant, ref: str) -> Response:
        body: CancelOrderRequest = read_body(request, CancelOrderRequest)
        return model_response(merchant.cancel_order(ref, reason=body.reason))

    def _cancel_lines(self, request: Request, merchant: Merchant, ref: str) -> Response:
        body: CancelLinesRequest = read_body(request, CancelLinesRequest)
        return model_response(merchant.cancel_items(ref, body.lines, reason=body.reason))

    def _fos(self, request: Request, merchant: Merchant) -> Response:
        items = merchant.fulfillment_orders(store_id=request.args.get("store_id") or None)
        return json_response([wire.unstructure(fo) for fo in items])

    def _fo(self, request: Request, merchant: Merchant, fo_id: str) -> Response:
        found = _find_fo(merchant, fo_id)
        if found is None:
            raise ApiError(404, "NOT_FOUND", f"no open fulfillment order {fo_id!r}")
        return model_response(found)

    def _update(self, request: Request, merchant: Merchant, fo_id: str) -> Response:
        update = read_update(request, fo_id)
        before = _find_fo(merchant, fo_id)
        merchant.update_fulfillment(update)
        # The core SPI's update answers nothing: read the order back. Once it is no longer
        # open (picked up, shipped, cancelled) it is not listed: answer it as it was, with the
        # status the step leads to (the contract's table).
        after = _find_fo(merchant, fo_id)
        if after is not None:
            return model_response(after)
        if before is None:
            raise ApiError(404, "NOT_FOUND", f"no open fulfillment order {fo_id!r}")
        status = _STATUS_AFTER.get(update.action, str(update.action))
        return model_response(attrs.evolve(before, status=status))

    def _events(self, request: Request, merchant: Merchant) -> Response:
        after = request.args.get("after") or None
        return model_response(merchant.events(after, wait=event_wait(request.args)))


_STATUS_AFTER = {
    FulfillmentAction.PICK: "PICKED",
    FulfillmentAction.PACK: "PACKED",
    FulfillmentAction.READY_FOR_PICKUP: "READY_FOR_PICKUP",
    FulfillmentAction.PICKED_UP: "PICKED_UP",
    FulfillmentAction.SHIPPED: "SHIPPED",
    FulfillmentAction.RECEIVED: "RECEIVED",
    FulfillmentAction.CANCEL: "CANCELLED",
    FulfillmentAction.REJECT: "REJECTED",
}
"""The status each step leads to (docs/pos-spi-openapi.yaml, UPDATE_FULFILLMENT)."""


def _find_fo(merchant: Merchant, fo_id: str) -> FulfillmentOrder | None:
    """An open fulfillment order by id: the core SPI lists them, it has no single read."""
    return next(
        (fo for fo in merchant.fulfillment_orders() if fo.fulfillment_order_id == fo_id), None
    )
