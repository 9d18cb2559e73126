"""A POS sale as ONE Salesforce composite graph: a pure function, no I/O.

The graph creates the order as Draft with all its children and activates it in its last
nodes. The OrderSummary is then made by the org's activation flow (inside the same all-or-none
transaction, composite.md §1.5) or, with ``order_summary_creation = "connect"``, by the
connector right after (:mod:`omsbridge_salesforce.aftersale`). A DigitalWallet (cash, wallets,
gift cards) carries no ``Type``: no Salesforce source confirms that field; the NickName says
what it is::

    ord     POST  Order                 Status Draft, external id = transaction id
    odgN    POST  OrderDeliveryGroup    one per fulfillment (a mixed cart has several)
    itN     POST  OrderItem             Type "Order Product" (POS line id kept as external id)
    dcN     POST  OrderItem             Type "Delivery Charge"
    txN_M   POST  OrderItemTaxLineItem
    agL/agN POST  OrderAdjustmentGroup  SplitLine (line promotions) / Header (order-level)
    ajN_M   POST  OrderItemAdjustmentLineItem (order-level adjustments prorated over the lines)
    pg      POST  PaymentGroup
    pmN     POST  CardPaymentMethod | DigitalWallet (cash, wallets, gift cards)
    payN    POST  Payment               Status Processed, ProcessingMode External
    act     PATCH Order                 Status Activated  -> OrderSummary
    num     GET   Order                 OrderNumber, read back in the same call

Integrators edit the graph before it is sent through the ``omsbridge_salesforce_order_graph``
hook (see :mod:`omsbridge_salesforce.hookspecs`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from datetime import UTC
from decimal import ROUND_DOWN, Decimal
from typing import Any

import attrs

from omsbridge import (
    Adjustment,
    CardTender,
    CashTender,
    ChargeType,
    DigitalWalletTender,
    Fulfillment,
    GiftCardTender,
    InvalidTransaction,
    Issue,
    LineItem,
    Transaction,
)
from omsbridge.model._checks import minor_units
from omsbridge_salesforce.config import SalesforceConfig

__all__ = [
    "MAX_NODE_KINDS",
    "MAX_NODES",
    "DeliveryMethodRef",
    "OrderGraph",
    "OrderRefs",
    "ProductRef",
    "build_order_graph",
    "external_line_id",
    "prorate",
]

MAX_NODES = 500
"""Nodes per graph (and per payload) Salesforce accepts."""
MAX_NODE_KINDS = 15
"""Distinct (HTTP method, sObject) node kinds per payload Salesforce accepts."""
MAX_DEPTH = 15
"""Depth of a graph Salesforce accepts."""

ORDER_REF = "ord"
"""referenceId of the Order node (its ``id`` is the new order's id)."""
NUMBER_REF = "num"
"""referenceId of the node that reads the OrderNumber back."""

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_URL_KIND = re.compile(r"/sobjects/([A-Za-z0-9_]+)")

_CARD_TYPES = {
    "visa": "Visa", "mastercard": "MasterCard", "mc": "MasterCard", "amex": "AmericanExpress",
    "americanexpress": "AmericanExpress", "discover": "Discover", "diners": "DinersClub",
    "dinersclub": "DinersClub", "jcb": "JCB", "maestro": "Maestro", "unionpay": "UnionPay",
}  # fmt: skip


@attrs.frozen
class ProductRef:
    """A product and its price-book entry in the merchant's price book."""

    product_id: str
    pricebook_entry_id: str


@attrs.frozen
class DeliveryMethodRef:
    """An OrderDeliveryMethod and the product (with price-book entry) its charges are sold as."""

    id: str
    product_id: str | None = None
    pricebook_entry_id: str | None = None


@attrs.frozen
class OrderRefs:
    """The record ids a graph points at, found (or created) by :mod:`omsbridge_salesforce.lookups`."""

    account_id: str
    pricebook_id: str
    sales_channel_id: str | None
    delivery_methods: Mapping[str, DeliveryMethodRef]
    """By fulfillment ``TYPE-SUBTYPE``."""
    products: Mapping[str, ProductRef]
    """By SKU."""
    card_gateway_id: str | None = None
    cash_gateway_id: str | None = None


class OrderGraph:
    """One composite graph under construction (or being edited by an integrator's hook).

    ``nodes`` are Salesforce composite subrequests (``method``, ``url``, ``referenceId``,
    ``body``); ``sources`` maps a referenceId to the transaction path it came from, so an error
    on a node names the POS field (``lines[2]``).
    """

    __slots__ = ("api_version", "graph_id", "nodes", "sources")

    def __init__(self, graph_id: str, api_version: str) -> None:
        self.graph_id = graph_id
        self.api_version = api_version
        self.nodes: list[dict[str, Any]] = []
        self.sources: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<OrderGraph {self.graph_id} with {len(self.nodes)} nodes>"

    def url(self, sobject: str, record: str | None = None) -> str:
        """A node URL for an sObject (and record id or ``@{ref.id}``)."""
        base = f"/services/data/{self.api_version}/sobjects/{sobject}"
        return f"{base}/{record}" if record else base

    def add(
        self,
        ref: str,
        sobject: str,
        body: dict[str, Any] | None = None,
        *,
        method: str = "POST",
        record: str | None = None,
        source: str | None = None,
    ) -> str:
        """Append a node; returns ``@{ref.id}`` for use in later nodes."""
        node: dict[str, Any] = {
            "method": method,
            "url": self.url(sobject, record),
            "referenceId": ref,
        }
        if body is not None:
            node["body"] = body
        self.nodes.append(node)
        if source is not None:
            self.sources[ref] = source
        return "@{" + ref + ".id}"

    def node(self, ref: str) -> dict[str, Any]:
        """The node with this referenceId (KeyError if none)."""
        for node in self.nodes:
            if node.get("referenceId") == ref:
                return node
        raise KeyError(ref)

    def nodes_of(self, sobject: str, method: str = "POST") -> list[dict[str, Any]]:
        """Every node that sends ``method`` to ``sobject``."""
        return [n for n in self.nodes if n.get("method") == method and _kind(n)[1] == sobject]

    def insert_before(self, ref: str, node: dict[str, Any]) -> None:
        """Insert a node before the node ``ref`` (e.g. before activation, ``act``)."""
        index = next(i for i, n in enumerate(self.nodes) if n.get("referenceId") == ref)
        self.nodes.insert(index, node)

    def remove(self, ref: str) -> None:
        """Drop the node ``ref``."""
        self.nodes = [n for n in self.nodes if n.get("referenceId") != ref]

    def kinds(self) -> set[tuple[str, str]]:
        """The distinct (method, sObject) node kinds (Salesforce allows 15 per payload)."""
        return {_kind(n) for n in self.nodes}

    def check_limits(self) -> None:
        """Raise :class:`InvalidTransaction` when the graph exceeds Salesforce's graph limits."""
        issues = []
        if len(self.nodes) > MAX_NODES:
            issues.append(
                Issue(
                    "lines",
                    f"the order needs {len(self.nodes)} composite-graph nodes; Salesforce allows "
                    f"{MAX_NODES} per graph: split the transaction or reduce lines, taxes and "
                    "adjustments",
                )
            )
        kinds = self.kinds()
        if len(kinds) > MAX_NODE_KINDS:
            issues.append(
                Issue(
                    "",
                    f"the order graph uses {len(kinds)} distinct node kinds; Salesforce allows "
                    f"{MAX_NODE_KINDS}",
                )
            )
        if issues:
            raise InvalidTransaction(issues, code="GRAPH_TOO_LARGE", backend="salesforce")

    def payload(self) -> dict[str, Any]:
        """The graph as sent: ``{"graphId": ..., "compositeRequest": [...]}``."""
        return {"graphId": self.graph_id, "compositeRequest": self.nodes}


def _kind(node: Mapping[str, Any]) -> tuple[str, str]:
    return _kind_of(str(node.get("method", "")), str(node.get("url", "")))


@functools.lru_cache(maxsize=1024)  # check_limits runs per sale over the same few node URLs
def _kind_of(method: str, url: str) -> tuple[str, str]:
    match = _URL_KIND.search(url)
    return method.upper(), match.group(1) if match else "?"


def external_line_id(transaction: Transaction, line: LineItem) -> str:
    """The external order-item id of a line: the POS line id, else ``<txn>-<line number>``."""
    return line.line_id or f"{transaction.transaction_id}-{line.line_number}"


def prorate(amount: Decimal, weights: Sequence[Decimal], places: int) -> list[Decimal]:
    """Split ``amount`` over ``weights`` in the currency's minor units; the parts sum exactly.

    Largest-remainder rounding: every part is rounded toward zero, then the leftover minor
    units go to the parts that lost the most.
    """
    if not weights:
        return []
    unit = Decimal(1).scaleb(-places)
    total = sum(weights, _ZERO)
    if total == 0:
        weights, total = [Decimal(1)] * len(weights), Decimal(len(weights))
    sign = -1 if amount < 0 else 1
    magnitude = abs(amount)
    exact = [magnitude * w / total for w in weights]
    parts = [(e / unit).to_integral_value(rounding=ROUND_DOWN) * unit for e in exact]
    left = int(((magnitude - sum(parts, _ZERO)) / unit).to_integral_value())
    order = sorted(range(len(parts)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in order[:left]:
        parts[i] += unit
    return [p * sign for p in parts]


def _graph_id(transaction_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", transaction_id)
    return ("t" + cleaned)[:39]


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def build_order_graph(
    transaction: Transaction,
    refs: OrderRefs,
    config: SalesforceConfig,
    *,
    exchange_credit: Decimal = _ZERO,
) -> OrderGraph:
    """Build the graph that creates and activates the order for the sale lines of a transaction.

    For an EXCHANGE only its SALE lines become the new order; ``exchange_credit`` (the value
    of the returned goods applied to it) is recorded as one extra payment, and refunds (negative
    tenders) are left to the return's credit memo.
    """
    g = OrderGraph(_graph_id(transaction.transaction_id), config.api_version)
    txn = transaction
    places = minor_units(txn.currency)
    ordered_at = txn.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    order_day = txn.created_at.date().isoformat()
    account = refs.account_id
    customer = txn.customer

    order: dict[str, Any] = {
        "AccountId": account,
        "EffectiveDate": order_day,
        "OrderedDate": ordered_at,
        "Status": "Draft",
        "Pricebook2Id": refs.pricebook_id,
        # The seed searches orders by Name ("Amanda Freeman%"): it holds the customer's name.
        "Name": (customer.full_name if customer else None)
        or txn.order_number
        or txn.transaction_id,
        config.order_external_id_field: txn.transaction_id,
        "Description": _description(txn),
    }
    if txn.order_number and config.order_external_id_field != "OrderReferenceNumber":
        # A standard text field: a return names its original by the POS order number (unless
        # the org made it the transaction id's field, which is written above).
        order["OrderReferenceNumber"] = txn.order_number
    if config.order_placed_at_field:
        # OrderedDate is UTC only: the POS's own offset is kept beside it.
        order[config.order_placed_at_field] = txn.created_at.isoformat()
    if config.order_store_id_field and txn.store_id:
        order[config.order_store_id_field] = txn.store_id
    if config.order_customer_id_field and customer and customer.customer_id:
        # Written with the order itself (no extra call): what search by customer_id reads.
        order[config.order_customer_id_field] = customer.customer_id
    if config.multi_currency:
        order["CurrencyIsoCode"] = txn.currency
    if refs.sales_channel_id:
        order["SalesChannelId"] = refs.sales_channel_id
    if customer is not None:
        if customer.email:
            order["BillingEmailAddress"] = customer.email
        if customer.phone:
            order["BillingPhoneNumber"] = customer.phone
        if customer.billing_address is not None:
            order.update(_address("Billing", customer.billing_address))
    ord_id = g.add(ORDER_REF, "Order", order, source="")

    # One delivery group per fulfillment, lines and charges in order of first appearance.
    groups: dict[Fulfillment, str] = {}
    line_index = {id(line): i for i, line in enumerate(txn.lines)}

    def group_for(fulfillment: Fulfillment, source: str) -> str:
        found = groups.get(fulfillment)
        if found is not None:
            return found
        method = refs.delivery_methods.get(fulfillment.method_name)
        if method is None:
            raise InvalidTransaction(
                [
                    Issue(
                        f"{source}.fulfillment",
                        f"no OrderDeliveryMethod for {fulfillment.method_name}",
                    )
                ],
                code="NO_DELIVERY_METHOD",
                backend="salesforce",
            )
        ref = f"odg{len(groups)}"
        body: dict[str, Any] = {
            "OrderId": ord_id,
            "OrderDeliveryMethodId": method.id,
            "DeliverToName": _deliver_to_name(txn, fulfillment),
        }
        if fulfillment.ship_to is not None:
            body.update(_address("DeliverTo", fulfillment.ship_to))
            if fulfillment.ship_to.phone:
                body["PhoneNumber"] = fulfillment.ship_to.phone
        if customer is not None and customer.email:
            body["EmailAddress"] = customer.email
        if customer is not None and customer.phone and "PhoneNumber" not in body:
            body["PhoneNumber"] = customer.phone
        groups[fulfillment] = g.add(ref, "OrderDeliveryGroup", body, source=f"{source}.fulfillment")
        return groups[fulfillment]

    sale_lines = txn.sale_lines
    item_refs: list[tuple[int, LineItem, str, str]] = []
    for line in sale_lines:
        i = line_index[id(line)]
        source = f"lines[{i}]"
        product = refs.products.get(line.sku)
        if product is None:
            raise InvalidTransaction(
                [Issue(f"{source}.sku", f"no Product2/PricebookEntry for SKU {line.sku!r}")],
                code="NO_PRODUCT",
                backend="salesforce",
            )
        odg = group_for(line.fulfillment, source)
        ref = f"it{i}"
        item: dict[str, Any] = {
            "OrderId": ord_id,
            "OrderDeliveryGroupId": odg,
            "Product2Id": product.product_id,
            "PricebookEntryId": product.pricebook_entry_id,
            "Type": "Order Product",
            "Quantity": line.quantity,
            "UnitPrice": line.unit_price,
            "ListPrice": line.unit_price,
            "TotalLineAmount": line.subtotal,
            config.order_item_external_id_field: external_line_id(txn, line),
        }
        if line.name:
            item["Description"] = line.name
        item_id = g.add(ref, "OrderItem", item, source=source)
        item_refs.append((i, line, item_id, source))
        for j, tax in enumerate(line.taxes):
            g.add(
                f"tx{i}_{j}",
                "OrderItemTaxLineItem",
                _tax(item_id, tax, order_day),
                source=f"{source}.taxes[{j}]",
            )

    for k, charge in enumerate(txn.charges):
        source = f"charges[{k}]"
        if charge.type != ChargeType.DELIVERY:
            raise InvalidTransaction(
                [
                    Issue(
                        f"{source}.type",
                        "only DELIVERY charges can be posted to Salesforce "
                        "Order Management (an order item is a product or a delivery charge)",
                    )
                ],
                code="UNSUPPORTED_CHARGE",
                backend="salesforce",
            )
        odg = group_for(charge.fulfillment, source)
        method = refs.delivery_methods[charge.fulfillment.method_name]
        if not (method.product_id and method.pricebook_entry_id):
            raise InvalidTransaction(
                [
                    Issue(
                        f"{source}.fulfillment",
                        f"OrderDeliveryMethod for "
                        f"{charge.fulfillment.method_name} has no product to charge with",
                    )
                ],
                code="NO_DELIVERY_PRODUCT",
                backend="salesforce",
            )
        charge_id = g.add(
            f"dc{k}",
            "OrderItem",
            {
                "OrderId": ord_id,
                "OrderDeliveryGroupId": odg,
                "Product2Id": method.product_id,
                "PricebookEntryId": method.pricebook_entry_id,
                "Type": "Delivery Charge",
                "Quantity": Decimal(1),
                "UnitPrice": charge.amount,
                "ListPrice": charge.amount,
                "TotalLineAmount": charge.amount,
                "Description": charge.name or "Delivery",
            },
            source=source,
        )
        for j, tax in enumerate(charge.taxes):
            g.add(
                f"dt{k}_{j}",
                "OrderItemTaxLineItem",
                _tax(charge_id, tax, order_day),
                source=f"{source}.taxes[{j}]",
            )

    _adjustments(g, txn, ord_id, item_refs, places)
    sale_total = _sale_total(txn)
    _payments(
        g, txn, refs, ord_id, account, ordered_at, exchange_credit, sale_total,
        config.multi_currency,
    )  # fmt: skip

    g.add("act", "Order", {"Status": "Activated"}, method="PATCH", record=ord_id)
    g.nodes.append(
        {
            "method": "GET",
            "url": g.url("Order", ord_id) + "?fields=OrderNumber",
            "referenceId": NUMBER_REF,
        }
    )
    g.check_limits()
    return g


def _sale_total(txn: Transaction) -> Decimal:
    return (
        sum((line.total for line in txn.sale_lines), _ZERO)
        + sum((a.amount for a in txn.adjustments), _ZERO)
        + sum((c.total for c in txn.charges), _ZERO)
    )


def _description(txn: Transaction) -> str:
    parts = [f"POS transaction {txn.transaction_id}", f"store {txn.store_id}"]
    if txn.register_id:
        parts.append(f"register {txn.register_id}")
    if txn.associate_id:
        parts.append(f"associate {txn.associate_id}")
    return ", ".join(parts)


def _address(prefix: str, address: Any) -> dict[str, Any]:
    street = address.line1 if not address.line2 else f"{address.line1}\n{address.line2}"
    out = {
        f"{prefix}Street": street,
        f"{prefix}City": address.city,
        f"{prefix}Country": address.country,
    }
    if address.region:
        out[f"{prefix}State"] = address.region
    if address.postal_code:
        out[f"{prefix}PostalCode"] = address.postal_code
    return out


def _deliver_to_name(txn: Transaction, fulfillment: Fulfillment) -> str:
    if fulfillment.ship_to is not None and fulfillment.ship_to.name:
        return fulfillment.ship_to.name
    if txn.customer is not None and txn.customer.full_name:
        return txn.customer.full_name
    if txn.customer is not None and txn.customer.email:
        return txn.customer.email
    return f"Store {fulfillment.store_id or txn.store_id}"


def _tax(item_id: str, tax: Any, day: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "OrderItemId": item_id,
        "Name": tax.name,
        "Type": "Actual",
        "Amount": tax.amount,
        "TaxEffectiveDate": day,
    }
    if tax.rate is not None:
        body["Rate"] = tax.rate * _HUNDRED  # Rate is a percent field; the POS gives a fraction
    if tax.code:
        body["Description"] = tax.code
    return body


def _adjustment_name(adj: Adjustment) -> str:
    return (adj.description or adj.promotion_id or adj.code or str(adj.type))[:255]


def _adjustments(
    g: OrderGraph,
    txn: Transaction,
    ord_id: str,
    items: list[tuple[int, LineItem, str, str]],
    places: int,
) -> None:
    line_adjusted = [entry for entry in items if entry[1].adjustments]
    if line_adjusted:
        group = g.add(
            "agL",
            "OrderAdjustmentGroup",
            {"OrderId": ord_id, "Name": "Line adjustments", "Type": "SplitLine"},
        )
        for i, line, item, src in line_adjusted:
            for j, adj in enumerate(line.adjustments):
                g.add(
                    f"al{i}_{j}",
                    "OrderItemAdjustmentLineItem",
                    {
                        "OrderItemId": item,
                        "OrderAdjustmentGroupId": group,
                        "Name": _adjustment_name(adj),
                        "Amount": adj.amount,
                        "Description": str(adj.type),
                    },
                    source=f"{src}.adjustments[{j}]",
                )
    if not txn.adjustments or not items:
        return
    # Order-level adjustments are spread over the lines by what each line is worth after its
    # own adjustments, so the order total matches the POS to the cent.
    weights = [line.subtotal + line.discount for _, line, _, _ in items]
    for n, adj in enumerate(txn.adjustments):
        group = g.add(
            f"ag{n}",
            "OrderAdjustmentGroup",
            {
                "OrderId": ord_id,
                "Name": _adjustment_name(adj),
                "Type": "Header",
                "Description": str(adj.type),
            },
            source=f"adjustments[{n}]",
        )
        parts = prorate(adj.amount, weights, places)
        for (m, _, item, _), part in zip(items, parts, strict=True):
            if part == 0:
                continue
            g.add(
                f"aj{n}_{m}",
                "OrderItemAdjustmentLineItem",
                {
                    "OrderItemId": item,
                    "OrderAdjustmentGroupId": group,
                    "Name": _adjustment_name(adj),
                    "Amount": part,
                },
                source=f"adjustments[{n}]",
            )


def _payments(
    g: OrderGraph,
    txn: Transaction,
    refs: OrderRefs,
    ord_id: str,
    account: str,
    when: str,
    exchange_credit: Decimal,
    sale_total: Decimal,
    multi_currency: bool,
) -> None:
    tenders = [(i, t) for i, t in enumerate(txn.tenders) if t.amount > 0]
    currency = {"CurrencyIsoCode": txn.currency} if multi_currency else {}
    pg = g.add("pg", "PaymentGroup", {"SourceObjectId": ord_id, **currency})
    for i, tender in tenders:
        source = f"tenders[{i}]"
        method_ref, sobject, method_body, gateway = _payment_method(tender, refs, account)
        method_id = g.add(method_ref.format(i=i), sobject, method_body, source=source)
        payment: dict[str, Any] = {
            "Amount": tender.amount,
            "AccountId": account,
            "ProcessingMode": "External",
            "Status": "Processed",
            "Type": "Sale",
            "PaymentGroupId": pg,
            "PaymentMethodId": method_id,
            "Date": when,
            "EffectiveDate": when,
            **currency,
        }
        reference = tender.gateway_reference or getattr(tender, "auth_code", None)
        if reference:
            payment["GatewayRefNumber"] = reference
        if gateway:
            payment["PaymentGatewayId"] = gateway
        g.add(f"pay{i}", "Payment", payment, source=source)
    credit = min(exchange_credit, sale_total - sum((t.amount for _, t in tenders), _ZERO))
    if credit > 0:
        wallet = g.add(
            "pmX",
            "DigitalWallet",
            {
                "ProcessingMode": "External",
                "Status": "Active",
                "AccountId": account,
                "NickName": "Exchange credit",
            },
        )
        g.add(
            "payX",
            "Payment",
            {
                "Amount": credit,
                "AccountId": account,
                "ProcessingMode": "External",
                "Status": "Processed",
                "Type": "Sale",
                "PaymentGroupId": pg,
                "PaymentMethodId": wallet,
                "Date": when,
                "EffectiveDate": when,
                **currency,
                "GatewayRefNumber": f"EXCHANGE-{txn.transaction_id}"[:255],
            },
        )


def _payment_method(
    tender: Any, refs: OrderRefs, account: str
) -> tuple[str, str, dict[str, Any], str | None]:
    base: dict[str, Any] = {"ProcessingMode": "External", "Status": "Active", "AccountId": account}
    if isinstance(tender, CardTender):
        body = {
            **base,
            "NickName": f"{tender.brand} ****{tender.last4}",
            "InputCardNumber": "************" + tender.last4,
        }
        card_type = _CARD_TYPES.get(_key(tender.brand))
        if card_type:
            body["CardType"] = card_type
        if tender.cardholder_name:
            body["CardHolderName"] = tender.cardholder_name
        if tender.expiry_month:
            body["ExpiryMonth"] = tender.expiry_month
        if tender.expiry_year:
            body["ExpiryYear"] = tender.expiry_year
        if tender.gateway_reference:
            body["GatewayToken"] = tender.gateway_reference
        if refs.card_gateway_id:
            body["PaymentGatewayId"] = refs.card_gateway_id
        return "pm{i}", "CardPaymentMethod", body, refs.card_gateway_id
    if isinstance(tender, CashTender):
        body = {**base, "NickName": "Cash"}
        # The seed: without OmsCashPaymentGatewayName no gateway is set on cash at all.
        if refs.cash_gateway_id:
            body["PaymentGatewayId"] = refs.cash_gateway_id
        return "pm{i}", "DigitalWallet", body, refs.cash_gateway_id
    if isinstance(tender, DigitalWalletTender):
        body = {
            **base,
            "NickName": tender.wallet + (f" ****{tender.last4}" if tender.last4 else ""),
        }
        if tender.gateway_reference:
            body["GatewayToken"] = tender.gateway_reference
        return "pm{i}", "DigitalWallet", body, None
    if isinstance(tender, GiftCardTender):
        body = {**base, "NickName": f"Gift card ****{tender.last4}"}
        return "pm{i}", "DigitalWallet", body, None
    raise TypeError(f"unknown tender {type(tender).__name__}")


def sale_total(transaction: Transaction) -> Decimal:
    """What the order built for the sale lines of ``transaction`` is worth (with charges)."""
    return _sale_total(transaction)
