"""Fake backends for testing the kit: deliberately broken ones, a minimal one, and one on HTTP.

The inner pytest runs (pytester) register them through ``pytest_omsbridge_plugin_manager``;
each broken backend has exactly one defect that one scenario must catch.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs
import httpx
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from omsbridge.config import Secret
from omsbridge.errors import (
    AuthFailed,
    BackendError,
    Rejected,
    TransientBackendError,
)
from omsbridge.model import (
    CancelLine,
    CancelResult,
    OrderDetail,
    PostResult,
    Transaction,
    TransactionKind,
)
from omsbridge.spi import Capability, MerchantContext, OrderBackend
from omsbridge_contract import Fault, Harness
from omsbridge_contract.testing import MemoryBackend, MemoryHarness, store_named

INNER_CONFTEST = """
pytest_plugins = ["omsbridge_contract.plugin"]


def pytest_omsbridge_plugin_manager(config):
    from omsbridge.plugins import new_plugin_manager

    import contract_kit_fakes

    pm = new_plugin_manager()
    contract_kit_fakes.register_all(pm)
    return pm
"""
"""A third party's conftest: the one opt-in line, plus (for fakes that are not installed
through an entry point) the hook that hands the suite a plugin manager."""


# -- broken in-memory backends (one defect each) ----------------------------------------------


class DoublePost(MemoryBackend):
    """Forgets idempotency: a re-post creates a second order."""

    name = "broken-double-post"

    def post(self, transaction: Transaction) -> PostResult:
        """Post as if the transaction id were new."""
        with self.store.lock:
            self.store.by_transaction.pop(transaction.transaction_id, None)
        return super().post(transaction)


class FloatMoney(MemoryBackend):
    """Reads totals back as floats."""

    name = "broken-float-money"

    def get_order(self, order_id: str) -> OrderDetail:
        """The detail, with its net total turned into a float (past OrderTotals' own check,
        as a backend building its objects around the constructor could)."""
        detail = super().get_order(order_id)
        totals = attrs.evolve(detail.totals)
        object.__setattr__(totals, "net", float(detail.total))
        return attrs.evolve(detail, totals=totals)


class Wrong503(MemoryBackend):
    """Maps a 503 to a permanent rejection."""

    name = "broken-503"

    def error_for_status(self, status: int, operation: str) -> BackendError:
        """503 becomes Rejected (wrong: it is transient)."""
        if status == 503:
            return Rejected(f"{operation}: 503", code="UNAVAILABLE", backend=self.name)
        return super().error_for_status(status, operation)


class RawErrors(MemoryBackend):
    """Lets a non-taxonomy exception escape for a 503."""

    name = "broken-raw-errors"

    def error_for_status(self, status: int, operation: str) -> BackendError:
        """Raises RuntimeError for a 503 instead of returning a mapped error."""
        if status == 503:
            raise RuntimeError(f"HTTP {status}")
        return super().error_for_status(status, operation)


class SilentNoop(MemoryBackend):
    """Leaves cancel_items out of its capabilities but silently 'does' it anyway."""

    name = "broken-silent-noop"
    capabilities = frozenset(Capability) - {Capability.CANCEL_ITEMS}

    def cancel_items(
        self, order_id: str, lines: Sequence[CancelLine], *, reason: str
    ) -> CancelResult:
        """Returns an empty result instead of raising Unsupported."""
        return CancelResult(order_id, ())


class NoReturnCheck(MemoryBackend):
    """Accepts returns of more than was bought."""

    name = "broken-no-return-check"

    def _check_returnable(self, target: Any, want: Any, path: str) -> None:
        return None


class DoublePostKnown(DoublePost):
    """The same defect, declared by its harness as an expected failure."""

    name = "broken-double-post-known"


class DoublePostKnownHarness(MemoryHarness):
    """Declares the idempotency scenario as a known failure."""

    backend = "broken-double-post-known"
    expected_failures = {"test_post_idempotent_repost": "ACME-123: re-posts are not deduplicated"}


def _harness_for(backend: type[OrderBackend]) -> type[Harness]:
    return type(f"{backend.__name__}Harness", (MemoryHarness,), {"backend": backend.name})


class SalesOnly(MemoryBackend):
    """Declares only sales; every other operation is left as the base class has it."""

    name = "sales-only"
    capabilities = frozenset({Capability.POST_SALE})

    def post(self, transaction: Transaction) -> PostResult:
        """Sales only: a return or exchange is Unsupported."""
        if transaction.kind != TransactionKind.SALE:
            raise self._unsupported(f"post of a {transaction.kind}")
        return super().post(transaction)

    cancel_order = OrderBackend.cancel_order
    cancel_items = OrderBackend.cancel_items
    search_orders = OrderBackend.search_orders
    get_order = OrderBackend.get_order
    fulfillment_orders = OrderBackend.fulfillment_orders
    update_fulfillment = OrderBackend.update_fulfillment
    events = OrderBackend.events


class MinimalHarness(Harness):
    """Only what a harness must have: settings and order_count."""

    backend = "sales-only"

    def start(self) -> None:
        """A store of its own."""
        self.store_name = f"minimal-{id(self)}"
        store_named(self.store_name)

    def settings(self) -> dict[str, Any]:
        """The store's name."""
        return {"store": self.store_name}

    def order_count(self) -> int:
        """Orders in the store."""
        return len(store_named(self.store_name).orders)


class Variants(MemoryBackend):
    """The reference backend, run by a harness with two variants."""

    name = "variants"


class VariantsHarness(MemoryHarness):
    """Declares two variants; records which one the suite chose in the settings it gives."""

    backend = "variants"
    variants = ("alpha", "beta")
    cassette_dir = "variant-cassettes"

    def settings(self) -> dict[str, Any]:
        """The memory store, and a marker file naming the variant this run uses."""
        Path("chosen-variant.txt").write_text(str(self.variant), encoding="utf-8")
        return super().settings()


class HalfDoneFulfillment(MemoryBackend):
    """Declares fulfillment orders (as the reference backend does) ..."""

    name = "half-done-fulfillment"


class HalfDoneFulfillmentHarness(MemoryHarness):
    """... but its harness cannot route an order to a store (the method is the base class's)."""

    backend = "half-done-fulfillment"
    make_fulfillment_order = Harness.make_fulfillment_order


class NoHarnessBackend(MemoryBackend):
    """Registered, but no plugin gives it a harness."""

    name = "no-harness"


BROKEN: dict[str, tuple[type[OrderBackend], str]] = {
    DoublePost.name: (DoublePost, "test_post_idempotent_repost"),
    FloatMoney.name: (FloatMoney, "test_order_detail"),
    Wrong503.name: (Wrong503, "test_fault_server_error"),
    RawErrors.name: (RawErrors, "test_fault_server_error"),
    SilentNoop.name: (SilentNoop, "test_unsupported_operations_raise"),
    NoReturnCheck.name: (NoReturnCheck, "test_bad_input_over_return"),
}
"""Broken backend name -> (class, the scenario that must catch it)."""


# -- a backend on HTTP, with a local server, to exercise recording -----------------------------

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwb3MtY29udHJhY3QifQ.c2lnbmF0dXJlLXNlY3JldA"
CLIENT_SECRET = "s3cr3t-client-value"


class SalesServer:
    """A tiny order server: OAuth token endpoint (answers with secrets), idempotent orders."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.fault: int | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        return self._route(request)(environ, start_response)

    def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/token" and method == "POST":
            if request.form.get("client_secret") != CLIENT_SECRET:
                return _json({"error": "invalid_client"}, 401)
            answer = {
                "access_token": TOKEN,
                "refresh_token": "5Aep861refresh-token-value",
                "instance_url": "https://acme-retail.my.salesforce.com",
                "token_type": "Bearer",
            }
            response = _json(answer)
            response.headers["Set-Cookie"] = "sid=00Dxx0000001gPL!AQ4AQFsessioncookie; Path=/"
            return response
        if path == "/admin/fault":
            self.fault = 503 if method == "POST" else None
            return Response(status=204)
        if path == "/ping":
            return _json({"pong": True})
        if path == "/poll":
            # A long poll: answered when an order arrives, else after a while.
            seen = len(self.orders)
            deadline = time.monotonic() + 5.0
            while len(self.orders) == seen and time.monotonic() < deadline:
                time.sleep(0.01)
            return _json({"orders": len(self.orders)})
        if path == "/count":
            return _json({"count": len(self.orders)})
        if path == "/orders" and method == "POST":
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return _json({"error": "unauthorized"}, 401)
            if self.fault:
                return _json({"error": "unavailable"}, self.fault)
            body = json.loads(request.get_data())
            known = self.orders.get(body["transaction_id"])
            if known is not None:
                return _json(known, 200)
            order = {"order_id": f"H-{len(self.orders) + 1}", **body}
            self.orders[body["transaction_id"]] = order
            return _json(order, 201)
        return _json({"error": "no such endpoint"}, 404)


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


@attrs.frozen
class HttpSalesConfig:
    """Where the tiny server is and the client secret."""

    base_url: str
    client_secret: Secret


class HttpSales(OrderBackend):
    """Posts sales to :class:`SalesServer` over httpx, with a bearer token."""

    name = "http-sales"
    config_class = HttpSalesConfig
    capabilities = frozenset({Capability.POST_SALE})

    def __init__(self, config: HttpSalesConfig, merchant: MerchantContext) -> None:
        super().__init__(config, merchant)
        self._http = httpx.Client(base_url=config.base_url, timeout=5.0)
        self._token: str | None = None

    def post(self, transaction: Transaction) -> PostResult:
        """POST the sale; 5xx and timeouts are transient, 401 is AuthFailed."""
        try:
            if self._token is None:
                answer = self._http.post(
                    "/token",
                    data={"client_id": "pos", "client_secret": self.config.client_secret.reveal()},
                )
                self._token = answer.json()["access_token"]
            response = self._http.post(
                "/orders",
                json={
                    "transaction_id": transaction.transaction_id,
                    "total": str(transaction.total),
                },
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except httpx.TimeoutException as exc:
            raise TransientBackendError(str(exc), backend=self.name) from None
        if response.status_code >= 500:
            raise TransientBackendError("unavailable", status=response.status_code)
        if response.status_code == 401:
            raise AuthFailed("unauthorized", status=401)
        body = response.json()
        return self._result(transaction, body, created=response.status_code == 201)

    def _result(self, txn: Transaction, body: dict[str, Any], *, created: bool) -> PostResult:
        return PostResult(txn.transaction_id, body["order_id"], None, created)

    def close(self) -> None:
        """Close the client."""
        self._http.close()


class HttpSalesDouble(HttpSales):
    """Claims every post created a new order (so the idempotency scenario fails)."""

    name = "http-sales-double"

    def _result(self, txn: Transaction, body: dict[str, Any], *, created: bool) -> PostResult:
        return PostResult(txn.transaction_id, body["order_id"], None, True)


class HttpSalesPinging(HttpSales):
    """Pings the server before each post and ignores the outcome, like a background poll."""

    name = "http-sales-pinging"

    def post(self, transaction: Transaction) -> PostResult:
        """Ping (best effort), then post."""
        with contextlib.suppress(Exception):  # refused on replay if unrecorded: carry on
            self._http.get("/ping")
        return super().post(transaction)


class HttpSalesPolling(HttpSales):
    """Long-polls ``/poll`` from a background thread for as long as it is open, like a
    streaming feed; the poll still open when a recording stops is never recorded."""

    name = "http-sales-polling"

    def __init__(self, config: HttpSalesConfig, merchant: MerchantContext) -> None:
        super().__init__(config, merchant)
        self._stop = threading.Event()
        self._fed = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                if self._http.get("/poll").json()["orders"]:
                    self._fed.set()
            except Exception:  # closed under it, or held and dropped on replay: the feed ends
                return

    def post(self, transaction: Transaction) -> PostResult:
        """Post, then wait for the feed to show the new order (so the poll it answered is
        always recorded, and the next one is always still open at close)."""
        result = super().post(transaction)
        self._fed.wait(5.0)
        return result

    def close(self) -> None:
        """Stop polling (a poll in flight is abandoned), then close the client."""
        self._stop.set()
        super().close()


class NoUnreferencedReturns(MemoryBackend):
    """The in-memory backend without returns without receipt (a capability left out)."""

    name = "memory-no-unreferenced"
    capabilities = frozenset(Capability) - {Capability.POST_UNREFERENCED_RETURN}


class HttpSalesHarness(Harness):
    """Starts :class:`SalesServer` when recording; talks to it over recorded HTTP."""

    backend = "http-sales"
    cassette_dir: ClassVar[Path | None] = None  # the tests pass --oms-cassettes
    faults = frozenset({Fault.SERVER_ERROR})
    started: ClassVar[list[bool]] = []

    def start(self) -> None:
        """Serve on a free port when live; otherwise point at a port nobody listens on."""
        self.url = "http://127.0.0.1:9"
        self._server = None
        if self.live:
            self._server = make_server("127.0.0.1", 0, SalesServer(), threaded=True)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
            self.url = f"http://127.0.0.1:{self._server.server_port}"
        HttpSalesHarness.started.append(self.live)
        self._http = httpx.Client(base_url=self.url, timeout=5.0)

    def stop(self) -> None:
        """Stop serving."""
        self._http.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def settings(self) -> HttpSalesConfig:
        """An attrs instance (the other form a harness may give)."""
        return HttpSalesConfig(self.url, Secret(CLIENT_SECRET, "test"))

    def order_count(self) -> int:
        """Asked over HTTP, so it is recorded too."""
        return int(self._http.get("/count").json()["count"])

    def inject_fault(self, fault: Fault) -> None:
        """The server answers 503 until cleared."""
        self._http.post("/admin/fault")
        self._armed = True

    def clear_faults(self) -> None:
        """Back to normal (only when a fault was armed, so cassettes stay small)."""
        if getattr(self, "_armed", False):
            self._http.delete("/admin/fault")
            self._armed = False


class HttpSalesPingingHarness(HttpSalesHarness):
    """Tolerates an unrecorded ping on replay."""

    backend = "http-sales-pinging"

    def unrecorded_request_allowed(self, method: str, uri: str) -> bool:
        """Only the best-effort ping."""
        return method == "GET" and uri.endswith("/ping")


class HttpSalesPollingHarness(HttpSalesHarness):
    """Declares the backend's long poll."""

    backend = "http-sales-polling"
    long_poll_paths = ("/poll",)


class HttpSalesDoubleHarness(HttpSalesHarness):
    """The same server, for the broken client."""

    backend = "http-sales-double"


def register_all(pm: Any) -> None:
    """Register every fake backend and its harness in an omsbridge plugin manager."""
    from omsbridge_contract.testing import memory_plugin

    pairs: list[tuple[type[OrderBackend], type[Harness]]] = [
        (MemoryBackend, MemoryHarness),
        *((cls, _harness_for(cls)) for cls, _ in BROKEN.values()),
        (SalesOnly, MinimalHarness),
        (DoublePostKnown, DoublePostKnownHarness),
        (HttpSales, HttpSalesHarness),
        (HttpSalesDouble, HttpSalesDoubleHarness),
        (HttpSalesPinging, HttpSalesPingingHarness),
        (HttpSalesPolling, HttpSalesPollingHarness),
        (NoUnreferencedReturns, _harness_for(NoUnreferencedReturns)),
        (Variants, VariantsHarness),
        (HalfDoneFulfillment, HalfDoneFulfillmentHarness),
    ]
    for backend, harness in pairs:
        pm.register(memory_plugin(backend, harness), name=f"fake-{backend.name}")

    class _OnlyBackend:
        from omsbridge import hookimpl

        @staticmethod
        @hookimpl
        def omsbridge_register_backends(register: Callable[[type[OrderBackend]], None]) -> None:
            """Offer a backend and no harness."""
            register(NoHarnessBackend)

    pm.register(_OnlyBackend(), name="fake-no-harness")
