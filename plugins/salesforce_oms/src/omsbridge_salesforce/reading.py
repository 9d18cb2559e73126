"""The read side: SOQL for order summaries and fulfillment orders, and rows -> POS model.

Seed 004's order history aggregates the order summary with its item summaries, payments,
fulfillment orders and shipments; :func:`order_detail` builds that one object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from omsbridge import (
    Address,
    Customer,
    FulfillmentKind,
    FulfillmentOrder,
    FulfillmentOrderLine,
    InvalidTransaction,
    OrderDetail,
    OrderHit,
    OrderLine,
    Payment,
    Shipment,
)
from omsbridge.model._checks import minor_units
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.shipping import carrier_of
from omsbridge_salesforce.soql import looks_like_id, soql

__all__ = [
    "CLOSED_CATEGORIES",
    "ITEM_FIELDS",
    "OPEN_FULFILLMENT",
    "SUMMARY_FIELDS",
    "summary_fields",
    "as_decimal",
    "as_quantity",
    "fulfillment_order",
    "fulfillment_order_query",
    "hit",
    "order_detail",
    "parse_datetime",
    "product_items",
    "summary_query",
    "summary_where",
]

_ZERO = Decimal(0)

SUMMARY_FIELDS = (
    "Id, OrderNumber, OriginalOrderId, Status, OrderedDate, GrandTotalAmount, "
    "BillingEmailAddress, BillingPhoneNumber, AccountId, OrderLifeCycleType"
)
"""OrderSummary fields every read needs (plus CurrencyIsoCode in a multicurrency org and the
Person Account's names where the org has Person Accounts: :func:`summary_fields`)."""


def summary_fields(config: SalesforceConfig) -> str:
    """The OrderSummary fields to select in this org."""
    fields = SUMMARY_FIELDS
    if config.multi_currency:
        fields += ", CurrencyIsoCode"
    if config.person_accounts:
        fields += ", Account.FirstName, Account.LastName, Account.IsPersonAccount"
    return fields


CLOSED_CATEGORIES = ("CLOSED", "CANCELLED", "CANCELED", "REJECTED")
"""FulfillmentOrder.StatusCategory values of orders nobody acts on any more. The field is a
restricted picklist whose API values are ACTIVATED, CANCELLED, CLOSED, DRAFT, FULFILLING,
REJECTED (Object Reference); CANCELED is kept beside CANCELLED because Salesforce's own
FOStatusChangedEvent page spells the category both ways. Compared upper-cased (SOQL compares
picklist values without regard to case)."""

OPEN_FULFILLMENT = "StatusCategory NOT IN ('CLOSED', 'CANCELLED', 'CANCELED', 'REJECTED')"
"""SOQL condition on FulfillmentOrder: still open."""

_FALLBACK_CURRENCY = "USD"

ITEM_FIELDS = (
    "Id, LineNumber, StockKeepingUnit, Name, Type, TypeCode, QuantityOrdered, QuantityCanceled, "
    "QuantityFulfilled, QuantityReturned, QuantityAllocated, QuantityNetOrdered, "
    "QuantityAvailableToCancel, QuantityAvailableToReturn, UnitPrice, TotalLineAmount, "
    "TotalAdjustmentAmount, TotalTaxAmount, OrderDeliveryGroupSummary.OrderDeliveryMethod.Name"
)
"""OrderItemSummary fields every read needs (plus the configured external line id field)."""


def order_id_of(summary: dict[str, Any]) -> str:
    """The id the POS knows an order by: the original Order's (what ``post`` returned), so
    search, detail and post agree; the OrderSummary id only when there is no original."""
    return str(summary.get("OriginalOrderId") or summary["Id"])


def as_decimal(value: Any) -> Decimal:
    """A Salesforce number (Decimal from the client, or None) as Decimal."""
    if value is None:
        return _ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def as_quantity(value: Any) -> Decimal:
    """A quantity as the POS writes it: Salesforce answers 2.0 for 2."""
    number = as_decimal(value)
    return (
        number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
    )


def _money(value: Any, currency: str | None) -> Decimal:
    return as_decimal(value).quantize(Decimal(1).scaleb(-minor_units(currency or "USD")))


def parse_datetime(value: Any) -> datetime | None:
    """Salesforce's ``2026-01-05T10:15:00.000+0000`` (or a date) as an aware datetime."""
    if not value:
        return None
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def summary_query(config: SalesforceConfig, where: str, *, limit: int = 2) -> str:
    """The OrderSummary query (with its item summaries) for a WHERE condition."""
    ext = config.order_item_external_id_field
    txn = config.order_external_id_field
    return (
        f"SELECT {summary_fields(config)}, OriginalOrder.{txn}, "
        f"(SELECT {ITEM_FIELDS}, {ext} FROM OrderItemSummaries) "
        f"FROM OrderSummary WHERE {where} ORDER BY OrderedDate DESC LIMIT {limit}"
    )


def summary_where(config: SalesforceConfig, order_ref: str) -> str:
    """Match an order by summary id, original order id, order number or POS transaction id."""
    if not isinstance(order_ref, str) or not order_ref.strip():
        raise InvalidTransaction("order_id: must not be blank", backend="salesforce")
    conditions = [
        soql("OrderNumber = {}", order_ref),
        soql("OriginalOrder." + config.order_external_id_field + " = {}", order_ref),
    ]
    if looks_like_id(order_ref):
        conditions[:0] = [soql("Id = {}", order_ref), soql("OriginalOrderId = {}", order_ref)]
    return "(" + " OR ".join(conditions) + ")"


def product_items(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The order-product item summaries of a summary row (delivery charges left out)."""
    items = (summary.get("OrderItemSummaries") or {}).get("records") or []
    rows = [i for i in items if i.get("TypeCode", "Product") == "Product"]
    return sorted(rows, key=lambda i: int(i.get("LineNumber") or 0))


def _method_name(item: Mapping[str, Any]) -> str | None:
    group = item.get("OrderDeliveryGroupSummary") or {}
    method = group.get("OrderDeliveryMethod") or {}
    return method.get("Name")


def _customer(summary: Mapping[str, Any]) -> Customer | None:
    account = summary.get("Account") or {}
    person = bool(account.get("IsPersonAccount"))
    first = account.get("FirstName") if person else None
    last = account.get("LastName") if person else None
    email = summary.get("BillingEmailAddress")
    phone = summary.get("BillingPhoneNumber")
    if not any((first, last, email, phone)):
        return None
    try:
        return Customer(
            customer_id=summary.get("AccountId") if person else None,
            email=email,
            first_name=first,
            last_name=last,
            phone=phone,
        )
    except InvalidTransaction:
        return None


def _line(item: Mapping[str, Any], ext_field: str, currency: str | None) -> OrderLine:
    ordered = as_quantity(item.get("QuantityOrdered"))
    cancelled = as_quantity(item.get("QuantityCanceled"))
    returned = as_quantity(item.get("QuantityReturned"))
    total = _money(
        as_decimal(item.get("TotalLineAmount"))
        + as_decimal(item.get("TotalAdjustmentAmount"))
        + as_decimal(item.get("TotalTaxAmount")),
        currency,
    )
    return OrderLine(
        line_number=int(item.get("LineNumber") or 0),
        sku=item.get("StockKeepingUnit") or "",
        quantity_ordered=ordered,
        unit_price=_money(item.get("UnitPrice"), currency),
        total=total,
        name=item.get("Name"),
        line_id=item.get("Id"),
        external_line_id=item.get(ext_field),
        quantity_fulfilled=as_quantity(item.get("QuantityFulfilled")),
        quantity_cancelled=min(cancelled, ordered),
        quantity_returned=min(returned, ordered - min(cancelled, ordered)),
        fulfillment_method=_method_name(item),
    )


def _currency_of(row: Mapping[str, Any], fallback: str | None) -> str:
    # Single-currency orgs have no CurrencyIsoCode field: the org's one currency applies.
    return str(row.get("CurrencyIsoCode") or fallback or _FALLBACK_CURRENCY)


def hit(summary: Mapping[str, Any], currency: str | None = None) -> OrderHit:
    """A search hit (the seed's emailId, OrderID, Total, orderDate, count, OrderstatusText);
    ``currency`` is the org's currency where rows carry no CurrencyIsoCode."""
    code = _currency_of(summary, currency)
    items = product_items(summary)
    quantities = [as_quantity(i.get("QuantityOrdered")) for i in items]
    units = sum(quantities, _ZERO)
    count = int(units) if units == units.to_integral_value() else len(items)
    customer = _customer(summary)
    return OrderHit(
        order_id=order_id_of(summary),
        order_number=summary.get("OrderNumber") or "",
        placed_at=parse_datetime(summary.get("OrderedDate")) or datetime.now(UTC),
        total=_money(summary.get("GrandTotalAmount"), code),
        currency=code,
        status=summary.get("Status") or "",
        item_count=count,
        email=summary.get("BillingEmailAddress"),
        customer_name=customer.full_name if customer else None,
    )


def order_detail(
    config: SalesforceConfig,
    summary: Mapping[str, Any],
    *,
    payments: Iterable[Mapping[str, Any]] = (),
    refunds: Iterable[Mapping[str, Any]] = (),
    fulfillment_orders: Iterable[Mapping[str, Any]] = (),
    shipments: Iterable[Mapping[str, Any]] = (),
    currency: str | None = None,
) -> OrderDetail:
    """Aggregate a summary, its payments, refunds, fulfillment orders and shipments
    (``currency``: the org's currency where rows carry no CurrencyIsoCode)."""
    placed = parse_datetime(summary.get("OrderedDate")) or datetime.now(UTC)
    ext = config.order_item_external_id_field
    currency = _currency_of(summary, currency)
    lines = tuple(_line(i, ext, currency) for i in product_items(summary))
    paid = [
        Payment(
            payment_id=p["Id"],
            method=p.get("Method") or "Payment",
            amount=_money(p.get("CapturedAmount"), currency),
            status=p.get("Type"),
            last4=_last4(p.get("Method")),
        )
        for p in payments
    ]
    paid += [
        Payment(
            payment_id=r["Id"],
            method="Refund",
            amount=-_money(r.get("Amount"), currency),
            status=r.get("Status"),
            gateway_reference=r.get("GatewayRefNumber"),
        )
        for r in refunds
    ]
    return_by: date | None = None
    if config.return_window_days:
        return_by = placed.date() + timedelta(days=config.return_window_days)
    original = summary.get("OriginalOrder") or {}
    return OrderDetail(
        order_id=order_id_of(summary),
        order_number=summary.get("OrderNumber") or "",
        status=summary.get("Status") or "",
        placed_at=placed,
        currency=currency,
        total=_money(summary.get("GrandTotalAmount"), currency),
        lines=lines,
        payments=tuple(paid),
        fulfillment_orders=tuple(
            fulfillment_order(config, f, currency) for f in fulfillment_orders
        ),
        shipments=tuple(_shipment(s) for s in shipments),
        customer=_customer(summary),
        transaction_id=original.get(config.order_external_id_field),
        return_by=return_by,
    )


def _last4(label: Any) -> str | None:
    match = re.search(r"(\d{4})\s*$", str(label or ""))
    return match.group(1) if match else None


def _shipment(row: Mapping[str, Any]) -> Shipment:
    return Shipment(
        shipment_id=row["Id"],
        fulfillment_order_id=row.get("FulfillmentOrderId"),
        carrier=carrier_of(row),
        tracking_number=row.get("TrackingNumber"),
        status=row.get("Status"),
        # Shipment has no ship-date field: the record is created when the parcel ships.
        shipped_at=parse_datetime(row.get("CreatedDate")),
    )


def fulfillment_order_query(
    config: SalesforceConfig, where: Sequence[str], *, limit: int = 200
) -> str:
    """The FulfillmentOrder query (lines included) for WHERE conditions joined with AND."""
    store_field = config.store_id_field
    store = f", FulfilledFromLocation.{store_field}" if store_field else ""
    currency = ", CurrencyIsoCode" if config.multi_currency else ""
    conditions = " AND ".join(f"({c})" for c in where) if where else "Id != null"
    return (
        "SELECT Id, FulfillmentOrderNumber, OrderSummaryId, OrderSummary.OrderNumber, "
        "OrderSummary.OriginalOrderId, OrderSummary.BillingEmailAddress, Status, StatusCategory, "
        "Type, DeliveryMethod.Name, FulfilledToName, FulfilledToStreet, FulfilledToCity, "
        "FulfilledToState, FulfilledToPostalCode, FulfilledToCountry, FulfilledToEmailAddress, "
        f"FulfilledToPhone, CreatedDate, LastModifiedDate, GrandTotalAmount{currency}, "
        f"FulfilledFromLocationId{store}, "
        "(SELECT Id, OriginalQuantity, Quantity, UnitPrice, TypeCode, OrderItemSummaryId, "
        "OrderItemSummary.StockKeepingUnit, OrderItemSummary.LineNumber, OrderItemSummary.Name, "
        "OrderItemSummary.QuantityOrdered FROM FulfillmentOrderLineItems) "
        f"FROM FulfillmentOrder WHERE {conditions} ORDER BY CreatedDate ASC LIMIT {limit}"
    )


def _kind(config: SalesforceConfig, row: Mapping[str, Any]) -> FulfillmentKind:
    """The kind from the delivery method: the configured ``delivery_methods`` first, then the
    method's name (ship to store, pickup), then whether there is a street to ship to."""
    method = (row.get("DeliveryMethod") or {}).get("Name") or ""
    for pos_method, name in config.delivery_methods.items():
        if name == method:
            if pos_method.startswith("SHIP_TO_STORE"):
                return FulfillmentKind.SHIP_TO_STORE
            if pos_method.startswith("ONLINE"):
                return FulfillmentKind.SHIP_FROM_STORE
            return FulfillmentKind.PICKUP
    words = re.sub(r"[\s_-]+", " ", method.lower())
    if "ship to store" in words:
        return FulfillmentKind.SHIP_TO_STORE
    if "pick" in (row.get("Type") or "").lower() or "pick" in words:
        return FulfillmentKind.PICKUP
    return (
        FulfillmentKind.SHIP_FROM_STORE if row.get("FulfilledToStreet") else FulfillmentKind.PICKUP
    )


def _cancelled(line: Mapping[str, Any]) -> Decimal:
    # FulfillmentOrderLineItem has no cancelled-quantity field: Quantity is what is left of
    # OriginalQuantity after cancels (cancel-item lowers it). RejectedQuantity (API 57+) is
    # not cancelled; it is subtracted when a row carries it (not selected yet: the local
    # sandbox of this release lacks the field).
    original = line.get("OriginalQuantity")
    if original is None:
        return _ZERO
    gone = as_decimal(original) - as_decimal(line.get("Quantity"))
    return as_quantity(max(_ZERO, gone - as_decimal(line.get("RejectedQuantity"))))


def fulfillment_order(
    config: SalesforceConfig, row: Mapping[str, Any], currency: str | None = None
) -> FulfillmentOrder:
    """A FulfillmentOrder row (with its line items) as the POS's fulfillment order
    (``currency``: the org's currency where rows carry no CurrencyIsoCode)."""
    code = _currency_of(row, currency)
    summary = row.get("OrderSummary") or {}
    records = (row.get("FulfillmentOrderLineItems") or {}).get("records") or []
    lines = tuple(
        FulfillmentOrderLine(
            line_id=r["Id"],
            sku=(r.get("OrderItemSummary") or {}).get("StockKeepingUnit") or "",
            quantity=as_quantity(r.get("Quantity")),
            unit_price=_money(r.get("UnitPrice"), code),
            name=(r.get("OrderItemSummary") or {}).get("Name"),
            order_line_number=(r.get("OrderItemSummary") or {}).get("LineNumber"),
            quantity_cancelled=_cancelled(r),
        )
        for r in records
        if r.get("TypeCode", "Product") == "Product"
    )
    store_field = config.store_id_field
    location = row.get("FulfilledFromLocation") or {}
    ship_to = None
    if (
        row.get("FulfilledToStreet")
        and row.get("FulfilledToCity")
        and row.get("FulfilledToCountry")
    ):
        try:
            ship_to = Address(
                line1=row["FulfilledToStreet"],
                city=row["FulfilledToCity"],
                country=row["FulfilledToCountry"],
                region=row.get("FulfilledToState"),
                postal_code=row.get("FulfilledToPostalCode"),
                name=row.get("FulfilledToName"),
                phone=row.get("FulfilledToPhone"),
            )
        except InvalidTransaction:
            ship_to = None
    email = row.get("FulfilledToEmailAddress") or summary.get("BillingEmailAddress")
    customer = None
    if email or row.get("FulfilledToName"):
        name = (row.get("FulfilledToName") or "").strip()
        first, _, last = name.partition(" ")
        try:
            customer = Customer(
                email=email,
                first_name=first or None,
                last_name=last or None,
                phone=row.get("FulfilledToPhone"),
            )
        except InvalidTransaction:
            customer = None
    return FulfillmentOrder(
        fulfillment_order_id=row["Id"],
        order_id=(row.get("OrderSummary") or {}).get("OriginalOrderId")
        or row.get("OrderSummaryId")
        or "",
        status=row.get("Status") or "",
        kind=_kind(config, row),
        lines=lines,
        currency=code,
        order_number=summary.get("OrderNumber"),
        store_id=location.get(store_field) if store_field else None,
        delivery_method=(row.get("DeliveryMethod") or {}).get("Name"),
        customer=customer,
        ship_to=ship_to,
        created_at=parse_datetime(row.get("CreatedDate")),
        total=(
            _money(row["GrandTotalAmount"], code)
            if row.get("GrandTotalAmount") is not None
            else None
        ),
    )
