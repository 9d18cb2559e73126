"""The contract-suite harness for ``salesforce``: the local Salesforce OMS sandbox, over HTTP.

Two variants, one per sandbox org profile (``--oms-variant som`` (default) or ``som-minimal``):
the merchant's settings are what the sandbox says suit that profile. When the run records
(``--record-mode=rewrite``) the harness serves a fresh demo-seeded sandbox of that profile
(:func:`omsbridge_salesforce_sandbox.serve`) on a free loopback port; when it replays (CI) no
server runs and everything, the harness's own calls included, comes from the cassettes in
``tests/contract/cassettes/<variant>/``. Every scenario starts with ``POST /__sandbox__/reset``
(seed ``demo``), so record ids are the same on every recording of a scenario.

What only the OMS side can create (an online order for BORIS, a fulfillment order routed to a
store) is created through Salesforce's own REST API, as a web store would, by the sandbox
distribution's OMS side (:class:`omsbridge_salesforce_sandbox.oms_side.SalesforceOmsSide`, which
``omsbridge demo`` uses too) on the harness's recorded client: one composite graph (account,
product, order, delivery group, items, payment, activation), the Connect summary action where
the org has no flow, then the Connect ``fulfillment-orders`` action.

Faults use the sandbox's controls: 5xx is a fault rule, a refused credential is a token lifetime
so short that every session is already expired (so the re-authentication is refused too), an
exhausted API budget is ``api_used = api_budget``; timeouts are raised on the client side
(a timeout has no answer to record).

Imported only by the contract suite (``omsbridge-contract`` must be installed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from omsbridge.model import Customer, FulfillmentKind
from omsbridge_contract import Fault, Harness, HttpxTimeouts, OnlineOrder, data
from omsbridge_salesforce.streaming import bayeux_async
from omsbridge_salesforce_sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME

__all__ = ["SalesforceHarness"]

_REPLAY_URL = "http://127.0.0.1:9"
"""Where the backend points when replaying: never contacted (ports are not matched), and the
port every loopback URL is stored with."""

_API = "v62.0"
_PASSWORD_FILE = "salesforce-password.txt"
_SECRET_FILE = "salesforce-client-secret.txt"
_STORE_FIELD = "POS_Store_Id__c"  # the setup package's Location field for the store id
_LASTING = 1_000_000  # a fault rule "count": in force until the harness clears it
_DEFAULT_TOKEN_LIFETIME = 7200.0  # the sandbox's default (docs/sandbox-salesforce.md)
_API_BUDGET = 100_000  # the sandbox's default DailyApiRequests maximum
_EXPIRED_AT_ONCE = 1e-6  # seconds: every session issued with it is expired when first used


_TRANSPORT_ENV = "OMSBRIDGE_CONTRACT_EVENT_TRANSPORT"


class SalesforceHarness(Harness):
    """Drives the Salesforce OMS sandbox (``omsbridge_salesforce_sandbox``) for the contract suite."""

    backend = "salesforce"
    variants = ("som", "som-minimal")
    """The sandbox's org profiles: ``som`` (flow, multicurrency, Person Accounts) and
    ``som-minimal`` (the setup package and nothing else)."""
    cassette_dir = Path(__file__).resolve().parents[2] / "tests" / "contract" / "cassettes"
    faults = frozenset(Fault)
    # The CometD feed long-polls /meta/connect in the background: the poll still open
    # when a recording stops is never recorded, yet is always sent again on replay.
    long_poll_paths = ("/cometd/",)

    def __init__(self, *, live: bool, workdir: Path) -> None:
        super().__init__(live=live, workdir=workdir)
        self._server: Any = None
        self._http: httpx.Client | None = None
        self._oms_side: Any = None
        self._timeouts = HttpxTimeouts()
        self._armed: set[Fault] = set()
        self._lean = bayeux_async.LEAN_TRANSPORT
        self.url = _REPLAY_URL

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Serve a sandbox of the variant's org profile when recording; write the password and
        consumer secret to files."""
        # The cassettes record httpx's own transports: CometD sessions use them here.
        self._lean = bayeux_async.LEAN_TRANSPORT
        bayeux_async.LEAN_TRANSPORT = False
        if self.live:
            from omsbridge_salesforce_sandbox import serve

            self._server = serve(seed="demo", org_profile=self.profile.name)
            self.url = self._server.url
        (self.workdir / _PASSWORD_FILE).write_text(PASSWORD, encoding="utf-8")
        (self.workdir / _SECRET_FILE).write_text(CLIENT_SECRET, encoding="utf-8")
        self._http = httpx.Client(base_url=self.url, timeout=30.0)
        self._oms_side = self._new_oms_side()

    @property
    def profile(self) -> Any:
        """The sandbox org profile of this run (the variant)."""
        from omsbridge_salesforce_sandbox.profiles import get_profile

        return get_profile(self.variant or self.variants[0])

    def stop(self) -> None:
        """Stop the sandbox and close the harness's client."""
        self._timeouts.disarm()
        bayeux_async.LEAN_TRANSPORT = self._lean
        if self._http is not None:
            self._http.close()
        if self._server is not None:
            self._server.stop()

    @property
    def http(self) -> httpx.Client:
        """The harness's own client (sandbox controls and web-store calls), recorded too."""
        assert self._http is not None, "the harness is not started"
        return self._http

    def settings(self) -> dict[str, Any]:
        """The merchant's ``[merchants.ID.salesforce]`` table: what the sandbox says suits the
        variant's org profile (``/__sandbox__/info``'s ``merchant_settings``, computed here so
        that a replay needs no server), with the secrets as file references."""
        from omsbridge_salesforce_sandbox.profiles import merchant_settings

        settings, _ = merchant_settings(
            self.profile,
            url=self.url,
            api_version=_API.lstrip("v"),
            credentials={"username": USERNAME, "client_id": CLIENT_ID},
        )
        settings.pop("security_token", None)  # loopback is a trusted range: none needed
        return {
            **settings,
            "allow_insecure_sandbox_url": True,
            "password": {"file": _PASSWORD_FILE},
            "client_secret": {"file": _SECRET_FILE},
            "read_timeout": 10,
            **self._event_settings(),
        }

    def _event_settings(self) -> dict[str, Any]:
        """Cassettes hold HTTP only, so replayed runs follow events over CometD. With
        ``OMSBRIDGE_CONTRACT_EVENT_TRANSPORT=pubsub`` and ``--disable-recording`` the suite runs
        live on its loopback sandbox over Pub/Sub (gRPC) instead."""
        transport = os.environ.get(_TRANSPORT_ENV, "cometd")
        if transport == "cometd":
            return {"event_transport": "cometd"}
        if transport != "pubsub" or self._server is None:
            raise RuntimeError(
                f"{_TRANSPORT_ENV}={transport!r}: only 'cometd', or 'pubsub' on a live run "
                "(--disable-recording: gRPC is not in the cassettes)"
            )
        return {"event_transport": "pubsub", "pubsub_endpoint": self._server.pubsub.address}

    def vcr_config(self) -> dict[str, Any]:
        """Store the sandbox's port as :data:`_REPLAY_URL`'s in answers too, and keep the
        sandbox's control answers (which list its credentials) out of the cassettes."""
        return {"before_record_response": self._clean_response}

    # -- the org's state ------------------------------------------------------------------------

    def reset(self) -> None:
        """A fresh demo org for every scenario: the same record ids whatever ran before it,
        with a Location for each store the scenarios sell in (merchant set-up, as in
        docs/salesforce.md: take-with lines are fulfilled at the store's Location)."""
        self._control("POST", "reset", {"seed": "demo"})
        self._oms_side = self._new_oms_side()  # a new login, and no store Location yet
        records = [
            {"attributes": {"type": "Location"}, "Name": f"Store {store_id}",
             "LocationType": "Store", "IsInventoryLocation": True, _STORE_FIELD: store_id}
            for store_id in (data.STORE, data.OTHER_STORE)
        ]  # fmt: skip
        answer = self._rest("POST", "/composite/sobjects", {"allOrNone": True, "records": records})
        if not all(row.get("success") for row in answer):
            raise AssertionError(f"the sandbox refused the stores' Locations: {answer}")

    def order_count(self) -> int:
        """Orders as the POS sees them: every order that is not a change order (sales,
        exchanges' new orders, web orders), plus the change orders of returns (tagged
        ``<transaction id>#R<n>``) whose transaction made no order of its own. An exchange is
        therefore one order, and a cancel's change order none."""
        rows = self._query(
            "SELECT Id, POS_Transaction_Id__c, IsReductionOrder FROM Order ORDER BY Id"
        )
        plain = [r for r in rows if not r.get("IsReductionOrder")]
        posted = {r["POS_Transaction_Id__c"] for r in plain if r.get("POS_Transaction_Id__c")}
        returns = {
            tag.rsplit("#R", 1)[0]
            for r in rows
            if r.get("IsReductionOrder")
            and isinstance(tag := r.get("POS_Transaction_Id__c"), str)
            and "#R" in tag
        }
        return len(plain) + len(returns - posted)

    def seed_online_order(self, order: OnlineOrder) -> str:
        """An order placed on the web store, paid by card: shipped from the warehouse (its
        fulfillment order Fulfilled) or still open (no fulfillment order yet). The sandbox
        distribution's OMS side places it (the demo's too)."""
        from omsbridge.local import WebLine, WebOrder

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
        return str(self._oms.place_web_order(web))

    def make_fulfillment_order(
        self, store_id: str, kind: FulfillmentKind, *, ref: str, customer: Customer
    ) -> str:
        """A web-store order routed to ``store_id`` as a fulfillment order of ``kind``
        (Allocated, waiting on the store); its creation publishes FOStatusChangedEvent."""
        return str(self._oms.route_to_store(store_id, kind, ref=ref, customer=customer))

    # -- faults ---------------------------------------------------------------------------------

    def inject_fault(self, fault: Fault) -> None:
        """5xx as a sandbox fault rule on the REST API; AUTH as sessions that expire at once (the refresh is
        refused as well); RATE_LIMIT as an exhausted daily budget; timeouts client-side."""
        if fault is Fault.TIMEOUT:
            self._timeouts.arm()
            return
        if fault is Fault.SERVER_ERROR:
            # The API, not the token endpoint: the backend gets its session and then meets
            # 503 SERVER_UNAVAILABLE on the call that matters (and on its look-up after it).
            body: dict[str, Any] = {
                "kind": "error",
                "status": 503,
                "path": "/services/data/*",
                "count": _LASTING,
            }
        elif fault is Fault.AUTH:
            body = {"token_lifetime": _EXPIRED_AT_ONCE}
        else:
            body = {"api_budget": _API_BUDGET, "api_used": _API_BUDGET}
        self._control("POST", "faults", body)
        self._armed.add(fault)

    def clear_faults(self) -> None:
        """Disarm client-side timeouts and undo whatever the sandbox was told."""
        self._timeouts.disarm()
        if not self._armed:
            return
        body: dict[str, Any] = {"clear": True}
        if Fault.AUTH in self._armed:
            body["token_lifetime"] = _DEFAULT_TOKEN_LIFETIME
        if Fault.RATE_LIMIT in self._armed:
            body["api_used"] = 0
        self._control("POST", "faults", body)
        self._armed.clear()

    # -- HTTP (the OMS side's session) ---------------------------------------------------------

    def _control(self, method: str, name: str, body: dict[str, Any]) -> None:
        response = self.http.request(method, f"/__sandbox__/{name}", json=body)
        response.raise_for_status()

    def _new_oms_side(self) -> Any:
        """The sandbox distribution's OMS side (web store, routing), on the recorded client."""
        from omsbridge_salesforce_sandbox.oms_side import SalesforceOmsSide

        return SalesforceOmsSide(
            self.http, self.profile, api_version=_API, known_stores=(data.STORE, data.OTHER_STORE)
        )

    @property
    def _oms(self) -> Any:
        assert self._oms_side is not None, "the harness is not started"
        return self._oms_side

    def _rest(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        return self._oms.rest(method, path, body, **params)

    def _query(self, text: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self._oms.query(text)
        return records

    # -- recording ------------------------------------------------------------------------------

    def _clean_response(self, response: dict[str, Any]) -> dict[str, Any]:
        body = response.get("body")
        if not isinstance(body, dict) or not body.get("string"):
            return response
        raw = body["string"]
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        if '"credentials"' in text:
            # /__sandbox__/reset answers the org's info: its demo credentials and the JWT
            # private key. The harness reads nothing from it, so none of it is recorded.
            text = json.dumps({"reset": True})
        if self.url != _REPLAY_URL:
            text = text.replace(self.url, _REPLAY_URL)
        if text != raw:
            body["string"] = text.encode("utf-8") if isinstance(raw, bytes) else text
            headers = response.get("headers") or {}
            for name in list(headers):
                if name.lower() == "content-length":
                    headers[name] = [str(len(text.encode("utf-8")))]
        return response
