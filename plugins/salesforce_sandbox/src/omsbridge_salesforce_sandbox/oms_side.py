"""The OMS side of a Salesforce org: what the web store and order routing do, over REST.

:class:`SalesforceOmsSide` places web-store orders (one composite graph: account, product,
order, delivery group, items, payment, activation; the Connect summary action where the org has
no activation flow) and routes an order to a store (the Connect ``fulfillment-orders`` action),
through Salesforce's own REST API, as a web store would. It implements
:class:`omsbridge.local.OmsSide` for ``omsbridge demo`` and is what the contract harness
(``omsbridge_salesforce.contract_harness``) calls, so both send exactly the same requests.

It works against any org with the setup package and the demo org's records (sales channel
``Web Store``, gateway ``DemoGateway``, warehouse ``wh-001``): the sandbox's ``demo`` seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import httpx

from omsbridge.local import WebOrder
from omsbridge.model import Customer, FulfillmentKind

from .seed import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME

__all__ = ["SalesforceOmsSide"]

_STORE_FIELD = "POS_Store_Id__c"  # the setup package's Location field for the store id
_ROUTED_AT = "2026-11-20T12:00:00+00:00"  # when the web shop placed a routed order (fixed)

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
_DEMO_LOCATIONS = ("store-001", "store-002", "wh-001")  # the demo seed's Locations


def _quote(value: str) -> str:
    """A SOQL string literal (the same escaping as ``omsbridge_salesforce.soql``)."""
    for raw, escaped in (("\\", "\\\\"), ("'", "\\'"), ('"', '\\"'), ("\n", "\\n"),
                         ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"), ("\f", "\\f")):  # fmt: skip
        value = value.replace(raw, escaped)
    return f"'{value}'"


class SalesforceOmsSide:
    """Web-store orders and store routing in a Salesforce org (see the module doc).

    ``http`` is a client whose base URL is the org's instance URL (its requests may be
    recorded); ``profile`` the sandbox org profile (Person Accounts, multicurrency, activation
    flow); ``known_stores`` the store ids that already have a Location (others get one the first
    time an order is routed to them).
    """

    def __init__(
        self,
        http: httpx.Client,
        profile: Any,
        *,
        api_version: str = "v62.0",
        known_stores: Iterable[str] = _DEMO_LOCATIONS,
    ) -> None:
        self.http = http
        self.profile = profile
        self.data_path = f"/services/data/{api_version}"
        self.known_stores = set(known_stores)
        self._token: str | None = None

    # -- the OmsSide interface ------------------------------------------------------------------

    def place_web_order(self, order: WebOrder) -> str:
        """An order placed on the web store, paid by card: shipped from the warehouse (its
        fulfillment order Fulfilled) or still open (no fulfillment order yet); the Order's id."""
        lines = [(line.sku, line.quantity, line.unit_price, line.name) for line in order.lines]
        method = _SHIPPED_METHOD if order.shipped else _OPEN_METHOD
        placed = order.placed_at.isoformat()
        order_id = self.web_order(order.ref, order.customer, lines, method, placed, None)
        if order.shipped:
            fo_id = self.fulfillment_order(order_id, _SHIPPED_FROM, "Warehouse")
            self.rest("PATCH", f"/sobjects/FulfillmentOrder/{fo_id}", {"Status": "Fulfilled"})
        return order_id

    def route_to_store(
        self, store_id: str, kind: FulfillmentKind, *, ref: str, customer: Customer
    ) -> str:
        """A web-store order routed to ``store_id`` as a fulfillment order of ``kind``
        (Allocated, waiting on the store); its creation publishes FOStatusChangedEvent."""
        lines = [(f"SKU-{ref}", Decimal(2), Decimal("15.00"), None)]
        method = _METHODS[FulfillmentKind(kind)]
        order_id = self.web_order(ref, customer, lines, method, _ROUTED_AT, store_id)
        return self.fulfillment_order(order_id, store_id, "Retail Store")

    # -- web-store orders -----------------------------------------------------------------------

    def web_order(
        self,
        ref: str,
        customer: Customer,
        lines: Sequence[tuple[str, Decimal, Decimal, str | None]],
        method: str,
        placed_at: str,
        store_id: str | None,
    ) -> str:
        """One activated web-store order (one composite graph); the original Order's id."""
        found = self.queries(
            {
                "pb": "SELECT Id FROM Pricebook2 WHERE IsStandard = true",
                "sc": f"SELECT Id FROM SalesChannel WHERE SalesChannelName = {_quote(_WEB_CHANNEL)}",
                "odm": f"SELECT Id FROM OrderDeliveryMethod WHERE Name = {_quote(method)}",
                "pgw": "SELECT Id FROM PaymentGateway WHERE PaymentGatewayName = "
                + _quote(_CARD_GATEWAY),
            }
        )
        pricebook = found["pb"][0]["Id"]
        nodes: list[dict[str, Any]] = []
        data = self.data_path

        def add(ref_id: str, sobject: str, body: dict[str, Any]) -> str:
            nodes.append(
                {"method": "POST", "url": f"{data}/sobjects/{sobject}", "referenceId": ref_id,
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
        if store_id is not None and store_id not in self.known_stores:
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
            {"method": "PATCH", "url": f"{data}/sobjects/Order/@{{ord.id}}", "referenceId": "act",
             "body": {"Status": "Activated"}}
        )  # fmt: skip
        graph_id = "web" + "".join(c for c in ref if c.isalnum())[:30]
        answer = self.rest(
            "POST",
            "/composite/graph",
            {"graphs": [{"graphId": graph_id, "compositeRequest": nodes}]},
        )
        result = answer["graphs"][0]
        if not result["isSuccessful"]:
            raise AssertionError(f"the sandbox refused the web order {ref}: {result}")
        if store_id is not None:
            self.known_stores.add(store_id)
        by_ref = {
            node["referenceId"]: node["body"]
            for node in result["graphResponse"]["compositeResponse"]
        }
        order_id = str(by_ref["ord"]["id"])
        if not self.profile.activation_flow:
            # No flow in this org: the web store makes the summary, as the connector does.
            self.rest(
                "POST",
                "/commerce/order-management/order-summaries",
                {"orderId": order_id, "orderLifeCycleType": "MANAGED"},
            )
        return order_id

    def fulfillment_order(self, order_id: str, store_id: str, fulfillment_type: str) -> str:
        """Route the whole order summary to the Location whose ``POS_Store_Id__c`` is
        ``store_id`` (Connect ``fulfillment-orders``); the FulfillmentOrder's id."""
        found = self.queries(
            {
                "ogs": "SELECT Id, OrderSummaryId FROM OrderDeliveryGroupSummary "
                f"WHERE OrderSummary.OriginalOrderId = {_quote(order_id)}",
                "ois": "SELECT Id, QuantityOrdered FROM OrderItemSummary "
                f"WHERE OrderSummary.OriginalOrderId = {_quote(order_id)} ORDER BY LineNumber",
                "loc": f"SELECT Id FROM Location WHERE {_STORE_FIELD} = {_quote(store_id)}",
            }
        )
        group = found["ogs"][0]
        answer = self.rest(
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

    def forget_session(self) -> None:
        """Log in again on the next call (after the org was reset)."""
        self._token = None

    def api_calls(self) -> int:
        """DailyApiRequests used so far (``/limits``), as Salesforce counts them."""
        limits = self.rest("GET", "/limits")
        daily = limits["DailyApiRequests"]
        return int(daily["Max"]) - int(daily["Remaining"])

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

    def rest(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """One REST call under the data path, as the integration user; the JSON answer."""
        response = self.http.request(
            method,
            self.data_path + path,
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {self._bearer()}"},
        )
        if response.status_code >= 400:
            raise AssertionError(
                f"sandbox answered {response.status_code} to {method} {path}: {response.text}"
            )
        return response.json() if response.content else None

    def query(self, text: str) -> list[dict[str, Any]]:
        """One SOQL query's records (first page)."""
        answer = self.rest("GET", "/query", q=text)
        records: list[dict[str, Any]] = answer["records"]
        return records

    def queries(self, named: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        """Several queries in one ``/composite`` call (one recorded interaction)."""
        answer = self.rest(
            "POST",
            "/composite",
            {
                "allOrNone": False,
                "compositeRequest": [
                    {"method": "GET",
                     "url": f"{self.data_path}/query?{httpx.QueryParams(q=text)}",
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
