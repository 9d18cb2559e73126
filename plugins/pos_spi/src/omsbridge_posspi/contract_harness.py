"""The contract-suite harness for ``pos-spi``: the reference SPI server, driven over HTTP.

When the run records (``--record-mode=rewrite``) the harness starts the reference server on a
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

    def __init__(self, *, live: bool, workdir: Path) -> None:
        super().__init__(live=live, workdir=workdir)
        self._app: SpiApp | None = None
        self._server: ServerHandle | None = None
        self._http: httpx.Client | None = None
        self._timeouts = HttpxTimeouts()
        self._server_fault = False
        self.url = _REPLAY_URL

    def start(self) -> None:
        """Start the reference server when recording; write the OAuth client secret to a file."""
        if self.live:
            self._app = SpiApp()
            self._server = serve(self._app)
            self.url = self._server.url
        (self.workdir / _SECRET_FILE).write_text(DEFAULT_CLIENT_SECRET, encoding="utf-8")
        self._http = httpx.Client(base_url=self.url, timeout=10.0)

    def stop(self) -> None:
        """Stop the server and close the admin client."""
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
        self._admin("POST", "/__admin__/reset")

    def order_count(self) -> int:
        """Every order the server holds (sales, returns, exchanges, web orders)."""
        return int(self._admin("GET", "/__admin__/stats")["orders"])

    def seed_online_order(self, order: OnlineOrder) -> str:
        """An order placed on the web shop and shipped from elsewhere (or still open): no store
        has a fulfillment order for it (placed by the distribution's OMS side, as in the demo)."""
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
        return PosSpiOmsSide(self.http).route_to_store(store_id, kind, ref=ref, customer=customer)

    def inject_fault(self, fault: Fault) -> None:
        """5xx, 401 and 429 through the server's fault controls; timeouts on the client side
        (a timeout leaves no answer to record)."""
        if fault is Fault.TIMEOUT:
            self._timeouts.arm()
            return
        self._admin("POST", "/__admin__/faults", json=_SERVER_FAULTS[fault])
        self._server_fault = True

    def clear_faults(self) -> None:
        """Disarm client-side timeouts and, if any was armed, the server's faults."""
        self._timeouts.disarm()
        if self._server_fault:
            self._admin("DELETE", "/__admin__/faults")
            self._server_fault = False

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None
