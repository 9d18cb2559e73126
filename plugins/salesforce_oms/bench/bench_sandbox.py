"""Benchmark: composite-graph request time of the Salesforce OMS sandbox versus org size.

Fills an in-process demo org (WSGI, no socket) with POS orders posted as composite graphs,
then times one ``composite/graph`` request carrying 44 order graphs (10 nodes each: order,
delivery group, adjustment group, item, tax, adjustment, payment group, card, payment,
activation -> order summary) once the org holds 100, 1,000 and 5,000 orders.

Figures only, not a pass/fail test. ``--sizes 100,1000`` picks other org sizes and
``--repeat N`` times N requests per size (the median is printed).

Reference, before the store indexes (same request shape, from the issue): 0.17 s with 50
orders in the org, 1.05 s with 1,100, extrapolated ~20 minutes at 10,000 orders.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx

from omsbridge_salesforce_sandbox import SalesforceSandbox

VERSION = "62.0"
BASE = f"/services/data/v{VERSION}"
GRAPHS_PER_REQUEST = 44


def _client(sandbox: SalesforceSandbox) -> httpx.Client:
    """An httpx client on the sandbox through WSGI, logged in with the password flow."""
    http = httpx.Client(transport=httpx.WSGITransport(app=sandbox), base_url="http://sandbox.local")
    creds = sandbox.credentials
    response = http.post(
        "/services/oauth2/token",
        data={
            "grant_type": "password",
            **{k: creds[k] for k in ("client_id", "client_secret", "username", "password")},
        },
    )
    response.raise_for_status()
    http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return http


def _order_graph(demo: dict[str, Any], graph_id: str, txn: str) -> dict[str, Any]:
    """One POS sale as the connector posts it (one line, a discount, a card payment)."""
    base = f"{BASE}/sobjects"
    account = demo["accounts"]["amanda.freeman@example.com"]
    sku, qty, price = "TEE-BLK-M", 2, 25.0
    tax = round(price * qty * 0.08, 2)
    nodes: list[dict[str, Any]] = [
        {
            "method": "POST",
            "url": f"{base}/Order",
            "referenceId": "refOrder",
            "body": {
                "AccountId": account,
                "EffectiveDate": "2026-01-05",
                "Status": "Draft",
                "Pricebook2Id": demo["pricebook_id"],
                "SalesChannelId": demo["sales_channels"]["POS"],
                "OrderedDate": "2026-01-05T10:15:00Z",
                "BillingEmailAddress": "amanda.freeman@example.com",
                "POS_Transaction_Id__c": txn,
            },
        },
        {
            "method": "POST",
            "url": f"{base}/OrderDeliveryGroup",
            "referenceId": "refOdg",
            "body": {
                "OrderId": "@{refOrder.id}",
                "DeliverToName": "Amanda Freeman",
                "OrderDeliveryMethodId": demo["delivery_methods"]["IN_STORE-DEFAULT"],
            },
        },
        {
            "method": "POST",
            "url": f"{base}/OrderAdjustmentGroup",
            "referenceId": "refAdjGroup",
            "body": {"OrderId": "@{refOrder.id}", "Name": "PROMO10", "Type": "Header"},
        },
        {
            "method": "POST",
            "url": f"{base}/OrderItem",
            "referenceId": "refItem0",
            "body": {
                "OrderId": "@{refOrder.id}",
                "OrderDeliveryGroupId": "@{refOdg.id}",
                "PricebookEntryId": demo["pricebook_entries"][sku],
                "Product2Id": demo["products"][sku],
                "Quantity": qty,
                "UnitPrice": price,
                "ListPrice": price,
                "TotalLineAmount": price * qty,
                "Type": "Order Product",
                "POS_Line_Id__c": f"{txn}-0",
            },
        },
        {
            "method": "POST",
            "url": f"{base}/OrderItemTaxLineItem",
            "referenceId": "refTax0",
            "body": {
                "OrderItemId": "@{refItem0.id}",
                "Name": "Sales Tax",
                "Type": "Actual",
                "Amount": tax,
                "Rate": 8,
                "TaxEffectiveDate": "2026-01-05",
            },
        },
        {
            "method": "POST",
            "url": f"{base}/OrderItemAdjustmentLineItem",
            "referenceId": "refAdj0",
            "body": {
                "OrderItemId": "@{refItem0.id}",
                "OrderAdjustmentGroupId": "@{refAdjGroup.id}",
                "Name": "PROMO10",
                "Amount": -5.0,
            },
        },
        {
            "method": "POST",
            "url": f"{base}/PaymentGroup",
            "referenceId": "refPg",
            "body": {"SourceObjectId": "@{refOrder.id}"},
        },
        {
            "method": "POST",
            "url": f"{base}/CardPaymentMethod",
            "referenceId": "refPm",
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
                "PaymentGatewayId": demo["payment_gateways"]["DemoGateway"],
            },
        },
        {
            "method": "POST",
            "url": f"{base}/Payment",
            "referenceId": "refPay",
            "body": {
                "Amount": round(price * qty + tax - 5.0, 2),
                "AccountId": account,
                "ProcessingMode": "External",
                "Status": "Processed",
                "Type": "Sale",
                "PaymentGroupId": "@{refPg.id}",
                "PaymentMethodId": "@{refPm.id}",
                "GatewayRefNumber": f"pos-{txn}",
                "Date": "2026-01-05T10:15:00Z",
            },
        },
        {
            "method": "PATCH",
            "url": f"{base}/Order/@{{refOrder.id}}",
            "referenceId": "refActivate",
            "body": {"Status": "Activated"},
        },
    ]
    return {"graphId": graph_id, "compositeRequest": nodes}


class Bench:
    """A demo org plus a client, and a counter of the orders posted so far."""

    def __init__(self) -> None:
        self.sandbox = SalesforceSandbox(seed="demo")
        self.http = _client(self.sandbox)
        self.posted = 0

    def close(self) -> None:
        """Release the client and the org."""
        self.http.close()
        self.sandbox.close()

    def post(self, graphs: int) -> float:
        """Post one composite/graph request of *graphs* new orders; returns its wall time."""
        body = {
            "graphs": [
                _order_graph(self.sandbox.demo, f"g{n}", f"BENCH-{self.posted + n}")
                for n in range(graphs)
            ]
        }
        start = time.perf_counter()
        response = self.http.post(f"{BASE}/composite/graph", json=body)
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        failed = [g["graphId"] for g in response.json()["graphs"] if not g["isSuccessful"]]
        if failed:
            raise SystemExit(f"graphs failed: {failed[:3]}: {response.text[:500]}")
        self.posted += graphs
        return elapsed

    def fill_to(self, orders: int) -> float:
        """Post orders until the org holds *orders* of them; returns the time it took."""
        start = time.perf_counter()
        while self.posted < orders:
            self.post(min(GRAPHS_PER_REQUEST, orders - self.posted))
        return time.perf_counter() - start


def main() -> None:
    """Print the composite-graph request time at each org size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="orders in the org")
    parser.add_argument("--repeat", type=int, default=3, help="timed requests per size")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    bench = Bench()
    try:
        print(
            f"{GRAPHS_PER_REQUEST}-order composite/graph request ({GRAPHS_PER_REQUEST * 10} nodes)"
        )
        print(f"{'orders in org':>14} {'median s':>9} {'min s':>7} {'fill s':>8}")
        for size in sizes:
            fill = bench.fill_to(size)
            # Timed requests add orders too; they are counted before the next size is filled.
            times = [bench.post(GRAPHS_PER_REQUEST) for _ in range(args.repeat)]
            print(f"{size:>14,} {statistics.median(times):>9.3f} {min(times):>7.3f} {fill:>8.1f}")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
