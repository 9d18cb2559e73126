"""Helpers of the omnichannel tests: a web shop placing online orders in the sandbox over REST,
a POS plugin recording what it is handed, and bridges/listeners on a config file."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from omsbridge import Bridge, FulfillmentOrder, hookimpl
from omsbridge.listen import Listener, ListenerSettings
from omsbridge.plugins import load_entry_point_plugins, new_plugin_manager
from omsbridge_salesforce_sandbox import SandboxServer

VERSION = "62.0"
BASE = f"/services/data/v{VERSION}"
RECEIVED_FIELD = "POS_Quantity_Received__c"
PRICES = {
    "TEE-BLK-M": 25.0,
    "TEE-WHT-L": 25.0,
    "SNK-RUN-42": 120.0,
    "BELT-LTH-90": 45.0,
    "TOTE-CNV": 30.0,
}
FAST = ListenerSettings(wait=0.2, handler_attempts=2, backoff_initial=0.05, backoff_max=0.2)


class WebShop:
    """Plays Salesforce Commerce and the org's flows: places online orders, routes them to a
    store as fulfillment orders, ships ship-to-store parcels, changes statuses."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.demo = server.sandbox.demo
        self.http = server.client(server.token()["access_token"])

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def _ok(self, response: httpx.Response) -> Any:
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def create(self, sobject: str, body: dict[str, Any]) -> str:
        """Insert a record."""
        return str(self._ok(self.http.post(f"{BASE}/sobjects/{sobject}", json=body))["id"])

    def rows(self, soql: str) -> list[dict[str, Any]]:
        """Query records."""
        return list(self._ok(self.http.get(f"{BASE}/query", params={"q": soql}))["records"])

    def record(self, sobject: str, rec_id: str) -> dict[str, Any]:
        """Read a record."""
        return dict(self._ok(self.http.get(f"{BASE}/sobjects/{sobject}/{rec_id}")))

    def set_status(self, fo_id: str, status: str) -> None:
        """Change a fulfillment order's status as the org's flow would."""
        self._ok(
            self.http.patch(f"{BASE}/sobjects/FulfillmentOrder/{fo_id}", json={"Status": status})
        )

    def delivery_method(self, name: str) -> str:
        """The id of an OrderDeliveryMethod, created when missing."""
        if name not in self.demo["delivery_methods"]:
            self.demo["delivery_methods"][name] = self.create(
                "OrderDeliveryMethod",
                {
                    "Name": name,
                    "ReferenceNumber": name,
                    "ProductId": self.demo["products"]["DELIVERY-SHIP"],
                    "IsActive": True,
                },
            )
        return str(self.demo["delivery_methods"][name])

    def place(
        self,
        *,
        lines: tuple[tuple[str, int], ...] = (("TEE-BLK-M", 2), ("TOTE-CNV", 1)),
        method: str = "Store Pickup",
        store: str = "store-001",
        email: str = "amanda.freeman@example.com",
        street: str | None = None,
        promotion: bool = True,
        route: bool = True,
    ) -> dict[str, Any]:
        """An online order paid by card and activated (-> OrderSummary), routed to ``store``
        as one fulfillment order (status Allocated) unless ``route`` is false."""
        account = self.demo["accounts"][email]
        base = f"{BASE}/sobjects"
        nodes: list[dict[str, Any]] = [
            {
                "method": "POST",
                "url": f"{base}/Order",
                "referenceId": "order",
                "body": {
                    "AccountId": account,
                    "EffectiveDate": "2026-11-20",
                    "Status": "Draft",
                    "Pricebook2Id": self.demo["pricebook_id"],
                    "SalesChannelId": self.demo["sales_channels"]["Web Store"],
                    "OrderedDate": "2026-11-20T10:00:00Z",
                    "BillingEmailAddress": email,
                },
            },
            {
                "method": "POST",
                "url": f"{base}/OrderDeliveryGroup",
                "referenceId": "group",
                "body": {
                    "OrderId": "@{order.id}",
                    "DeliverToName": "Amanda Freeman",
                    "OrderDeliveryMethodId": self.delivery_method(method),
                    "EmailAddress": email,
                    "DeliverToStreet": street,
                    "DeliverToCity": "San Francisco" if street else None,
                    "DeliverToPostalCode": "94105" if street else None,
                    "DeliverToCountry": "US",
                },
            },
        ]
        if promotion:
            nodes.append(
                {
                    "method": "POST",
                    "url": f"{base}/OrderAdjustmentGroup",
                    "referenceId": "promo",
                    "body": {"OrderId": "@{order.id}", "Name": "WEB5", "Type": "Header"},
                }
            )
        total = 0.0
        for n, (sku, qty) in enumerate(lines):
            price = PRICES[sku]
            nodes.append(
                {
                    "method": "POST",
                    "url": f"{base}/OrderItem",
                    "referenceId": f"item{n}",
                    "body": {
                        "OrderId": "@{order.id}",
                        "OrderDeliveryGroupId": "@{group.id}",
                        "PricebookEntryId": self.demo["pricebook_entries"][sku],
                        "Product2Id": self.demo["products"][sku],
                        "Quantity": qty,
                        "UnitPrice": price,
                        "ListPrice": price,
                        "TotalLineAmount": price * qty,
                        "Type": "Order Product",
                    },
                }
            )
            tax = round(price * qty * 0.08, 2)
            nodes.append(
                {
                    "method": "POST",
                    "url": f"{base}/OrderItemTaxLineItem",
                    "referenceId": f"tax{n}",
                    "body": {
                        "OrderItemId": f"@{{item{n}.id}}",
                        "Name": "Sales Tax",
                        "Type": "Actual",
                        "Amount": tax,
                        "Rate": 8,
                        "TaxEffectiveDate": "2026-11-20",
                    },
                }
            )
            total += price * qty + tax
            if promotion and n == 0:
                nodes.append(
                    {
                        "method": "POST",
                        "url": f"{base}/OrderItemAdjustmentLineItem",
                        "referenceId": "adj0",
                        "body": {
                            "OrderItemId": "@{item0.id}",
                            "OrderAdjustmentGroupId": "@{promo.id}",
                            "Name": "WEB5",
                            "Amount": -5.0,
                        },
                    }
                )
                total -= 5.0
        nodes += [
            {
                "method": "POST",
                "url": f"{base}/PaymentGroup",
                "referenceId": "pg",
                "body": {"SourceObjectId": "@{order.id}"},
            },
            {
                "method": "POST",
                "url": f"{base}/CardPaymentMethod",
                "referenceId": "card",
                "body": {
                    "ProcessingMode": "External",
                    "Status": "Active",
                    "AccountId": account,
                    "CardType": "Visa",
                    "CardHolderName": "Amanda Freeman",
                    "ExpiryMonth": 12,
                    "ExpiryYear": 2030,
                    "CardCategory": "CreditCard",
                    "InputCardNumber": "4111111111111111",
                    "PaymentGatewayId": self.demo["payment_gateways"]["DemoGateway"],
                },
            },
            {
                "method": "POST",
                "url": f"{base}/Payment",
                "referenceId": "pay",
                "body": {
                    "Amount": round(total, 2),
                    "AccountId": account,
                    "ProcessingMode": "External",
                    "Status": "Processed",
                    "Type": "Sale",
                    "PaymentGroupId": "@{pg.id}",
                    "PaymentMethodId": "@{card.id}",
                    "GatewayRefNumber": "web-1",
                },
            },
            {
                "method": "PATCH",
                "url": f"{base}/Order/@{{order.id}}",
                "referenceId": "activate",
                "body": {"Status": "Activated"},
            },
        ]
        for node in nodes:
            if isinstance(node.get("body"), dict):
                node["body"] = {k: v for k, v in node["body"].items() if v is not None}
        answer = self._ok(
            self.http.post(
                f"{BASE}/composite/graph",
                json={"graphs": [{"graphId": "web", "compositeRequest": nodes}]},
            )
        )
        graph = answer["graphs"][0]
        assert graph["isSuccessful"], graph
        order_id = next(
            r["body"]["id"]
            for r in graph["graphResponse"]["compositeResponse"]
            if r["referenceId"] == "order"
        )
        (summary,) = self.rows(
            f"SELECT Id, OrderNumber FROM OrderSummary WHERE OriginalOrderId = '{order_id}'"
        )
        placed = {
            "order_id": order_id,
            "summary_id": summary["Id"],
            "order_number": summary["OrderNumber"],
            "fulfillment_order_id": None,
        }
        if route:
            placed["fulfillment_order_id"] = self.route(summary["Id"], store)
        return placed

    def route(self, summary_id: str, store: str) -> str:
        """Create the fulfillment order of a summary at a store (Connect API)."""
        (group,) = self.rows(
            f"SELECT Id FROM OrderDeliveryGroupSummary WHERE OrderSummaryId = '{summary_id}'"
        )
        items = self.rows(
            f"SELECT Id, QuantityOrdered FROM OrderItemSummary "
            f"WHERE OrderSummaryId = '{summary_id}'"
        )
        body = {
            "orderSummaryId": summary_id,
            "orderDeliveryGroupSummaryId": group["Id"],
            "fulfillmentGroups": [
                {
                    "fulfilledFromLocationId": self.demo["locations"][store],
                    "fulfillmentType": "Retail Store",
                    "orderItemSummaries": [
                        {"orderItemSummaryId": i["Id"], "quantity": i["QuantityOrdered"]}
                        for i in items
                    ],
                }
            ],
        }
        out = self._ok(self.http.post(f"{BASE}/commerce/fulfillment/fulfillment-orders", json=body))
        return str(out["fulfillmentOrderIds"][0])

    def ship_to_store(self, fo_id: str, tracking: str) -> str:
        """The warehouse ships the parcel to the store: an in-transit Shipment (the ASN)."""
        fo = self.record("FulfillmentOrder", fo_id)
        return self.create(
            "Shipment",
            {
                "FulfillmentOrderId": fo_id,
                "OrderSummaryId": fo["OrderSummaryId"],
                "ShipToName": "Downtown Store",
                "TrackingNumber": tracking,
                "Provider": "UPS",
                "Status": "In Transit",
            },
        )


class Pos:
    """The POS platform's plugin: records every imported fulfillment order."""

    def __init__(self) -> None:
        self.received: list[tuple[str, FulfillmentOrder]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)

    @hookimpl
    def omsbridge_fulfillment_order_received(
        self, merchant_id: str, fulfillment_order: FulfillmentOrder
    ) -> None:
        """Record it."""
        with self.arrived:
            self.received.append((merchant_id, fulfillment_order))
            self.arrived.notify_all()

    def ids(self) -> list[str]:
        """Fulfillment-order ids received, in order."""
        with self.lock:
            return [fo.fulfillment_order_id for _, fo in self.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[FulfillmentOrder]:
        """Block until ``count`` orders arrived (fails the test otherwise)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(self.received)} of {count} orders arrived"
                self.arrived.wait(left)
            return [fo for _, fo in self.received]


def config_file(
    path: Path,
    url: str,
    merchants: tuple[str, ...] = ("DEMO",),
    *,
    som: bool = True,
    store_field: str = "warehouseID__c",
    **settings: Any,
) -> Path:
    """A config file with Salesforce merchants on the sandbox (password from SF_SANDBOX_PW);
    ``som``: the settings of the sandbox's default org (its flow makes the summary and fulfils
    take-with lines, multicurrency); otherwise the defaults, which suit a plain org."""
    settings.setdefault("event_transport", "cometd")
    extra = "".join(f"{key} = {_toml(value)}\n" for key, value in settings.items())
    if som:
        # The sandbox's default org: its flow makes the summary and fulfils take-with lines.
        extra += (
            'order_summary_creation = "flow"\ntake_with_fulfillment = "flow"\n'
            "multi_currency = true\nperson_accounts = true\n"
        )
    parts = [f'[store]\npath = "{path.parent / "state.db"}"\n']
    for merchant in merchants:
        parts.append(
            f'[merchants.{merchant}]\nbackend = "salesforce"\nlocale = "en_US"\nregion = "US"\n'
            f'currency = "USD"\n\n[merchants.{merchant}.salesforce]\nurl_base = "{url}"\n'
            "allow_insecure_sandbox_url = true\n"
            'client_id = "3MVG9omsbridgeSandboxConsumerKey"\n'
            'client_secret = { env = "SF_SANDBOX_SECRET" }\n'
            'username = "integration@omsbridge.sandbox"\n'
            'password = { env = "SF_SANDBOX_PW" }\n'
            f'custom_fields = [{{ oms_field_name = "{store_field}" }}]\n'
            f'received_quantity_field = "{RECEIVED_FIELD}"\n'
            "read_timeout = 10.0\n" + extra
        )
    path.write_text("\n".join(parts))
    return path


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return str(value)


def bridge_for(config: Path, pos: Pos) -> Bridge:
    """A bridge on ``config`` whose plugin manager has the installed plugins and ``pos``."""
    pm = new_plugin_manager()
    load_entry_point_plugins(pm)
    pm.register(pos, name="pos")
    return Bridge.from_config(config, plugin_manager=pm)


@contextmanager
def listening(
    bridge: Bridge, merchant: str = "DEMO", settings: ListenerSettings = FAST
) -> Iterator[Listener]:
    """A listener running in a thread until the block ends."""
    listener = Listener(bridge.for_merchant(merchant), bridge.store, settings=settings)
    listener.poll()  # subscribe (from the stored checkpoint, or from now) before anything happens
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
