"""The contract-suite harness for ``pos-spi``: the reference SPI server, driven over HTTP.

Three variants (``--oms-variant``): ``direct`` (default) calls the reference server itself;
``serve-posspi`` and ``serve-salesforce`` call ``omsbridge serve``, which fronts the reference
server or the Salesforce sandbox (``som`` profile) through the bridge
(:mod:`omsbridge_posspi.serve_chain`). The serve variants run live only
(``--disable-recording``): a cassette of the POS's traffic with ``serve`` would replay serve's
recorded answers without running serve, proving nothing about it.

For ``direct``, when the run records (``--record-mode=rewrite``) the harness starts the reference server on a
free local port; when it replays (CI) no server runs and everything, the harness's own admin
calls included, comes from the cassettes in ``tests/contract/cassettes/``. The backend
authenticates with OAuth2 client credentials, so the cassettes also prove that token requests
and answers are scrubbed.

Imported only by the contract suite (``omsbridge-contract`` must be installed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from omsbridge.local import WebLine, WebOrder
from omsbridge.model import Customer, FulfillmentKind
from omsbridge_contract import Fault, Harness, HttpxTimeouts, OnlineOrder
from omsbridge_posspi.oms_side import PosSpiOmsSide
from omsbridge_posspi.serve_chain import ServeChain
from omsbridge_posspi.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ServerHandle,
    SpiApp,
    serve,
)

__all__ = ["PosSpiHarness"]

_REPLAY_URL = "http://127.0.0.1:9"
"""Where the backend points when replaying: never contacted (ports are not matched)."""

_SECRET_FILE = "pos-spi-client-secret.txt"
_LASTING = 1_000_000  # a server fault "count": in force until the harness clears it

_SERVER_FAULTS: dict[Fault, dict[str, Any]] = {
    Fault.SERVER_ERROR: {"kind": "error", "status": 503, "count": _LASTING},
    Fault.AUTH: {"kind": "unauthorized", "count": _LASTING},
    Fault.RATE_LIMIT: {"kind": "rate_limit", "retry_after": 7, "count": _LASTING},
}


class PosSpiHarness(Harness):
    """Drives the reference SPI server (``omsbridge_posspi.server``) for the contract suite."""

    backend = "pos-spi"
    cassette_dir = Path(__file__).resolve().parents[2] / "tests" / "contract" / "cassettes"
    faults = frozenset(Fault)
    variants = ("direct", "serve-posspi", "serve-salesforce")
    """``direct``: the reference server; ``serve-*``: ``omsbridge serve`` in front of the
    reference server or the Salesforce sandbox (live runs only)."""

    def __init__(self, *, live: bool, workdir: Path) -> None:
        super().__init__(live=live, workdir=workdir)
        self._chain: ServeChain | None = None
        self._app: SpiApp | None = None
        self._server: ServerHandle | None = None
        self._http: httpx.Client | None = None
        self._timeouts = HttpxTimeouts()
        self._server_fault = False
        self.url = _REPLAY_URL

    def start(self) -> None:
        """Start the reference server when recording; write the OAuth client secret to a file.
        A serve variant starts its chain (the fronted system, then ``serve``) instead."""
        if self.variant not in (None, "direct"):
            if not self.live:
                raise RuntimeError(
                    f"--oms-variant {self.variant} runs live only: add --disable-recording "
                    "(serve and the system it fronts start on loopback)"
                )
            fronted = "salesforce" if self.variant == "serve-salesforce" else "pos-spi"
            self._chain = ServeChain(fronted, self.workdir)
            self._chain.start()
            return
        if self.live:
            self._app = SpiApp()
            self._server = serve(self._app)
            self.url = self._server.url
        (self.workdir / _SECRET_FILE).write_text(DEFAULT_CLIENT_SECRET, encoding="utf-8")
        self._http = httpx.Client(base_url=self.url, timeout=10.0)

    def stop(self) -> None:
        """Stop the server and close the admin client."""
        if self._chain is not None:
            self._chain.stop()
            return
        self._timeouts.disarm()
        if self._http is not None:
            self._http.close()
        if self._server is not None:
            self._server.stop()
        if self._app is not None:
            self._app.store.close()

    @property
    def http(self) -> httpx.Client:
        """The harness's own client (admin controls and counting), recorded like the backend's."""
        assert self._http is not None, "the harness is not started"
        return self._http

    def settings(self) -> dict[str, Any]:
        """The merchant's ``[merchants.ID.pos-spi]`` table: OAuth2, the secret as a file reference."""
        if self._chain is not None:
            return self._chain.pos_settings()
        return {
            "base_url": self.url,
            "timeout": 5,
            "max_event_wait": 5,
            "auth": {
                "type": "oauth2",
                "token_url": f"{self.url}/oauth/token",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": {"file": _SECRET_FILE},
                "scope": "orders",
            },
        }

    def reset(self) -> None:
        """Empty the server, so every scenario sees the same ids whatever ran before it."""
        if self._chain is not None:
            self._chain.reset()
            return
        self._admin("POST", "/__admin__/reset")

    def order_count(self) -> int:
        """Every order the server holds (sales, returns, exchanges, web orders)."""
        if self._chain is not None:
            return self._chain.inner.order_count()
        return int(self._admin("GET", "/__admin__/stats")["orders"])

    def seed_online_order(self, order: OnlineOrder) -> str:
        """An order placed on the web shop and shipped from elsewhere (or still open): no store
        has a fulfillment order for it (placed by the distribution's OMS side, as in the demo)."""
        if self._chain is not None:
            return self._chain.inner.seed_online_order(order)
        web = WebOrder(
            ref=order.ref,
            customer=order.customer,
            lines=tuple(
                WebLine(line.sku, line.quantity, line.unit_price, line.name) for line in order.lines
            ),
            placed_at=order.placed_at,
            currency=order.currency,
            shipped=order.shipped,
        )
        return PosSpiOmsSide(self.http).place_web_order(web)

    def make_fulfillment_order(
        self, store_id: str, kind: FulfillmentKind, *, ref: str, customer: Customer
    ) -> str:
        """An online order routed to ``store_id`` (BOPIS or BOFIS), waiting on the store."""
        if self._chain is not None:
            return self._chain.inner.make_fulfillment_order(
                store_id, kind, ref=ref, customer=customer
            )
        return PosSpiOmsSide(self.http).route_to_store(store_id, kind, ref=ref, customer=customer)

    def inject_fault(self, fault: Fault) -> None:
        """5xx, 401 and 429 through the server's fault controls; timeouts on the client side
        (a timeout leaves no answer to record). A serve variant breaks the fronted system."""
        if self._chain is not None:
            self._chain.inner.inject_fault(fault)
            return
        if fault is Fault.TIMEOUT:
            self._timeouts.arm()
            return
        self._admin("POST", "/__admin__/faults", json=_SERVER_FAULTS[fault])
        self._server_fault = True

    def clear_faults(self) -> None:
        """Disarm client-side timeouts and, if any was armed, the server's faults."""
        if self._chain is not None:
            self._chain.inner.clear_faults()
            return
        self._timeouts.disarm()
        if self._server_fault:
            self._admin("DELETE", "/__admin__/faults")
            self._server_fault = False

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None
