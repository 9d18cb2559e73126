"""An httpx transport that records every request the backend sends, and can lose answers.

``Capture`` wraps the real transport to a served sandbox: each request is sent, its method,
path, query and JSON body are kept (``.sent``), and a rule can make the client never see the
answer of a matching request (the request *was* processed: a lost answer, as after a timeout).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import attrs
import httpx


@attrs.frozen
class Sent:
    """One request as the backend sent it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any

    @property
    def soql(self) -> str | None:
        """The SOQL of a ``/query`` request."""
        if self.path.endswith("/query") or "/query/" in self.path:
            return (self.query.get("q") or [None])[0]
        return None


class Capture(httpx.BaseTransport):
    """Records requests; ``lose(predicate, times)`` drops the answers of matching requests."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self._inner = inner or httpx.HTTPTransport()
        self.sent: list[Sent] = []
        self._lose: list[tuple[Callable[[Sent], bool], list[int]]] = []
        self.lost = 0
        """Answers dropped so far."""

    def lose(self, predicate: Callable[[Sent], bool], times: int = 1) -> None:
        """Process the next ``times`` matching requests but answer them with a read timeout."""
        self._lose.append((predicate, [times]))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request, keep it, and hand back its answer (unless it is to be lost)."""
        raw = request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        sent = Sent(request.method, request.url.path, parse_qs(request.url.query.decode()), body)
        self.sent.append(sent)
        response = self._inner.handle_request(request)
        for predicate, left in self._lose:
            if left[0] > 0 and predicate(sent):
                left[0] -= 1
                self.lost += 1
                response.read()
                response.close()
                raise httpx.ReadTimeout("answer lost (test)", request=request)
        return response

    def close(self) -> None:
        """Close the wrapped transport."""
        self._inner.close()

    def to(self, suffix: str, method: str = "POST") -> list[Sent]:
        """Requests whose path ends with ``suffix`` (and method)."""
        return [s for s in self.sent if s.method == method and s.path.endswith(suffix)]


# -- a plain org (what the som-minimal profile will be) ---------------------------------------

STORE_FIELD = "POS_Store_Id__c"
RECEIVED_FIELD = "POS_Quantity_Received__c"
CUSTOMER_FIELD = "POS_Customer_Id__c"
DEFAULT_FO_STATUSES = {
    # Only FulfillmentOrder.Status values a plain org has (Object Reference defaults).
    "PICK": "Pickpack",
    "PACK": "Pick Complete",
    "READY_FOR_PICKUP": "Pick Complete",
    "PICKED_UP": "Fulfilled",
    "SHIPPED": "Fulfilled",
    "RECEIVED": "Pick Complete",
    "REJECT": "Rejected",
}


def plain_org(profile: str = "som-minimal") -> Any:
    """A served demo org of the ``som-minimal`` profile: the setup package and nothing else
    (no summary flow, no automatic fulfilment, one currency, Reason only ``Unknown``, only
    Salesforce's default FulfillmentOrder statuses); ``profile="som"`` for an org with the flow."""
    from omsbridge_salesforce_sandbox import SalesforceSandbox, SandboxServer

    sandbox = SalesforceSandbox(seed="demo", long_poll_timeout=0.3, org_profile=profile)
    return SandboxServer(sandbox, close_sandbox=True).start()


def plain_backend(url: str, capture: Capture, **overrides: Any) -> Any:
    """The DEMO merchant on ``url`` with the settings that suit a plain org (the defaults for
    summary, take-with fulfilment, currency and reasons), sending through ``capture``."""
    from sf_backend_helpers import config

    from omsbridge import MerchantContext
    from omsbridge_salesforce.backend import SalesforceBackend
    from omsbridge_salesforce.client import SalesforceClient
    from omsbridge_salesforce.config import CustomField, SalesforceConfig

    defaults = {f.name: f.default for f in attrs.fields(SalesforceConfig)}
    settings: dict[str, Any] = {
        "order_summary_creation": defaults["order_summary_creation"],
        "take_with_fulfillment": defaults["take_with_fulfillment"],
        "multi_currency": defaults["multi_currency"],
        "person_accounts": defaults["person_accounts"],
        "custom_fields": [CustomField(STORE_FIELD)],
        "received_quantity_field": RECEIVED_FIELD,
        "payment_gateway_name": "DemoGateway",
        "cash_payment_gateway_name": "CashPOS",
        "fulfillment_statuses": DEFAULT_FO_STATUSES,
        **overrides,
    }
    cfg = config(url, **settings)
    return SalesforceBackend(
        cfg,
        MerchantContext("DEMO", "en_US", "US", "USD"),
        client=SalesforceClient(cfg, transport=capture),
    )
