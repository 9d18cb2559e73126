"""Test helpers for the sandbox tests: a thin REST client and a POS order-graph builder."""

from __future__ import annotations

from typing import Any

import httpx

from omsbridge_salesforce_sandbox import SalesforceSandbox

VERSION = "62.0"
BASE = f"/services/data/v{VERSION}"


class Api:
    """A REST client bound to one sandbox and API version."""

    def __init__(self, http: httpx.Client, sandbox: SalesforceSandbox) -> None:
        self.http = http
        self.sandbox = sandbox

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("/") else f"{BASE}/{path}"
        return self.http.request(method, url, **kwargs)

    def login(self) -> str:
        """Get a fresh access token (password flow) and use it from now on."""
        creds = self.sandbox.credentials
        response = self.http.post(
            "/services/oauth2/token",
            data={
                "grant_type": "password",
                **{k: creds[k] for k in ("client_id", "client_secret", "username", "password")},
            },
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        return token

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def query(self, soql: str, *, all_rows: bool = False) -> dict[str, Any]:
        response = self.get("queryAll" if all_rows else "query", params={"q": soql})
        assert response.status_code == 200, response.text
        return response.json()

    def rows(self, soql: str) -> list[dict[str, Any]]:
        return self.query(soql)["records"]

    def create(self, type_name: str, body: dict[str, Any]) -> str:
        response = self.post(f"sobjects/{type_name}", body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def record(self, type_name: str, rec_id: str) -> dict[str, Any]:
        response = self.get(f"sobjects/{type_name}/{rec_id}")
        assert response.status_code == 200, response.text
        return response.json()


def in_process_client(sandbox: SalesforceSandbox, token: str | None = None) -> httpx.Client:
    """An httpx client talking to the sandbox through WSGI (no socket)."""
    http = httpx.Client(transport=httpx.WSGITransport(app=sandbox), base_url="http://sandbox.local")
    if token is None:
        response = http.post(
            "/services/oauth2/token",
            data={
                "grant_type": "password",
                **{
                    k: sandbox.credentials[k]
                    for k in ("client_id", "client_secret", "username", "password")
                },
            },
        )
        token = response.json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def order_graph(
    demo: dict[str, Any],
    graph_id: str = "g1",
    *,
    email: str | None = None,
    lines: tuple[tuple[str, int], ...] = (("TEE-BLK-M", 2), ("BELT-LTH-90", 1)),
    method: str = "IN_STORE-DEFAULT",
    activate: bool = True,
    wallet: bool = False,
    txn: str | None = None,
    with_adjustment: bool = True,
    version: str = VERSION,
    lifecycle: str | None = None,
) -> dict[str, Any]:
    """The POS sale graph the connector posts: Draft order, group, items, taxes, adjustment,
    payment group, payment method, payment, then activation."""
    base = f"/services/data/v{version}/sobjects"
    account = demo["accounts"][email or "amanda.freeman@example.com"]
    nodes: list[dict[str, Any]] = []
    order_body: dict[str, Any] = {
        "AccountId": account,
        "EffectiveDate": "2026-01-05",
        "Status": "Draft",
        "Pricebook2Id": demo["pricebook_id"],
        "SalesChannelId": demo["sales_channels"]["POS"],
        "OrderedDate": "2026-01-05T10:15:00Z",
        "BillingEmailAddress": "amanda.freeman@example.com",
    }
    if txn:
        order_body["POS_Transaction_Id__c"] = txn
    if lifecycle:
        order_body["OrderLifeCycleType"] = lifecycle
    nodes.append(
        {"method": "POST", "url": f"{base}/Order", "referenceId": "refOrder", "body": order_body}
    )
    nodes.append(
        {
            "method": "POST",
            "url": f"{base}/OrderDeliveryGroup",
            "referenceId": "refOdg",
            "body": {
                "OrderId": "@{refOrder.id}",
                "DeliverToName": "Amanda Freeman",
                "OrderDeliveryMethodId": demo["delivery_methods"][method],
            },
        }
    )
    if with_adjustment:
        nodes.append(
            {
                "method": "POST",
                "url": f"{base}/OrderAdjustmentGroup",
                "referenceId": "refAdjGroup",
                "body": {"OrderId": "@{refOrder.id}", "Name": "PROMO10", "Type": "Header"},
            }
        )
    total = 0.0
    prices = {
        "TEE-BLK-M": 25.0,
        "TEE-WHT-L": 25.0,
        "SNK-RUN-42": 120.0,
        "BELT-LTH-90": 45.0,
        "TOTE-CNV": 30.0,
    }
    for index, (sku, qty) in enumerate(lines):
        price = prices[sku]
        ref = f"refItem{index}"
        nodes.append(
            {
                "method": "POST",
                "url": f"{base}/OrderItem",
                "referenceId": ref,
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
                    "POS_Line_Id__c": f"{txn or 'line'}-{index}",
                },
            }
        )
        tax = round(price * qty * 0.08, 2)
        nodes.append(
            {
                "method": "POST",
                "url": f"{base}/OrderItemTaxLineItem",
                "referenceId": f"refTax{index}",
                "body": {
                    "OrderItemId": f"@{{{ref}.id}}",
                    "Name": "Sales Tax",
                    "Type": "Actual",
                    "Amount": tax,
                    "Rate": 8,
                    "TaxEffectiveDate": "2026-01-05",
                },
            }
        )
        total += price * qty + tax
        if with_adjustment and index == 0:
            nodes.append(
                {
                    "method": "POST",
                    "url": f"{base}/OrderItemAdjustmentLineItem",
                    "referenceId": "refAdj0",
                    "body": {
                        "OrderItemId": f"@{{{ref}.id}}",
                        "OrderAdjustmentGroupId": "@{refAdjGroup.id}",
                        "Name": "PROMO10",
                        "Amount": -5.0,
                    },
                }
            )
            total -= 5.0
    nodes.append(
        {
            "method": "POST",
            "url": f"{base}/PaymentGroup",
            "referenceId": "refPg",
            "body": {"SourceObjectId": "@{refOrder.id}"},
        }
    )
    if wallet:
        nodes.append(
            {
                "method": "POST",
                "url": f"{base}/DigitalWallet",
                "referenceId": "refPm",
                "body": {
                    "ProcessingMode": "External",
                    "Status": "Active",
                    "AccountId": account,
                    "NickName": "Cash",
                    "Type": "Cash",
                    "PaymentGatewayId": demo["payment_gateways"]["CashPOS"],
                },
            }
        )
    else:
        nodes.append(
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
            }
        )
    nodes.append(
        {
            "method": "POST",
            "url": f"{base}/Payment",
            "referenceId": "refPay",
            "body": {
                "Amount": round(total, 2),
                "AccountId": account,
                "ProcessingMode": "External",
                "Status": "Processed",
                "Type": "Sale",
                "PaymentGroupId": "@{refPg.id}",
                "PaymentMethodId": "@{refPm.id}",
                "GatewayRefNumber": "pos-123",
                "Date": "2026-01-05T10:15:00Z",
            },
        }
    )
    if activate:
        nodes.append(
            {
                "method": "PATCH",
                "url": f"{base}/Order/@{{refOrder.id}}",
                "referenceId": "refActivate",
                "body": {"Status": "Activated"},
            }
        )
    return {"graphId": graph_id, "compositeRequest": nodes}


def post_graph(api: Api, *graphs: dict[str, Any]) -> dict[str, Any]:
    response = api.post("composite/graph", {"graphs": list(graphs)})
    assert response.status_code == 200, response.text
    return response.json()


def node(result: dict[str, Any], graph_index: int, reference_id: str) -> dict[str, Any]:
    for entry in result["graphs"][graph_index]["graphResponse"]["compositeResponse"]:
        if entry["referenceId"] == reference_id:
            return entry
    raise AssertionError(f"no node {reference_id}")


def sale(api: Api, **kwargs: Any) -> dict[str, Any]:
    """Post one POS sale graph and return ids of the order and its summary records."""
    result = post_graph(api, order_graph(api.sandbox.demo, **kwargs))
    assert result["graphs"][0]["isSuccessful"], result
    order_id = node(result, 0, "refOrder")["body"]["id"]
    summaries = api.rows(f"SELECT Id FROM OrderSummary WHERE OriginalOrderId = '{order_id}'")
    summary_id = summaries[0]["Id"] if summaries else None
    items = (
        api.rows(
            "SELECT Id, QuantityOrdered, OriginalOrderItem.Product2.StockKeepingUnit, TypeCode "
            f"FROM OrderItemSummary WHERE OrderSummaryId = '{summary_id}' ORDER BY LineNumber"
        )
        if summary_id
        else []
    )
    return {"order_id": order_id, "summary_id": summary_id, "items": items, "result": result}
