"""The contract-suite harness for ``salesforce``: the local Salesforce OMS sandbox, over HTTP.

Two variants, one per sandbox org profile (``--oms-variant som`` (default) or ``som-minimal``):
the merchant's settings are what the sandbox says suit that profile. When the run records
(``--record-mode=rewrite``) the harness serves a fresh demo-seeded sandbox of that profile
(:func:`omsbridge_salesforce_sandbox.serve`) on a free loopback port; when it replays (CI) no
server runs and everything, the harness's own calls included, comes from the cassettes in
``tests/contract/cassettes/<variant>/``. Every scenario starts with ``POST /__sandbox__/reset``
(seed ``demo``), so record ids are the same on every recording of a scenario.

What only the OMS side can create (an online order for BORIS, a fulfillment order routed to a
store) is created by the harness through Salesforce's own REST API, as a web store would: one
composite graph (account, product, order, delivery group, items, payment, activation), the
Connect summary action where the org has no flow, then the Connect ``fulfillment-orders`` action.

Faults use the sandbox's controls: 5xx is a fault rule, a refused credential is a token lifetime
so short that every session is already expired (so the re-authentication is refused too), an
exhausted API budget is ``api_used = api_budget``; timeouts are raised on the client side
(a timeout has no answer to record).

Imported only by the contract suite (``omsbridge-contract`` must be installed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from omsbridge.model import Customer, FulfillmentKind
from omsbridge_contract import Fault, Harness, HttpxTimeouts, OnlineOrder, data
from omsbridge_salesforce.soql import soql
from omsbridge_salesforce_sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME

__all__ = ["SalesforceHarness"]

_REPLAY_URL = "http://127.0.0.1:9"
"""Where the backend points when replaying: never contacted (ports are not matched), and the
port every loopback URL is stored with."""

_API = "v62.0"
_DATA = f"/services/data/{_API}"
_PASSWORD_FILE = "salesforce-password.txt"
_SECRET_FILE = "salesforce-client-secret.txt"
_STORE_FIELD = "POS_Store_Id__c"  # the setup package's Location field for the store id
_ROUTED_AT = "2026-11-20T12:00:00+00:00"  # when the web shop placed a routed order (fixed)
_LASTING = 1_000_000  # a fault rule "count": in force until the harness clears it
_DEFAULT_TOKEN_LIFETIME = 7200.0  # the sandbox's default (docs/sandbox-salesforce.md)
_API_BUDGET = 100_000  # the sandbox's default DailyApiRequests maximum
_EXPIRED_AT_ONCE = 1e-6  # seconds: every session issued with it is expired when first used

# The demo org's records a web-store order points at (docs/sandbox-salesforce.md, "Demo org").
_WEB_CHANNEL = "Web Store"
_CARD_GATEWAY = "DemoGateway"
_SHIPPED_FROM = "wh-001"  # Central Warehouse: where shipped online orders left from
_SHIP_TO_STORE_METHOD = "SHIP_TO_STORE-DEFAULT"  # not in the demo org: created when needed
_METHODS = {
    # FulfillmentKind -> OrderDeliveryMethod name the backend's import maps back to that kind
    # (the default ``delivery_methods`` keys: SHIP_TO_STORE-* and ONLINE-*; "pick" -> PICKUP).
    FulfillmentKind.PICKUP: "Store Pickup",
    FulfillmentKind.SHIP_FROM_STORE: "ONLINE-DEFAULT",
    FulfillmentKind.SHIP_TO_STORE: _SHIP_TO_STORE_METHOD,
}
_SHIPPED_METHOD = "Standard Shipping"
_OPEN_METHOD = "ONLINE-DEFAULT"
_SHIP_TO = {
    "DeliverToStreet": "1 Harbour Way",
    "DeliverToCity": "Portland",
    "DeliverToState": "OR",
    "DeliverToPostalCode": "97201",
    "DeliverToCountry": "US",
}


_TRANSPORT_ENV = "OMSBRIDGE_CONTRACT_EVENT_TRANSPORT"


class SalesforceHarness(Harness):
    """Drives the Salesforce OMS sandbox (``omsbridge_salesforce_sandbox``) for the contract suite."""

    backend = "salesforce"
    variants = ("som", "som-minimal")
    """The sandbox's org profiles: ``som`` (flow, multicurrency, Person Accounts) and
    ``som-minimal`` (the setup package and nothing else)."""
    cassette_dir = Path(__file__).resolve().parents[2] / "tests" / "contract" / "cassettes"
    faults = frozenset(Fault)
    # The CometD feed long-polls /meta/connect from a background thread: the poll still open
    # when a recording stops is never recorded, yet is always sent again on replay.
    long_poll_paths = ("/cometd/",)

    def __init__(self, *, live: bool, workdir: Path) -> None:
        super().__init__(live=live, workdir=workdir)
        self._server: Any = None
        self._http: httpx.Client | None = None
        self._token: str | None = None
        self._timeouts = HttpxTimeouts()
        self._armed: set[Fault] = set()
        self.url = _REPLAY_URL

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Serve a sandbox of the variant's org profile when recording; write the password and
        consumer secret to files."""
        if self.live:
            from omsbridge_salesforce_sandbox import serve

            self._server = serve(seed="demo", org_profile=self.profile.name)
            self.url = self._server.url
        (self.workdir / _PASSWORD_FILE).write_text(PASSWORD, encoding="utf-8")
        (self.workdir / _SECRET_FILE).write_text(CLIENT_SECRET, encoding="utf-8")
        self._http = httpx.Client(base_url=self.url, timeout=30.0)

    @property
    def profile(self) -> Any:
        """The sandbox org profile of this run (the variant)."""
        from omsbridge_salesforce_sandbox.profiles import get_profile

        return get_profile(self.variant or self.variants[0])

    def stop(self) -> None:
        """Stop the sandbox and close the harness's client."""
        self._timeouts.disarm()
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
        self._token = None
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
        fulfillment order Fulfilled) or still open (no fulfillment order yet)."""
        lines = [(line.sku, line.quantity, line.unit_price, line.name) for line in order.lines]
        method = _SHIPPED_METHOD if order.shipped else _OPEN_METHOD
        placed = order.placed_at.isoformat()
        order_id = self._web_order(order.ref, order.customer, lines, method, placed, None)
        if order.shipped:
            fo_id = self._fulfillment_order(order_id, _SHIPPED_FROM, "Warehouse")
            self._rest("PATCH", f"/sobjects/FulfillmentOrder/{fo_id}", {"Status": "Fulfilled"})
        return order_id

    def make_fulfillment_order(
        self, store_id: str, kind: FulfillmentKind, *, ref: str, customer: Customer
    ) -> str:
        """A web-store order routed to ``store_id`` as a fulfillment order of ``kind``
        (Allocated, waiting on the store); its creation publishes FOStatusChangedEvent."""
        lines = [(f"SKU-{ref}", Decimal(2), Decimal("15.00"), None)]
        order_id = self._web_order(ref, customer, lines, _METHODS[kind], _ROUTED_AT, store_id)
        return self._fulfillment_order(order_id, store_id, "Retail Store")

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

    # -- web-store orders -----------------------------------------------------------------------

    def _web_order(
        self,
        ref: str,
        customer: Customer,
        lines: Sequence[tuple[str, Decimal, Decimal, str | None]],
        method: str,
        placed_at: str,
        store_id: str | None,
    ) -> str:
        """One activated web-store order (one composite graph); the original Order's id."""
        found = self._queries(
            {
                "pb": "SELECT Id FROM Pricebook2 WHERE IsStandard = true",
                "sc": soql("SELECT Id FROM SalesChannel WHERE SalesChannelName = {}", _WEB_CHANNEL),
                "odm": soql("SELECT Id FROM OrderDeliveryMethod WHERE Name = {}", method),
                "pgw": soql(
                    "SELECT Id FROM PaymentGateway WHERE PaymentGatewayName = {}", _CARD_GATEWAY
                ),
            }
        )
        pricebook = found["pb"][0]["Id"]
        nodes: list[dict[str, Any]] = []

        def add(ref_id: str, sobject: str, body: dict[str, Any]) -> str:
            nodes.append(
                {"method": "POST", "url": f"{_DATA}/sobjects/{sobject}", "referenceId": ref_id,
                 "body": body}
            )  # fmt: skip
            return f"@{{{ref_id}.id}}"

        if found["odm"]:
            method_id = found["odm"][0]["Id"]
        else:  # ship to store: the demo org has no such delivery method yet
            product = add(
                "dp", "Product2",
                {"Name": f"Delivery {method}", "StockKeepingUnit": f"DELIVERY-{method}",
                 "IsActive": True},
            )  # fmt: skip
            method_id = add(
                "odm", "OrderDeliveryMethod",
                {"Name": method, "ReferenceNumber": method, "ProductId": product, "IsActive": True},
            )  # fmt: skip
        if store_id is not None and store_id not in (data.STORE, data.OTHER_STORE):
            add(
                "loc", "Location",
                {"Name": f"Store {store_id}", "LocationType": "Store",
                 "IsInventoryLocation": True, _STORE_FIELD: store_id,
                 "ExternalReference": store_id},
            )  # fmt: skip
        name = " ".join(p for p in (customer.first_name, customer.last_name) if p) or ref
        person = "person_accounts" in self.profile.features
        account = add(
            "acct", "Account",
            {"FirstName": customer.first_name, "LastName": customer.last_name or ref,
             "PersonEmail": customer.email, "PersonMobilePhone": customer.phone}
            if person else {"Name": name},
        )  # fmt: skip
        currency = {"CurrencyIsoCode": "USD"} if self.profile.multicurrency else {}
        total = sum((qty * price for _, qty, price, _ in lines), Decimal(0))
        order = add(
            "ord", "Order",
            {"AccountId": account, "EffectiveDate": placed_at[:10], "Status": "Draft",
             "Pricebook2Id": pricebook, "SalesChannelId": found["sc"][0]["Id"],
             "OrderedDate": placed_at, "BillingEmailAddress": customer.email,
             "BillingCountry": "US", "Type": "Online", **currency,
             "Name": f"{name} (web {ref})"},
        )  # fmt: skip
        group = add(
            "odg", "OrderDeliveryGroup",
            {"OrderId": order, "OrderDeliveryMethodId": method_id, "DeliverToName": name,
             "EmailAddress": customer.email, **_SHIP_TO},
        )  # fmt: skip
        for n, (sku, qty, price, title) in enumerate(lines, 1):
            product = add(
                f"p{n}", "Product2", {"Name": title or f"Item {sku}", "StockKeepingUnit": sku,
                                      "ProductCode": sku, "IsActive": True},
            )  # fmt: skip
            entry = add(
                f"pbe{n}", "PricebookEntry",
                {"Pricebook2Id": pricebook, "Product2Id": product, "UnitPrice": str(price),
                 "IsActive": True},
            )  # fmt: skip
            add(
                f"it{n}", "OrderItem",
                {"OrderId": order, "PricebookEntryId": entry, "Product2Id": product,
                 "Quantity": str(qty), "UnitPrice": str(price), "ListPrice": str(price),
                 "TotalLineAmount": str(qty * price), "Type": "Order Product",
                 "OrderDeliveryGroupId": group},
            )  # fmt: skip
        payment_group = add("pg", "PaymentGroup", {"SourceObjectId": order})
        card = add(
            "card", "CardPaymentMethod",
            {"ProcessingMode": "External", "Status": "Active", "AccountId": account,
             "CardType": "Visa", "CardHolderName": name, "ExpiryMonth": 12, "ExpiryYear": 2029,
             "CardCategory": "CreditCard", "InputCardNumber": "4111111111111111",
             "PaymentGatewayId": found["pgw"][0]["Id"]},
        )  # fmt: skip
        add(
            "pay", "Payment",
            {"Amount": str(total), "AccountId": account, "ProcessingMode": "External",
             "Status": "Processed", "Type": "Sale", "PaymentGroupId": payment_group,
             "PaymentMethodId": card, "GatewayRefNumber": f"web-{ref}", "Date": placed_at,
             **currency},
        )  # fmt: skip
        nodes.append(
            {"method": "PATCH", "url": f"{_DATA}/sobjects/Order/@{{ord.id}}", "referenceId": "act",
             "body": {"Status": "Activated"}}
        )  # fmt: skip
        graph_id = "web" + "".join(c for c in ref if c.isalnum())[:30]
        answer = self._rest(
            "POST",
            "/composite/graph",
            {"graphs": [{"graphId": graph_id, "compositeRequest": nodes}]},
        )
        result = answer["graphs"][0]
        if not result["isSuccessful"]:
            raise AssertionError(f"the sandbox refused the web order {ref}: {result}")
        by_ref = {
            node["referenceId"]: node["body"]
            for node in result["graphResponse"]["compositeResponse"]
        }
        order_id = str(by_ref["ord"]["id"])
        if not self.profile.activation_flow:
            # No flow in this org: the web store makes the summary, as the connector does.
            self._rest(
                "POST",
                "/commerce/order-management/order-summaries",
                {"orderId": order_id, "orderLifeCycleType": "MANAGED"},
            )
        return order_id

    def _fulfillment_order(self, order_id: str, store_id: str, fulfillment_type: str) -> str:
        """Route the whole order summary to the Location whose ``POS_Store_Id__c`` is
        ``store_id`` (Connect ``fulfillment-orders``); the FulfillmentOrder's id."""
        found = self._queries(
            {
                "ogs": soql(
                    "SELECT Id, OrderSummaryId FROM OrderDeliveryGroupSummary "
                    "WHERE OrderSummary.OriginalOrderId = {}",
                    order_id,
                ),
                "ois": soql(
                    "SELECT Id, QuantityOrdered FROM OrderItemSummary "
                    "WHERE OrderSummary.OriginalOrderId = {} ORDER BY LineNumber",
                    order_id,
                ),
                "loc": soql(f"SELECT Id FROM Location WHERE {_STORE_FIELD} = {{}}", store_id),
            }
        )
        group = found["ogs"][0]
        answer = self._rest(
            "POST",
            "/commerce/fulfillment/fulfillment-orders",
            {
                "orderSummaryId": group["OrderSummaryId"],
                "orderDeliveryGroupSummaryId": group["Id"],
                "fulfillmentGroups": [
                    {
                        "fulfilledFromLocationId": found["loc"][0]["Id"],
                        "fulfillmentType": fulfillment_type,
                        "orderItemSummaries": [
                            {"orderItemSummaryId": row["Id"], "quantity": row["QuantityOrdered"]}
                            for row in found["ois"]
                        ],
                    }
                ],
            },
        )
        return str(answer["fulfillmentOrderIds"][0])

    # -- HTTP -----------------------------------------------------------------------------------

    def _control(self, method: str, name: str, body: dict[str, Any]) -> None:
        response = self.http.request(method, f"/__sandbox__/{name}", json=body)
        response.raise_for_status()

    def _bearer(self) -> str:
        if self._token is None:
            response = self.http.post(
                "/services/oauth2/token",
                data={
                    "grant_type": "password",
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "username": USERNAME,
                    "password": PASSWORD,
                },
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def _rest(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(
            method,
            _DATA + path,
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {self._bearer()}"},
        )
        if response.status_code >= 400:
            raise AssertionError(
                f"sandbox answered {response.status_code} to {method} {path}: {response.text}"
            )
        return response.json() if response.content else None

    def _query(self, text: str) -> list[dict[str, Any]]:
        answer = self._rest("GET", "/query", q=text)
        records: list[dict[str, Any]] = answer["records"]
        return records

    def _queries(self, named: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        """Several queries in one ``/composite`` call (one recorded interaction)."""
        answer = self._rest(
            "POST",
            "/composite",
            {
                "allOrNone": False,
                "compositeRequest": [
                    {"method": "GET", "url": f"{_DATA}/query?{httpx.QueryParams(q=text)}",
                     "referenceId": name}
                    for name, text in named.items()
                ],
            },
        )  # fmt: skip
        found: dict[str, list[dict[str, Any]]] = {}
        for sub in answer["compositeResponse"]:
            if sub["httpStatusCode"] >= 400:
                raise AssertionError(f"sandbox query {sub['referenceId']} failed: {sub['body']}")
            found[sub["referenceId"]] = sub["body"]["records"]
        return found

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
