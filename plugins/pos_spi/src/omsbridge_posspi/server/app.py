"""The reference SPI server as a WSGI app (werkzeug): HTTP in, :class:`SpiStore` calls, JSON out.

It implements ``docs/pos-spi-openapi.yaml``: authentication (API key header or OAuth2 client
credentials with expiring tokens), idempotent order posting, search, order detail and BORIS
detail, cancellation, fulfillment orders, their updates and the event feed. Test and demo
controls live under ``/__admin__/`` and as methods of :class:`SpiApp`; never expose them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import attrs
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from omsbridge.errors import InvalidTransaction
from omsbridge.model import (
    Address,
    Customer,
    FulfillmentKind,
    FulfillmentOrder,
    Transaction,
)
from omsbridge_posspi.messages import CancelLinesRequest, CancelOrderRequest
from omsbridge_posspi.server.errors import (
    ApiError,
    error_response,
    invalid_input,
    json_response,
    model_response,
    unauthorized,
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
from omsbridge_posspi.server.store import SeededOrder, SeedLine, SpiStore

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "Fault",
    "FaultKind",
    "SeedRequest",
    "SpiApp",
]

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "dev-api-key"
DEFAULT_CLIENT_ID = "pos"
DEFAULT_CLIENT_SECRET = "dev-client-secret"


class FaultKind(StrEnum):
    """What an injected fault does to the next matching requests."""

    ERROR = "error"  # answer ``status`` (500, 503...) with an error body
    TIMEOUT = "timeout"  # sleep ``delay`` seconds, then handle the request normally
    UNAUTHORIZED = "unauthorized"  # answer 401 as if the credentials were refused
    RATE_LIMIT = "rate_limit"  # answer 429 with ``Retry-After: retry_after``


@attrs.define
class Fault:
    """A fault armed for the next ``count`` SPI requests (None: until cleared), optionally only
    for one method and path prefix."""

    kind: FaultKind
    count: int | None = 1
    status: int = 503
    retry_after: int = 1
    delay: float = 2.0
    method: str | None = None
    path_prefix: str | None = None

    def matches(self, request: Request) -> bool:
        """Whether this fault applies to ``request``."""
        return (self.method is None or self.method.upper() == request.method) and (
            self.path_prefix is None or request.path.startswith(self.path_prefix)
        )


@attrs.frozen
class SeedRequest:
    """Body of ``POST /__admin__/seed-online-order`` (see :meth:`SpiStore.seed_online_order`)."""

    store_id: str | None = None
    kind: FulfillmentKind | None = FulfillmentKind.PICKUP
    lines: tuple[SeedLine, ...] = ()
    customer: Customer | None = None
    currency: str = "USD"
    order_number: str | None = None
    ship_to: Address | None = None
    fulfilled: bool = False
    placed_at: datetime | None = None
    carrier: str | None = None
    tracking_number: str | None = None


Handler = Callable[..., Response]


def _canonical(value: Any) -> Any:
    """Plain data in which equal model objects look the same (``12.5`` and ``"12.50"`` alike)."""
    if attrs.has(type(value)):
        fields = {f.name: _canonical(getattr(value, f.name)) for f in attrs.fields(type(value))}
        return [type(value).__name__, fields]
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _fingerprint(txn: Transaction) -> str:
    """What "the same body" means for idempotency: equal after parsing, whatever the spelling."""
    canonical = json.dumps(_canonical(txn), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class SpiApp:
    """The reference Order SPI server: a WSGI callable plus Python test/demo controls.

    :param db: SQLite file, or ``":memory:"`` (the default) for a throw-away store.
    :param api_keys: keys accepted in the ``api_key_header`` header.
    :param oauth_clients: ``client_id -> client_secret`` accepted by ``POST /oauth/token``.
    :param token_ttl: lifetime of issued bearer tokens, in seconds.
    :param admin: serve the ``/__admin__/`` controls (tests and demos only).
    """

    def __init__(
        self,
        db: str = ":memory:",
        *,
        api_keys: Sequence[str] = (DEFAULT_API_KEY,),
        api_key_header: str = "X-API-Key",
        oauth_clients: Mapping[str, str] | None = None,
        token_ttl: int = 3600,
        return_window_days: int = 30,
        admin: bool = True,
    ) -> None:
        self.store = SpiStore(db, return_window_days=return_window_days)
        self.api_keys = frozenset(api_keys)
        self.api_key_header = api_key_header
        self.oauth_clients = dict(
            oauth_clients
            if oauth_clients is not None
            else {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        )
        self.token_ttl = token_ttl
        self.admin = admin
        self._tokens: dict[str, float] = {}  # token -> expiry (time.monotonic)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        """``(method, path)`` of every SPI request received, for tests that count calls."""
        self.tokens_issued = 0
        """How many bearer tokens ``POST /oauth/token`` has issued."""
        self._routes = Map(
            [
                Rule("/health", methods=["GET"], endpoint=self._health),
                Rule("/oauth/token", methods=["POST"], endpoint=self._token),
                Rule("/orders", methods=["POST"], endpoint=self._post_order),
                Rule("/orders", methods=["GET"], endpoint=self._search),
                Rule("/orders/<ref>", methods=["GET"], endpoint=self._detail),
                Rule("/orders/<ref>/boris", methods=["GET"], endpoint=self._boris),
                Rule("/orders/<ref>/cancel", methods=["POST"], endpoint=self._cancel),
                Rule("/orders/<ref>/cancel-lines", methods=["POST"], endpoint=self._cancel_lines),
                Rule("/fulfillment-orders", methods=["GET"], endpoint=self._fos),
                Rule("/fulfillment-orders/<fo_id>", methods=["GET"], endpoint=self._fo),
                Rule(
                    "/fulfillment-orders/<fo_id>/updates", methods=["POST"], endpoint=self._update
                ),
                Rule("/fulfillment-events", methods=["GET"], endpoint=self._events),
                Rule("/__admin__/reset", methods=["POST"], endpoint=self._admin_reset),
                Rule("/__admin__/stats", methods=["GET"], endpoint=self._admin_stats),
                Rule("/__admin__/seed-online-order", methods=["POST"], endpoint=self._admin_seed),
                Rule("/__admin__/faults", methods=["POST"], endpoint=self._admin_fault),
                Rule("/__admin__/faults", methods=["DELETE"], endpoint=self._admin_clear_faults),
                Rule("/__admin__/expire-tokens", methods=["POST"], endpoint=self._admin_expire),
                Rule(
                    "/__admin__/fulfillment-orders/<fo_id>/status",
                    methods=["POST"],
                    endpoint=self._admin_fo_status,
                ),
            ]
        )

    # -- Python controls (the same as /__admin__/) ------------------------------------------

    def reset(self) -> None:
        """Forget all orders, fulfillment orders, events, tokens, faults and recorded requests."""
        self.store.reset()
        with self._lock:
            self._tokens.clear()
            self._faults.clear()
            self.requests.clear()
            self.tokens_issued = 0

    def seed_online_order(self, store_id: str | None = None, **options: Any) -> SeededOrder:
        """Create an online order with a fulfillment order at ``store_id``; ``options`` as in
        :meth:`SpiStore.seed_online_order` (``kind``, ``lines``, ``customer``, ``currency``,
        ``order_number``, ``ship_to``, ``fulfilled``, ``placed_at``)."""
        return self.store.seed_online_order(store_id=store_id, **options)

    def order_count(self) -> int:
        """How many orders the server holds."""
        return self.store.order_count()

    def set_fulfillment_status(self, fulfillment_order_id: str, status: str) -> FulfillmentOrder:
        """Change a fulfillment order's status as the OMS would, emitting an event."""
        return self.store.set_fulfillment_status(fulfillment_order_id, status)

    def inject_fault(self, kind: FaultKind | str, **options: Any) -> Fault:
        """Arm a fault for the next SPI requests: ``count``, ``status``, ``retry_after``,
        ``delay``, ``method``, ``path_prefix`` (see :class:`Fault`). Faults queue up in order."""
        fault = Fault(FaultKind(kind), **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def expire_tokens(self) -> None:
        """Make every issued bearer token expired (the next call with one answers 401)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    # -- WSGI -------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Answer one HTTP request (the WSGI entry point)."""
        request = Request(environ)
        return self._dispatch(request)(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        adapter = self._routes.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed as exc:
            return error_response(ApiError(405, "METHOD_NOT_ALLOWED", str(exc.description)))
        except NotFound:
            return error_response(ApiError(404, "NO_SUCH_ENDPOINT", f"no endpoint {request.path}"))
        except HTTPException as exc:  # pragma: no cover - werkzeug routing raises only the above
            return error_response(ApiError(exc.code or 500, "HTTP_ERROR", str(exc.description)))
        is_admin = request.path.startswith("/__admin__/")
        if is_admin and not self.admin:
            return error_response(ApiError(404, "NO_SUCH_ENDPOINT", f"no endpoint {request.path}"))
        try:
            if not is_admin and endpoint not in (self._health, self._token):
                with self._lock:
                    self.requests.append((request.method, request.path))
                self._apply_fault(request)
                self._authenticate(request)
            response: Response = endpoint(request, **args)
            return response
        except ApiError as error:
            return error_response(error)
        except InvalidTransaction as exc:
            return error_response(invalid_input(exc))
        except Exception:
            # A bug or a database failure: still answer in the contract's error shape.
            log.exception("%s %s failed", request.method, request.path)
            return error_response(
                ApiError(500, "INTERNAL_ERROR", "the server failed; try again later")
            )

    def _apply_fault(self, request: Request) -> None:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(request)), None)
            if fault is None:
                return
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
        if fault.kind == FaultKind.TIMEOUT:
            time.sleep(fault.delay)  # then answer normally: the caller gave up, the work is done
        elif fault.kind == FaultKind.UNAUTHORIZED:
            raise ApiError(401, "UNAUTHORIZED", "credentials refused (injected fault)")
        elif fault.kind == FaultKind.RATE_LIMIT:
            raise ApiError(
                429,
                "RATE_LIMITED",
                f"too many requests; retry after {fault.retry_after} s (injected fault)",
                headers={"Retry-After": str(fault.retry_after)},
            )
        else:
            raise ApiError(
                fault.status, "SERVER_ERROR", f"server error {fault.status} (injected fault)"
            )

    def _authenticate(self, request: Request) -> None:
        key = request.headers.get(self.api_key_header)
        if key is not None and key in self.api_keys:
            return
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            with self._lock:
                expires = self._tokens.get(token)
            if expires is not None and time.monotonic() < expires:
                return
            if expires is not None:
                raise ApiError(401, "TOKEN_EXPIRED", "the bearer token has expired; get a new one")
        raise unauthorized(self.api_key_header, "pos-spi")

    # -- helpers ----------------------------------------------------------------------------

    # -- SPI endpoints ----------------------------------------------------------------------

    def _health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    def _token(self, request: Request) -> Response:
        """OAuth2 client credentials (RFC 6749 section 4.4), credentials in the form or Basic."""
        try:
            client_id, secret = client_credentials(request)
        except OAuthRefusal as refusal:
            return refusal.response()
        expected = self.oauth_clients.get(client_id or "")
        if expected is None or not secrets.compare_digest(expected, secret or ""):
            return OAuthRefusal(401, "invalid_client").response()
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
            self.tokens_issued += 1
        return token_response(request, token, self.token_ttl)

    def _post_order(self, request: Request) -> Response:
        txn: Transaction = read_body(request, Transaction)
        check_idempotency_key(request.headers.get("Idempotency-Key"), txn)
        result = self.store.post_order(txn, body_sha256=_fingerprint(txn))
        if not result.created:
            return model_response(result, 200, {"Idempotent-Replayed": "true"})
        return model_response(result, 201, {"Location": f"/orders/{result.order_id}"})

    def _search(self, request: Request) -> Response:
        return model_response(self.store.search(order_query(request.args)))

    def _detail(self, request: Request, ref: str) -> Response:
        return model_response(self.store.order_detail(ref))

    def _boris(self, request: Request, ref: str) -> Response:
        return model_response(self.store.order_detail(ref, for_return=True))

    def _cancel(self, request: Request, ref: str) -> Response:
        body: CancelOrderRequest = read_body(request, CancelOrderRequest)
        return model_response(self.store.cancel_order(ref, reason=body.reason))

    def _cancel_lines(self, request: Request, ref: str) -> Response:
        body: CancelLinesRequest = read_body(request, CancelLinesRequest)
        return model_response(self.store.cancel_lines(ref, body.lines, reason=body.reason))

    def _fos(self, request: Request) -> Response:
        return model_response(self.store.fulfillment_orders(request.args.get("store_id")))

    def _fo(self, request: Request, fo_id: str) -> Response:
        return model_response(self.store.fulfillment_order(fo_id))

    def _update(self, request: Request, fo_id: str) -> Response:
        return model_response(self.store.update_fulfillment(read_update(request, fo_id)))

    def _events(self, request: Request) -> Response:
        after_text = request.args.get("after")
        try:
            after = int(after_text) if after_text is not None else None
            if after is not None and after < 0:
                raise ValueError(after)
        except ValueError:
            raise ApiError(
                400,
                "INVALID_CHECKPOINT",
                f"after must be a checkpoint from this feed, got {after_text!r}",
                field="after",
            ) from None
        return model_response(self.store.events(after, wait=event_wait(request.args)))

    # -- admin endpoints --------------------------------------------------------------------

    def _admin_reset(self, request: Request) -> Response:
        self.reset()
        return Response(status=204)

    def _admin_stats(self, request: Request) -> Response:
        return json_response({"orders": self.order_count(), "checkpoint": str(self.store.head())})

    def _admin_seed(self, request: Request) -> Response:
        body: SeedRequest = read_body(request, SeedRequest)
        seeded = self.seed_online_order(**attrs.asdict(body, recurse=False))
        return model_response(seeded, 201)

    def _admin_fault(self, request: Request) -> Response:
        data = json.loads(request.get_data() or b"{}")
        try:
            fault = self.inject_fault(**data)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "INVALID_REQUEST", f"bad fault: {exc}") from None
        return json_response(attrs.asdict(fault), 201)

    def _admin_clear_faults(self, request: Request) -> Response:
        self.clear_faults()
        return Response(status=204)

    def _admin_expire(self, request: Request) -> Response:
        self.expire_tokens()
        return Response(status=204)

    def _admin_fo_status(self, request: Request, fo_id: str) -> Response:
        status = json.loads(request.get_data() or b"{}").get("status")
        if not isinstance(status, str) or not status:
            raise ApiError(400, "INVALID_REQUEST", 'give {"status": "..."}', field="status")
        return model_response(self.set_fulfillment_status(fo_id, status))
