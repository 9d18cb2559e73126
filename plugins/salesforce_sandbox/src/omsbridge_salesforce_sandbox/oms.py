"""Order Management behaviour: order rules, activation -> OrderSummary, quantities, Connect actions.

What a Salesforce Order Management org does around the raw sObjects:

* platform rules on Order / OrderItem (pricebook consistency, no products added to an
  activated order, an order needs products to be activated);
* the org's "create order summary on activation" flow for MANAGED orders;
* quantity bookkeeping on OrderItemSummary as fulfillment orders, cancels and returns happen;
* FOStatusChangedEvent on every FulfillmentOrder status change (published on commit);
* the Connect REST actions under ``/commerce/...`` (bodies as in the Connect REST guide).

Connect errors answer ``[{"errorCode", "message", "output"}]`` ("Error with Output"); the
``output`` is the action's output representation with ``success: false`` and ``errors``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from . import ids
from .errors import SalesforceError
from .profiles import FO_STATUS_CATEGORY, OrgProfile
from .records import Dml, format_datetime
from .store import Record, Store

if TYPE_CHECKING:
    from .clock import Clock
    from .streaming import EventBus


class OmsOptions(Protocol):
    """Options the Order Management rules read (they can change at run time)."""

    auto_order_summary: bool
    instantly_fulfilled_delivery_methods: tuple[str, ...]


ZERO = Decimal(0)
CENT = Decimal("0.01")

#: FO status categories in which the lines count as fulfilled.
_CLOSED = "CLOSED"
_CANCELLED = "CANCELLED"

_CHANGE_BALANCE_KEYS = (
    "grandTotalAmount",
    "totalAdjDeliveryAmtWithTax",
    "totalAdjDistAmountWithTax",
    "totalAdjProductAmtWithTax",
    "totalAdjustedDeliveryAmount",
    "totalAdjustedDeliveryTaxAmount",
    "totalAdjustedProductAmount",
    "totalAdjustedProductTaxAmount",
    "totalAdjustmentDistributedAmount",
    "totalAdjustmentDistributedTaxAmount",
    "totalAmount",
    "totalExcessFundsAmount",
    "totalRefundableAmount",
    "totalTaxAmount",
)


def _d(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


class ConnectError(SalesforceError):
    """A Connect action refused: answers the "Error with Output" array."""

    def __init__(
        self, error_code: str, message: str, output: dict[str, Any], status: int = 400
    ) -> None:
        out = dict(output)
        out["success"] = False
        out["errors"] = [{"errorCode": error_code, "message": message}]
        super().__init__(error_code, message, status=status, extra={"output": out})


class _Preview(Exception):
    """Raised to roll a preview's transaction back after computing its result."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("preview")
        self.result = result


class OrderManagement:
    """Order Management rules and Connect actions for one sandbox org."""

    def __init__(
        self,
        dml: Dml,
        store: Store,
        clock: Clock,
        events: EventBus,
        options: OmsOptions,
        profile: OrgProfile,
        user_id: str,
        uuid_bits: Callable[[], int],
    ) -> None:
        self._dml = dml
        self._store = store
        self._clock = clock
        self._events = events
        self._options = options
        self._profile = profile
        self._user_id = user_id
        self._uuid_bits = uuid_bits
        self._gateway = threading.local()  # the gateway fault, armed per request thread
        dml.on_before("Order", self._order_before)
        dml.on_after("Order", self._order_after)
        dml.on_before("OrderItem", self._order_item_before)
        dml.on_after("OrderItem", self._order_item_after)
        dml.on_before("OrderItemTaxLineItem", self._tax_before)
        dml.on_after("OrderItemTaxLineItem", self._tax_after)
        dml.on_before("OrderItemAdjustmentLineItem", self._adjustment_before)
        dml.on_after("OrderItemAdjustmentLineItem", self._adjustment_after)
        dml.on_before("OrderDeliveryGroup", self._delivery_group_before)
        dml.on_before("FulfillmentOrder", self._fo_before)
        dml.on_after("FulfillmentOrder", self._fo_after)
        dml.on_after("OrderSummary", self._summary_after)

    @property
    def dml(self) -> Dml:
        """The org's DML engine."""
        return self._dml

    def _copied(
        self,
        source: str,
        target: str,
        record: Record,
        standard: tuple[str, ...],
        *,
        custom: bool = True,
    ) -> dict[str, Any]:
        """Fields Order Management copies from *record* to a new *target* record: the named
        standard fields and (with *custom*) every custom field with the same API name, each
        only where both objects have it in this org (no CurrencyIsoCode without
        multicurrency, no POS_* fields without the setup package)."""
        schema = self._dml.schema
        source_type, target_type = schema.get(source), schema.get(target)
        assert source_type is not None and target_type is not None
        names = list(standard)
        if custom:
            names += [n for n, f in source_type.fields.items() if f.custom]
        return {
            n: record.get(n)
            for n in names
            if source_type.field(n) is not None and target_type.field(n) is not None
        }

    def _get(self, type_name: str, rec_id: Any) -> Record | None:
        norm = ids.normalize(rec_id)
        return self._store.get(type_name, norm) if norm else None

    # --- platform rules on the order graph ------------------------------------------------

    def _order_before(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        rec["StatusCode"] = rec["Status"]
        if rec.get("RelatedOrderId"):
            return  # change orders are built by the actions below
        activating = rec["Status"] == "Activated" and (old is None or old["Status"] != "Activated")
        deactivating = old is not None and old["Status"] == "Activated" and rec["Status"] == "Draft"
        if deactivating and self._store.where("OrderSummary", OriginalOrderId=rec["Id"]):
            raise SalesforceError(
                "FIELD_INTEGRITY_EXCEPTION",
                "You can't change the status of an order that has an order summary.",
                fields=["Status"],
            )
        if activating:
            if old is None or not self._store.where("OrderItem", OrderId=rec["Id"]):
                raise SalesforceError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "You can't activate this order because it has no order products.",
                    fields=["Status"],
                )
            rec["ActivatedDate"] = format_datetime(self._clock.now())

    def _order_after(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        activated = (
            rec["Status"] == "Activated" and old is not None and old["Status"] != "Activated"
        )
        if (
            activated
            and not rec.get("RelatedOrderId")
            and self._options.auto_order_summary
            and self._profile.activation_flow
        ):
            # Stand-in for the org's record-triggered flow "Order activated -> create summary";
            # it runs inside the same transaction, like a flow in the graph's transaction.
            self._create_summary(rec, "MANAGED", fulfil_take_with=True)

    def _order_item_before(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        order = self._get("Order", rec["OrderId"])
        entry = self._get("PricebookEntry", rec["PricebookEntryId"])
        if order is None or entry is None:
            return
        if old is None and order["Status"] == "Activated" and not order.get("RelatedOrderId"):
            raise SalesforceError(
                "FIELD_INTEGRITY_EXCEPTION",
                "You can't add order products to an activated order.",
                fields=["OrderId"],
            )
        if old is None:
            if order.get("Pricebook2Id") is None:
                raise SalesforceError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "field integrity exception: PricebookEntryId (pricebook entry has no "
                    "pricebook on the order)",
                    fields=["PricebookEntryId"],
                )
            if entry["Pricebook2Id"] != order["Pricebook2Id"]:
                raise SalesforceError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "field integrity exception: PricebookEntryId (pricebook entry is in a "
                    "different pricebook than the one assigned to the order)",
                    fields=["PricebookEntryId"],
                )
            if rec.get("Product2Id") is None:
                rec["Product2Id"] = entry["Product2Id"]
            elif rec["Product2Id"] != entry["Product2Id"]:
                raise SalesforceError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "field integrity exception: PricebookEntryId, Product2Id (pricebook entry "
                    "product does not match the order product)",
                    fields=["Product2Id"],
                )
        group_id = rec.get("OrderDeliveryGroupId")
        if group_id:
            group = self._get("OrderDeliveryGroup", group_id)
            if group is not None and group["OrderId"] != rec["OrderId"]:
                raise SalesforceError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "The order delivery group must belong to the same order as the order product.",
                    fields=["OrderDeliveryGroupId"],
                )
        rec["TypeCode"] = "Charge" if rec.get("Type") == "Delivery Charge" else "Product"
        if rec.get("Type") is None:
            rec["Type"] = "Order Product"
        if rec.get("ListPrice") is None:
            rec["ListPrice"] = entry["UnitPrice"]
        rec["TotalPrice"] = _money(_d(rec["Quantity"]) * _d(rec["UnitPrice"]))
        if rec.get("TotalLineAmount") is None:
            rec["TotalLineAmount"] = rec["TotalPrice"]
        rec.setdefault("TotalTaxAmount", None)
        if rec.get("TotalTaxAmount") is None:
            rec["TotalTaxAmount"] = ZERO
        if rec.get("TotalAdjustmentAmount") is None:
            rec["TotalAdjustmentAmount"] = ZERO

    def _order_item_after(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        self._refresh_order_totals(rec["OrderId"])

    def _delivery_group_before(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        order = self._get("Order", rec["OrderId"])
        if (
            old is None
            and order is not None
            and order["Status"] == "Activated"
            and not order.get("RelatedOrderId")
        ):
            raise SalesforceError(
                "FIELD_INTEGRITY_EXCEPTION",
                "You can't add a delivery group to an activated order.",
                fields=["OrderId"],
            )

    def _tax_before(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        item = self._get("OrderItem", rec["OrderItemId"])
        if item is not None:
            rec["OrderId"] = item["OrderId"]

    def _tax_after(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        self._refresh_item_rollups(rec["OrderItemId"])

    def _adjustment_before(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        item = self._get("OrderItem", rec["OrderItemId"])
        if item is not None:
            rec["OrderId"] = item["OrderId"]
        group = self._get("OrderAdjustmentGroup", rec.get("OrderAdjustmentGroupId"))
        if item is not None and group is not None and group["OrderId"] != item["OrderId"]:
            raise SalesforceError(
                "FIELD_INTEGRITY_EXCEPTION",
                "The adjustment group must belong to the same order as the order product.",
                fields=["OrderAdjustmentGroupId"],
            )

    def _adjustment_after(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        self._refresh_item_rollups(rec["OrderItemId"])
        group_id = rec.get("OrderAdjustmentGroupId")
        if group_id:
            total = sum(
                (
                    _d(a["Amount"])
                    for a in self._store.where(
                        "OrderItemAdjustmentLineItem", OrderAdjustmentGroupId=group_id
                    )
                ),
                ZERO,
            )
            self._store.update("OrderAdjustmentGroup", group_id, {"TotalAmount": total})

    def _refresh_item_rollups(self, item_id: str) -> None:
        store = self._store
        item = store.get("OrderItem", item_id)
        if item is None:
            return
        tax = sum(
            (_d(x["Amount"]) for x in store.where("OrderItemTaxLineItem", OrderItemId=item_id)),
            ZERO,
        )
        adj = sum(
            (
                _d(x["Amount"])
                for x in store.where("OrderItemAdjustmentLineItem", OrderItemId=item_id)
            ),
            ZERO,
        )
        store.update("OrderItem", item_id, {"TotalTaxAmount": tax, "TotalAdjustmentAmount": adj})
        self._refresh_order_totals(item["OrderId"])

    def _refresh_order_totals(self, order_id: str) -> None:
        store = self._store
        if store.get("Order", order_id) is None:
            return
        items = store.where("OrderItem", OrderId=order_id)
        total = sum(
            (_d(i["TotalLineAmount"]) + _d(i["TotalAdjustmentAmount"]) for i in items), ZERO
        )
        tax = sum((_d(i["TotalTaxAmount"]) for i in items), ZERO)
        store.update(
            "Order",
            order_id,
            {
                "TotalAmount": _money(total),
                "TotalTaxAmount": _money(tax),
                "GrandTotalAmount": _money(total + tax),
            },
        )

    # --- FulfillmentOrder status and events -------------------------------------------------

    def _fo_before(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        status = rec["Status"]
        # The org maps each Status value to a category; a value it never defined (the picklist
        # is unrestricted, so Salesforce stores it) leaves the category as it was.
        rec["StatusCategory"] = FO_STATUS_CATEGORY.get(status) or (
            old["StatusCategory"] if old is not None else "DRAFT"
        )
        if rec["StatusCategory"] == _CLOSED and (old is None or old["StatusCategory"] != _CLOSED):
            rec["ClosedDate"] = format_datetime(self._clock.now())

    def _fo_after(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        old_status = old["Status"] if old else None
        if old_status == rec["Status"]:
            return
        if rec["StatusCategory"] == _CLOSED and (old is None or old["StatusCategory"] != _CLOSED):
            for line in self._store.where("FulfillmentOrderLineItem", FulfillmentOrderId=rec["Id"]):
                ois = self._get("OrderItemSummary", line.get("OrderItemSummaryId"))
                if ois is not None:
                    self._bump(ois, QuantityFulfilled=_d(line["Quantity"]))
        payload = {
            "EventUuid": None,
            "FulfillmentOrderId": rec["Id"],
            "OrderSummaryId": rec.get("OrderSummaryId"),
            "OldStatus": old_status,
            "NewStatus": rec["Status"],
            "OldStatusCategory": old["StatusCategory"] if old else None,
            "NewStatusCategory": rec["StatusCategory"],
        }
        self.publish("/event/FOStatusChangedEvent", payload)

    def _summary_after(self, dml: Dml, t: str, rec: Record, old: Record | None) -> None:
        if old is not None and old["Status"] != rec["Status"]:
            self.publish(
                "/event/OrderSumStatusChangedEvent",
                {
                    "OrderId": rec["OriginalOrderId"],
                    "OrderSummaryId": rec["Id"],
                    "OldStatus": old["Status"],
                    "NewStatus": rec["Status"],
                },
            )

    def publish(self, channel: str, payload: dict[str, Any]) -> None:
        """Publish a platform event when the current transaction commits."""
        payload = dict(payload)
        payload["EventUuid"] = str(uuid.UUID(int=self._uuid_bits()))
        payload.setdefault("CreatedDate", format_datetime(self._clock.now()))
        payload.setdefault("CreatedById", self._user_id)
        self._store.after_commit(lambda: self._events.publish(channel, payload))

    # --- OrderSummary creation --------------------------------------------------------------

    def _create_summary(
        self,
        order: Record,
        lifecycle: str,
        *,
        name: str | None = None,
        external_reference: str | None = None,
        business_model: str | None = None,
        fulfil_take_with: bool = False,
    ) -> str:
        store = self._store
        create = self.dml.create
        summary_id = create(
            "OrderSummary",
            {
                "OriginalOrderId": order["Id"],
                "AccountId": order["AccountId"],
                "OrderNumber": name or order["OrderNumber"],
                "Status": "Created",
                "OrderLifeCycleType": lifecycle,
                "SalesChannelId": order.get("SalesChannelId"),
                "OrderedDate": order.get("OrderedDate") or order["CreatedDate"],
                "BillingEmailAddress": order.get("BillingEmailAddress"),
                "BillingPhoneNumber": order.get("BillingPhoneNumber"),
                **{
                    f"Billing{p}": order.get(f"Billing{p}")
                    for p in ("Street", "City", "State", "PostalCode", "Country")
                },
                "Pricebook2Id": order.get("Pricebook2Id"),
                "EffectiveDate": order.get("EffectiveDate"),
                "ExternalReferenceIdentifier": external_reference,
                "BusinessModel": business_model,
                "OwnerId": order.get("OwnerId"),
                **self._copied("Order", "OrderSummary", order, ("CurrencyIsoCode",)),
            },
            system=True,
        )
        group_map: dict[str, str] = {}
        for group in store.where("OrderDeliveryGroup", OrderId=order["Id"]):
            group_map[group["Id"]] = create(
                "OrderDeliveryGroupSummary",
                {
                    "OrderSummaryId": summary_id,
                    "OriginalOrderDeliveryGroupId": group["Id"],
                    "OrderDeliveryMethodId": group["OrderDeliveryMethodId"],
                    "DeliverToName": group["DeliverToName"],
                    **{
                        f"DeliverTo{p}": group.get(f"DeliverTo{p}")
                        for p in ("Street", "City", "State", "PostalCode", "Country")
                    },
                    "EmailAddress": group.get("EmailAddress"),
                    "PhoneNumber": group.get("PhoneNumber"),
                },
                system=True,
            )
        adj_group_map: dict[str, str] = {}
        for group in store.where("OrderAdjustmentGroup", OrderId=order["Id"]):
            adj_group_map[group["Id"]] = create(
                "OrderAdjustmentGroupSummary",
                {
                    "OrderSummaryId": summary_id,
                    "OriginalOrderAdjGroupId": group["Id"],
                    "Name": group["Name"],
                    "Type": group["Type"],
                    "Description": group.get("Description"),
                    "TotalAmount": group.get("TotalAmount"),
                },
                system=True,
            )
        # Only the org's activation flow fulfils take-with lines; the Connect action doesn't.
        instant = (
            set(self._options.instantly_fulfilled_delivery_methods) if fulfil_take_with else set()
        )
        for line_number, item in enumerate(store.where("OrderItem", OrderId=order["Id"]), start=1):
            product = store.get("Product2", item["Product2Id"]) or {}
            quantity = _d(item["Quantity"])
            fulfilled = ZERO
            group = store.get("OrderDeliveryGroup", item.get("OrderDeliveryGroupId") or "")
            if group is not None:
                method = store.get("OrderDeliveryMethod", group["OrderDeliveryMethodId"]) or {}
                if method.get("Name") in instant:
                    fulfilled = quantity  # the org's flow closes take-with sales at once
            ois_id = create(
                "OrderItemSummary",
                {
                    "OrderSummaryId": summary_id,
                    "OriginalOrderItemId": item["Id"],
                    "Product2Id": item["Product2Id"],
                    "StockKeepingUnit": product.get("StockKeepingUnit"),
                    "ProductCode": product.get("ProductCode"),
                    "Name": product.get("Name") or item.get("Description"),
                    "Description": item.get("Description"),
                    "Type": item["Type"],
                    "TypeCode": item["TypeCode"],
                    "LineNumber": line_number,
                    "OrderDeliveryGroupSummaryId": group_map.get(
                        item.get("OrderDeliveryGroupId") or ""
                    ),
                    "QuantityOrdered": quantity,
                    "QuantityCanceled": ZERO,
                    "QuantityAllocated": fulfilled,
                    "QuantityFulfilled": fulfilled,
                    "QuantityReturnInitiated": ZERO,
                    "QuantityReturned": ZERO,
                    "UnitPrice": item["UnitPrice"],
                    "ListPrice": item.get("ListPrice"),
                    "TotalLineAmount": item["TotalLineAmount"],
                    "TotalPrice": item["TotalPrice"],
                    "TotalTaxAmount": item["TotalTaxAmount"],
                    "TotalAdjustmentAmount": item["TotalAdjustmentAmount"],
                    **self._copied("OrderItem", "OrderItemSummary", item, ()),
                },
                system=True,
            )
            self._refresh_ois(ois_id)
            for tax in store.where("OrderItemTaxLineItem", OrderItemId=item["Id"]):
                create(
                    "OrderItemTaxLineItemSummary",
                    {
                        "OrderItemSummaryId": ois_id,
                        "OrderSummaryId": summary_id,
                        "OriginalOrderItemTaxLineItemId": tax["Id"],
                        "Name": tax["Name"],
                        "Type": tax["Type"],
                        "Amount": tax["Amount"],
                        "Rate": tax.get("Rate"),
                        "TaxEffectiveDate": tax["TaxEffectiveDate"],
                    },
                    system=True,
                )
            for adj in store.where("OrderItemAdjustmentLineItem", OrderItemId=item["Id"]):
                create(
                    "OrderItemAdjustmentLineSummary",
                    {
                        "OrderItemSummaryId": ois_id,
                        "OrderSummaryId": summary_id,
                        "OrderAdjustmentGroupSummaryId": adj_group_map.get(
                            adj.get("OrderAdjustmentGroupId") or ""
                        ),
                        "OriginalOrderItemAdjustmentLineItemId": adj["Id"],
                        "Name": adj["Name"],
                        "Amount": adj["Amount"],
                    },
                    system=True,
                )
        self._create_payment_summaries(order, summary_id)
        self._refresh_summary(summary_id)
        self.publish(
            "/event/OrderSummaryCreatedEvent",
            {"OrderId": order["Id"], "OrderSummaryId": summary_id},
        )
        return summary_id

    def _create_payment_summaries(self, order: Record, summary_id: str) -> None:
        store = self._store
        by_method: dict[str, dict[str, Any]] = {}
        for group in store.where("PaymentGroup", SourceObjectId=order["Id"]):
            for kind in ("PaymentAuthorization", "Payment"):
                for pay in store.where(kind, PaymentGroupId=group["Id"]):
                    method_id = pay.get("PaymentMethodId")
                    if not method_id:
                        continue
                    entry = by_method.setdefault(
                        method_id, {"auth": ZERO, "captured": ZERO, "sale": False, "rows": []}
                    )
                    entry["rows"].append((kind, pay["Id"]))
                    if pay["Status"] != "Processed":
                        continue
                    if kind == "PaymentAuthorization":
                        entry["auth"] += _d(pay["Amount"])
                    else:
                        entry["captured"] += _d(pay["Amount"])
                        entry["sale"] = entry["sale"] or pay["Type"] == "Sale"
        for method_id, entry in by_method.items():
            found = store.find(method_id)
            method = found[1] if found else {}
            label = (
                f"{method.get('CardType') or 'Card'} ****{method.get('CardLastFour')}"
                if method.get("CardLastFour")
                else method.get("NickName") or (found[0] if found else "Payment")
            )
            ops_id = self.dml.create(
                "OrderPaymentSummary",
                {
                    "OrderSummaryId": summary_id,
                    "PaymentMethodId": method_id,
                    "Method": label,
                    "FullName": method.get("CardHolderName"),
                    "Type": "Sale" if entry["sale"] else "Authorization",
                    "AuthorizationAmount": entry["auth"] or entry["captured"],
                    "CapturedAmount": entry["captured"],
                    "RefundedAmount": ZERO,
                    "BalanceAmount": entry["captured"],
                },
                system=True,
            )
            for kind, rec_id in entry["rows"]:
                self.dml.update(kind, rec_id, {"OrderPaymentSummaryId": ops_id}, system=True)

    # --- quantity bookkeeping ------------------------------------------------------------

    def _bump(self, ois: Record, **deltas: Decimal) -> None:
        changes = {k: _d(ois.get(k)) + v for k, v in deltas.items()}
        self._store.update("OrderItemSummary", ois["Id"], changes)
        self._refresh_ois(ois["Id"])
        self._refresh_summary(ois["OrderSummaryId"])

    def _refresh_ois(self, ois_id: str) -> None:
        store = self._store
        o = store.get("OrderItemSummary", ois_id)
        assert o is not None
        ordered, canceled = _d(o["QuantityOrdered"]), _d(o["QuantityCanceled"])
        allocated, fulfilled = _d(o["QuantityAllocated"]), _d(o["QuantityFulfilled"])
        returned, initiated = _d(o["QuantityReturned"]), _d(o["QuantityReturnInitiated"])
        net = ordered - canceled
        share = (net - returned) / ordered if ordered else ZERO
        line = _d(o["TotalLineAmount"])
        adjustment = _d(o["TotalAdjustmentAmount"])
        tax = _d(o["TotalTaxAmount"])
        if canceled >= ordered:
            status = "CANCELED"
        elif returned and returned >= net:
            status = "RETURNED"
        elif initiated:
            status = "RETURNINITIATED"
        elif fulfilled >= net:
            status = "FULFILLED"
        elif fulfilled:
            status = "PARTIALLYFULFILLED"
        elif allocated >= net:
            status = "ALLOCATED"
        elif allocated:
            status = "PARTIALLYALLOCATED"
        else:
            status = "ORDERED"
        store.update(
            "OrderItemSummary",
            ois_id,
            {
                "QuantityNetOrdered": net,
                "QuantityAvailableToFulfill": net - allocated,
                "QuantityAvailableToCancel": net - allocated,
                "QuantityAvailableToReturn": fulfilled - returned - initiated,
                "AdjustedLineAmount": _money((line + adjustment) * share),
                "TotalAmtWithTax": _money((line + adjustment + tax) * share),
                "Status": status,
            },
        )

    def _line_amounts(self, o: Record) -> tuple[Decimal, Decimal]:
        ordered = _d(o["QuantityOrdered"])
        share = (
            (ordered - _d(o["QuantityCanceled"]) - _d(o["QuantityReturned"])) / ordered
            if ordered
            else ZERO
        )
        amount = _money((_d(o["TotalLineAmount"]) + _d(o["TotalAdjustmentAmount"])) * share)
        return amount, _money(_d(o["TotalTaxAmount"]) * share)

    def _refresh_summary(self, summary_id: str) -> None:
        store = self._store
        product = delivery = product_tax = delivery_tax = distributed = ZERO
        for o in store.where("OrderItemSummary", OrderSummaryId=summary_id):
            amount, tax = self._line_amounts(o)
            if o["TypeCode"] == "Charge":
                delivery += amount
                delivery_tax += tax
            else:
                product += amount
                product_tax += tax
                distributed += _d(o["TotalAdjustmentAmount"])
        store.update(
            "OrderSummary",
            summary_id,
            {
                "TotalAdjustedProductAmount": product,
                "TotalAdjustedDeliveryAmount": delivery,
                "TotalAdjustedProductTaxAmount": product_tax,
                "TotalAdjustedDeliveryTaxAmount": delivery_tax,
                "TotalProductAmount": product,
                "TotalDeliveryAmount": delivery,
                "TotalTaxAmount": product_tax + delivery_tax,
                "TotalAdjDistAmount": distributed,
                "GrandTotalAmount": product + delivery + product_tax + delivery_tax,
            },
        )

    def _summary_snapshot(self, summary_id: str) -> dict[str, Decimal]:
        s = self._store.get("OrderSummary", summary_id)
        assert s is not None
        keys = (
            "GrandTotalAmount",
            "TotalAdjustedProductAmount",
            "TotalAdjustedDeliveryAmount",
            "TotalAdjustedProductTaxAmount",
            "TotalAdjustedDeliveryTaxAmount",
            "TotalTaxAmount",
            "TotalAdjDistAmount",
        )
        return {k: _d(s[k]) for k in keys}

    def _funds(self, summary_id: str) -> tuple[Decimal, Decimal]:
        """(excess funds, refundable amount) of a summary."""
        store = self._store
        captured = sum(
            (
                _d(p["CapturedAmount"]) - _d(p["RefundedAmount"])
                for p in store.where("OrderPaymentSummary", OrderSummaryId=summary_id)
            ),
            ZERO,
        )
        summary = store.get("OrderSummary", summary_id)
        assert summary is not None
        credited = sum(
            (_d(c["Balance"]) for c in store.where("CreditMemo", ReferenceEntityId=summary_id)),
            ZERO,
        )
        uncredited_returns = sum(
            (
                -_d(o["GrandTotalAmount"])
                for o in store.where("Order", RelatedOrderId=summary["OriginalOrderId"])
                if o.get("_ChangeKind") == "return" and not o.get("_CreditMemoId")
            ),
            ZERO,
        )
        net_total = _d(summary["GrandTotalAmount"])
        # Returned goods are still inside "captured - net_total"; report them as refundable
        # change orders rather than as excess funds.
        excess = max(captured - net_total - uncredited_returns - credited, ZERO)
        return _money(excess), _money(excess + uncredited_returns + credited)

    def _balances(self, summary_id: str, before: dict[str, Decimal]) -> dict[str, float]:
        after = self._summary_snapshot(summary_id)

        def _delta(key: str) -> Decimal:
            return before[key] - after[key]

        product, delivery = (
            _delta("TotalAdjustedProductAmount"),
            _delta("TotalAdjustedDeliveryAmount"),
        )
        product_tax = _delta("TotalAdjustedProductTaxAmount")
        delivery_tax = _delta("TotalAdjustedDeliveryTaxAmount")
        excess, refundable = self._funds(summary_id)
        values = {
            "grandTotalAmount": _delta("GrandTotalAmount"),
            "totalAdjDeliveryAmtWithTax": delivery + delivery_tax,
            "totalAdjDistAmountWithTax": ZERO,
            "totalAdjProductAmtWithTax": product + product_tax,
            "totalAdjustedDeliveryAmount": delivery,
            "totalAdjustedDeliveryTaxAmount": delivery_tax,
            "totalAdjustedProductAmount": product,
            "totalAdjustedProductTaxAmount": product_tax,
            "totalAdjustmentDistributedAmount": _delta("TotalAdjDistAmount"),
            "totalAdjustmentDistributedTaxAmount": ZERO,
            "totalAmount": product + delivery,
            "totalExcessFundsAmount": excess,
            "totalRefundableAmount": refundable,
            "totalTaxAmount": _delta("TotalTaxAmount"),
        }
        return {k: float(_money(values[k])) for k in _CHANGE_BALANCE_KEYS}

    # --- Connect: order summaries -----------------------------------------------------------

    def _summary_or_error(
        self, summary_id: str, output: dict[str, Any], *, managed: bool = True
    ) -> Record:
        summary = self._get("OrderSummary", summary_id)
        if summary is None:
            raise ConnectError("NOT_FOUND", "The requested resource does not exist", output, 404)
        if managed and summary["OrderLifeCycleType"] != "MANAGED":
            raise ConnectError(
                "INVALID_API_INPUT",
                "This action can run only on an order summary whose OrderLifeCycleType is MANAGED.",
                output,
            )
        return summary

    def create_order_summary(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /commerce/order-management/order-summaries."""
        output: dict[str, Any] = {"orderSummaryId": None}
        order = self._get("Order", _require(body, "orderId", output))
        if order is None:
            raise ConnectError("INVALID_API_INPUT", "Invalid orderId.", output)
        if order["Status"] != "Activated":
            raise ConnectError(
                "INVALID_API_INPUT",
                "The order must be activated before you can create an order summary.",
                output,
            )
        lifecycle = body.get("orderLifeCycleType") or "MANAGED"
        if lifecycle not in ("MANAGED", "UNMANAGED"):
            raise ConnectError(
                "INVALID_API_INPUT", f"Invalid orderLifeCycleType: {lifecycle}", output
            )
        if self._store.where("OrderSummary", OriginalOrderId=order["Id"]):
            raise ConnectError(
                "INVALID_API_INPUT", "An order summary already exists for this order.", output
            )
        ext = body.get("externalReferenceIdentifier")
        if ext and self._store.where("OrderSummary", ExternalReferenceIdentifier=ext):
            raise ConnectError(
                "DUPLICATE_VALUE",
                "An order summary with this externalReferenceIdentifier already exists.",
                output,
            )
        with self._store.transaction():
            summary_id = self._create_summary(
                order,
                lifecycle,
                name=body.get("name"),
                external_reference=ext,
                business_model=body.get("businessModel"),
            )
        return {"orderSummaryId": summary_id, "success": True, "errors": []}

    def change(
        self, summary_id: str, body: dict[str, Any], *, kind: str, preview: bool
    ) -> dict[str, Any]:
        """preview-/submit-cancel and preview-/submit-return."""
        output: dict[str, Any] = {"changeBalances": None}
        output["orderSummaryId" if preview else "changeOrderId"] = summary_id if preview else None
        summary = self._summary_or_error(summary_id, output)
        items = body.get("changeItems") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise ConnectError("INVALID_API_INPUT", "Missing required input: changeItems", output)
        try:
            with self._store.transaction():
                before = self._summary_snapshot(summary["Id"])
                change_order_id = self._apply_change(summary, items, kind, output)
                result: dict[str, Any] = {"changeBalances": self._balances(summary["Id"], before)}
                if preview:
                    raise _Preview(result)
        except _Preview as p:
            p.result.update({"orderSummaryId": summary["Id"], "success": True, "errors": []})
            return p.result
        result.update({"changeOrderId": change_order_id, "success": True, "errors": []})
        return result

    def _apply_change(
        self,
        summary: Record,
        items: list[Any],
        kind: str,
        output: dict[str, Any],
        *,
        check_reason: bool = True,
    ) -> str:
        store = self._store
        seen: dict[str, Decimal] = {}
        plan: list[tuple[Record, Decimal, bool, dict[str, Any]]] = []
        reasons = self._profile.change_reasons
        for raw in items:
            if not isinstance(raw, dict):
                raise ConnectError(
                    "INVALID_API_INPUT", "Each change item must be an object.", output
                )
            for key in ("orderItemSummaryId", "quantity", "reason", "shippingReductionFlag"):
                if raw.get(key) is None:
                    raise ConnectError(
                        "INVALID_API_INPUT", f"Missing required input: changeItems.{key}", output
                    )
            ois = self._get("OrderItemSummary", raw["orderItemSummaryId"])
            if ois is None or ois["OrderSummaryId"] != summary["Id"]:
                raise ConnectError(
                    "INVALID_API_INPUT",
                    f"The OrderItemSummary {raw['orderItemSummaryId']} doesn't belong to this "
                    "order summary.",
                    output,
                )
            if ois["TypeCode"] == "Charge":
                raise ConnectError(
                    "INVALID_API_INPUT",
                    "You can't cancel or return a delivery charge directly; use "
                    "shippingReductionFlag.",
                    output,
                )
            try:
                quantity = _d(raw["quantity"])
            except ArithmeticError:
                raise ConnectError(
                    "INVALID_API_INPUT", "quantity must be a number.", output
                ) from None
            if quantity <= 0:
                raise ConnectError("INVALID_API_INPUT", "quantity must be greater than 0.", output)
            seen[ois["Id"]] = seen.get(ois["Id"], ZERO) + quantity
            field = "QuantityAvailableToCancel" if kind == "cancel" else "QuantityAvailableToReturn"
            available = _d(ois[field])
            if seen[ois["Id"]] > available:
                verb = "cancel" if kind == "cancel" else "return"
                raise ConnectError(
                    "INVALID_API_INPUT",
                    f"The quantity to {verb} ({seen[ois['Id']]:g}) is more than the quantity "
                    f"available to {verb} ({available:g}) for OrderItemSummary {ois['Id']}.",
                    output,
                )
            if check_reason and raw["reason"] not in reasons:
                # Connect guide: "The value must match one of the picklist values on the
                # Reason field of the OrderItemSummaryChange object".
                raise ConnectError(
                    "INVALID_API_INPUT",
                    f"The reason {raw['reason']!r} isn't a value of the Reason picklist of "
                    "OrderItemSummaryChange.",
                    output,
                )
            plan.append((ois, quantity, bool(raw["shippingReductionFlag"]), raw))
        original = store.get("Order", summary["OriginalOrderId"])
        assert original is not None
        change_id = self.dml.create(
            "Order",
            {
                "AccountId": original["AccountId"],
                "EffectiveDate": self._clock.now().date().isoformat(),
                "Status": "Draft",
                "Pricebook2Id": original.get("Pricebook2Id"),
                "RelatedOrderId": original["Id"],
                "OriginalOrderId": original["Id"],
                "IsReductionOrder": True,
                "SalesChannelId": original.get("SalesChannelId"),
                **self._copied("Order", "Order", original, ("CurrencyIsoCode",), custom=False),
            },
            system=True,
        )
        store.update("Order", change_id, {"_ChangeKind": kind})
        groups_touched: set[str] = set()
        for ois, quantity, reduce_shipping, raw in plan:
            line_id = self._change_line(change_id, ois, quantity)
            self.dml.create(
                "OrderItemSummaryChange",
                {
                    "OrderSummaryId": summary["Id"],
                    "OrderItemSummaryId": ois["Id"],
                    "ChangeOrderItemId": line_id,
                    "ChangeType": "Cancel" if kind == "cancel" else "Return",
                    "Reason": raw["reason"],
                    "ReasonText": raw.get("reasonForChangeText"),
                    "IsPreFulfillment": _d(ois["QuantityFulfilled"]) == 0,
                },
                system=True,
            )
            delta = "QuantityCanceled" if kind == "cancel" else "QuantityReturned"
            self._bump(ois, **{delta: quantity})
            if reduce_shipping and ois.get("OrderDeliveryGroupSummaryId"):
                groups_touched.add(ois["OrderDeliveryGroupSummaryId"])
        for group_id in groups_touched:
            lines = store.where("OrderItemSummary", OrderDeliveryGroupSummaryId=group_id)
            if all(
                _d(o["QuantityNetOrdered"]) - _d(o["QuantityReturned"]) <= 0
                for o in lines
                if o["TypeCode"] == "Product"
            ):
                for charge in (o for o in lines if o["TypeCode"] == "Charge"):
                    remaining = _d(charge["QuantityNetOrdered"]) - _d(charge["QuantityReturned"])
                    if remaining > 0:
                        self._change_line(change_id, charge, remaining)
                        delta = "QuantityCanceled" if kind == "cancel" else "QuantityReturned"
                        self._bump(charge, **{delta: remaining})
        self.dml.update("Order", change_id, {"Status": "Activated"}, system=True)
        return change_id

    def _change_line(self, change_id: str, ois: Record, quantity: Decimal) -> str:
        store = self._store
        item = store.get("OrderItem", ois["OriginalOrderItemId"])
        assert item is not None
        ordered = _d(ois["QuantityOrdered"])
        share = quantity / ordered
        line_id = self.dml.create(
            "OrderItem",
            {
                "OrderId": change_id,
                "PricebookEntryId": item["PricebookEntryId"],
                "Product2Id": item["Product2Id"],
                "Quantity": -quantity,
                "UnitPrice": item["UnitPrice"],
                "Type": item["Type"],
                "TotalLineAmount": _money(-_d(item["TotalLineAmount"]) * share),
                "OrderDeliveryGroupId": None,
            },
            system=True,
        )
        store.update(
            "OrderItem",
            line_id,
            {
                "OriginalOrderItemId": item["Id"],
                "TotalTaxAmount": _money(-_d(item["TotalTaxAmount"]) * share),
                "TotalAdjustmentAmount": _money(-_d(item["TotalAdjustmentAmount"]) * share),
            },
        )
        self._refresh_order_totals(change_id)
        return line_id

    def create_credit_memo(self, summary_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST .../order-summaries/{id}/actions/create-credit-memo."""
        output: dict[str, Any] = {"creditMemoId": None}
        summary = self._summary_or_error(summary_id, output)
        change_ids = body.get("changeOrderIds") if isinstance(body, dict) else None
        if not isinstance(change_ids, list) or not change_ids:
            raise ConnectError(
                "INVALID_API_INPUT", "Missing required input: changeOrderIds", output
            )
        total = tax = ZERO
        orders = []
        for raw in change_ids:
            order = self._get("Order", raw)
            if order is None or order.get("RelatedOrderId") != summary["OriginalOrderId"]:
                raise ConnectError(
                    "INVALID_API_INPUT",
                    f"{raw} isn't a change order of this order summary.",
                    output,
                )
            if order.get("_CreditMemoId"):
                raise ConnectError(
                    "INVALID_API_INPUT",
                    f"The change order {raw} already has a credit memo.",
                    output,
                )
            orders.append(order)
            total += -_d(order["TotalAmount"])
            tax += -_d(order["TotalTaxAmount"])
        with self._store.transaction():
            memo_id = self.dml.create(
                "CreditMemo",
                {
                    "ReferenceEntityId": summary["Id"],
                    "BillingAccountId": summary["AccountId"],
                    "Status": "Posted",
                    "TotalAmount": _money(total),
                    "TotalTaxAmount": _money(tax),
                    "TotalAmountWithTax": _money(total + tax),
                    "Balance": _money(total + tax),
                    "CreditDate": self._clock.now().date().isoformat(),
                },
                system=True,
            )
            for order in orders:
                self._store.update("Order", order["Id"], {"_CreditMemoId": memo_id})
        return {"creditMemoId": memo_id, "success": True, "errors": []}

    def ensure_refunds(self, summary_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST .../async-actions/ensure-refunds-async (refunds are processed at once)."""
        output: dict[str, Any] = {"backgroundOperationId": None}
        summary = self._summary_or_error(summary_id, output)
        if not isinstance(body, dict) or (
            body.get("creditMemoId") is None and body.get("excessFundsAmount") is None
        ):
            raise ConnectError(
                "INVALID_API_INPUT",
                "Provide a creditMemoId, an excessFundsAmount, or both.",
                output,
            )
        memo = None
        amount = ZERO
        if body.get("creditMemoId") is not None:
            memo = self._get("CreditMemo", body["creditMemoId"])
            if memo is None or memo["ReferenceEntityId"] != summary["Id"]:
                raise ConnectError(
                    "INVALID_API_INPUT",
                    "The credit memo doesn't belong to this order summary.",
                    output,
                )
            if _d(memo["Balance"]) <= 0:
                raise ConnectError(
                    "INVALID_API_INPUT", "The credit memo has already been refunded.", output
                )
            amount += _d(memo["Balance"])
        if body.get("excessFundsAmount") is not None:
            excess_requested = _d(body["excessFundsAmount"])
            excess, _ = self._funds(summary["Id"])
            if excess_requested <= 0 or excess_requested > excess:
                raise ConnectError(
                    "INVALID_API_INPUT",
                    f"excessFundsAmount ({excess_requested:f}) is more than the excess funds "
                    f"available ({excess:f}).",
                    output,
                )
            amount += excess_requested
        if getattr(self._gateway, "failing", False):
            return self._gateway_failed(
                summary["Id"], memo["Id"] if memo is not None else summary["Id"], "EnsureRefunds"
            )
        payments = self._store.where("OrderPaymentSummary", OrderSummaryId=summary["Id"])
        refundable = sum(
            (_d(p["CapturedAmount"]) - _d(p["RefundedAmount"]) for p in payments), ZERO
        )
        if amount > refundable:
            raise ConnectError(
                "INVALID_API_INPUT",
                f"The refund amount ({amount:f}) is more than the captured "
                f"amount available to refund ({refundable:f}).",
                output,
            )
        with self._store.transaction():
            remaining = amount
            for ops in payments:
                available = _d(ops["CapturedAmount"]) - _d(ops["RefundedAmount"])
                portion = min(available, remaining)
                if portion <= 0:
                    continue
                self.dml.create(
                    "Refund",
                    {
                        "Amount": portion,
                        "ProcessingMode": "External",
                        "Status": "Processed",
                        "Type": "Referenced",
                        "AccountId": summary["AccountId"],
                        "PaymentMethodId": ops["PaymentMethodId"],
                        "OrderPaymentSummaryId": ops["Id"],
                        "Date": format_datetime(self._clock.now()),
                    },
                    system=True,
                )
                self._store.update(
                    "OrderPaymentSummary",
                    ops["Id"],
                    {
                        "RefundedAmount": _d(ops["RefundedAmount"]) + portion,
                        "BalanceAmount": _d(ops["BalanceAmount"]) - portion,
                    },
                )
                remaining -= portion
            if memo is not None:
                self._store.update("CreditMemo", memo["Id"], {"Balance": ZERO})
            operation_id = self._background_operation("EnsureRefunds")
        return {"backgroundOperationId": operation_id, "success": True, "errors": []}

    def ensure_funds(self, summary_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST .../async-actions/ensure-funds-async (captures at once)."""
        output: dict[str, Any] = {"backgroundOperationId": None}
        summary = self._summary_or_error(summary_id, output)
        invoice = self._get("Invoice", _require(body, "invoiceId", output))
        if invoice is None or invoice["ReferenceEntityId"] not in (
            summary["Id"],
            *[f["Id"] for f in self._store.where("FulfillmentOrder", OrderSummaryId=summary["Id"])],
        ):
            raise ConnectError(
                "INVALID_API_INPUT", "The invoice doesn't belong to this order summary.", output
            )
        if getattr(self._gateway, "failing", False):
            return self._gateway_failed(summary["Id"], invoice["Id"], "EnsureFunds")
        with self._store.transaction():
            self._store.update("Invoice", invoice["Id"], {"Balance": ZERO})
            operation_id = self._background_operation("EnsureFunds")
        return {"backgroundOperationId": operation_id, "success": True, "errors": []}

    def arm_gateway_failure(self, armed: bool) -> None:
        """Make this thread's ensure-refunds/ensure-funds fail at the gateway (a fault)."""
        self._gateway.failing = armed

    def _gateway_failed(self, summary_id: str, attached_to: str, what: str) -> dict[str, Any]:
        """The answer of an action whose payment fails later: success now, no money moved,
        and a ProcessExceptionEvent when the background operation runs."""
        with self._store.transaction():
            operation_id = self._background_operation(what)
            self.publish(
                "/event/ProcessExceptionEvent",
                {
                    "AttachedToId": attached_to,
                    "BackgroundOperationId": operation_id,
                    "OrderSummaryId": summary_id,
                    "ExceptionType": "Payment",
                    "Severity": "High",
                    "Message": "The payment gateway declined the request.",
                    "Description": f"{what}: the gateway answered DECLINED (sandbox fault)",
                },
            )
        return {"backgroundOperationId": operation_id, "success": True, "errors": []}

    def _background_operation(self, name: str) -> str:
        return self.dml.create(
            "BackgroundOperation",
            {
                "Name": name,
                "Status": "Complete",
                "FinishedAt": format_datetime(self._clock.now()),
            },
            system=True,
        )

    # --- Connect: fulfillment --------------------------------------------------------------

    def create_fulfillment_orders(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /commerce/fulfillment/fulfillment-orders."""
        output: dict[str, Any] = {"fulfillmentOrderIds": None}
        summary = self._summary_or_error(_require(body, "orderSummaryId", output), output)
        group = self._get(
            "OrderDeliveryGroupSummary", _require(body, "orderDeliveryGroupSummaryId", output)
        )
        if group is None or group["OrderSummaryId"] != summary["Id"]:
            raise ConnectError(
                "INVALID_API_INPUT",
                "The order delivery group summary doesn't belong to the order summary.",
                output,
            )
        groups = body.get("fulfillmentGroups")
        if not isinstance(groups, list) or not groups:
            raise ConnectError(
                "INVALID_API_INPUT", "Missing required input: fulfillmentGroups", output
            )
        created: list[str] = []
        with self._store.transaction():
            for fg in groups:
                created.append(self._create_fo(summary, group, fg, output))
        return {"fulfillmentOrderIds": created, "success": True, "errors": []}

    def _create_fo(self, summary: Record, group: Record, fg: Any, output: dict[str, Any]) -> str:
        if not isinstance(fg, dict):
            raise ConnectError(
                "INVALID_API_INPUT", "Each fulfillment group must be an object.", output
            )
        location = self._get("Location", fg.get("fulfilledFromLocationId"))
        if location is None:
            raise ConnectError(
                "INVALID_API_INPUT",
                f"Invalid fulfilledFromLocationId: {fg.get('fulfilledFromLocationId')}",
                output,
            )
        lines = fg.get("orderItemSummaries")
        if not isinstance(lines, list) or not lines:
            raise ConnectError(
                "INVALID_API_INPUT",
                "Missing required input: fulfillmentGroups.orderItemSummaries",
                output,
            )
        kind = fg.get("fulfillmentType") or "Warehouse"
        fo_id = self.dml.create(
            "FulfillmentOrder",
            {
                "OrderSummaryId": summary["Id"],
                "AccountId": summary["AccountId"],
                "OrderId": summary["OriginalOrderId"],
                "FulfilledFromLocationId": location["Id"],
                "DeliveryMethodId": group["OrderDeliveryMethodId"],
                "Status": "Allocated",
                "Type": kind,
                "FulfilledToName": group["DeliverToName"],
                **{
                    f"FulfilledTo{p}": group.get(f"DeliverTo{p}")
                    for p in ("Street", "City", "State", "PostalCode", "Country")
                },
                "FulfilledToEmailAddress": group.get("EmailAddress"),
                "FulfilledToPhone": group.get("PhoneNumber"),
                **self._copied(
                    "OrderSummary", "FulfillmentOrder", summary, ("CurrencyIsoCode",), custom=False
                ),
            },
            system=True,
        )
        product_total = delivery_total = tax_total = ZERO
        for line in lines:
            ois = self._get("OrderItemSummary", (line or {}).get("orderItemSummaryId"))
            if ois is None or ois.get("OrderDeliveryGroupSummaryId") != group["Id"]:
                raise ConnectError(
                    "INVALID_API_INPUT",
                    f"The OrderItemSummary {(line or {}).get('orderItemSummaryId')}"
                    " doesn't belong to the order delivery group summary.",
                    output,
                )
            quantity = _d(line.get("quantity"))
            available = _d(ois["QuantityAvailableToFulfill"])
            if quantity <= 0 or quantity > available:
                raise ConnectError(
                    "INVALID_API_INPUT",
                    f"The quantity ({quantity:g}) is more than the quantity available to fulfill "
                    f"({available:g}) for OrderItemSummary {ois['Id']}.",
                    output,
                )
            share = quantity / _d(ois["QuantityOrdered"])
            amount = _money(_d(ois["TotalLineAmount"]) * share)
            self.dml.create(
                "FulfillmentOrderLineItem",
                {
                    "FulfillmentOrderId": fo_id,
                    "OrderItemSummaryId": ois["Id"],
                    "OrderItemId": ois["OriginalOrderItemId"],
                    "Product2Id": ois["Product2Id"],
                    "Quantity": quantity,
                    "OriginalQuantity": quantity,
                    "Type": ois["Type"],
                    "TypeCode": ois["TypeCode"],
                    "UnitPrice": ois["UnitPrice"],
                    "TotalLineAmount": amount,
                    "Description": ois.get("Name"),
                },
                system=True,
            )
            if ois["TypeCode"] == "Charge":
                delivery_total += amount
            else:
                product_total += amount
            tax_total += _money(_d(ois["TotalTaxAmount"]) * share)
            self._bump(ois, QuantityAllocated=quantity)
        self._store.update(
            "FulfillmentOrder",
            fo_id,
            {
                "TotalProductAmount": product_total,
                "TotalDeliveryAmount": delivery_total,
                "TotalTaxAmount": tax_total,
                "GrandTotalAmount": product_total + delivery_total + tax_total,
            },
        )
        return fo_id

    def cancel_fo_items(self, fo_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /commerce/fulfillment/fulfillment-orders/{id}/actions/cancel-item."""
        output: dict[str, Any] = {}
        fo = self._get("FulfillmentOrder", fo_id)
        if fo is None:
            raise ConnectError("NOT_FOUND", "The requested resource does not exist", output, 404)
        if fo["StatusCategory"] in (_CLOSED, _CANCELLED):
            raise ConnectError(
                "INVALID_API_INPUT",
                f"You can't cancel items on a fulfillment order with status {fo['Status']}.",
                output,
            )
        lines = body.get("fulfillmentOrderLineItemsToCancel") if isinstance(body, dict) else None
        if not isinstance(lines, list) or not lines:
            raise ConnectError(
                "INVALID_API_INPUT",
                "Missing required input: fulfillmentOrderLineItemsToCancel",
                output,
            )
        with self._store.transaction():
            for raw in lines:
                line = self._get(
                    "FulfillmentOrderLineItem", (raw or {}).get("fulfillmentOrderLineItemId")
                )
                if line is None or line["FulfillmentOrderId"] != fo["Id"]:
                    raise ConnectError(
                        "INVALID_API_INPUT",
                        "The fulfillment order line item doesn't belong to this fulfillment order.",
                        output,
                    )
                quantity = _d((raw or {}).get("quantity"))
                if quantity <= 0 or quantity > _d(line["Quantity"]):
                    raise ConnectError(
                        "INVALID_API_INPUT",
                        f"The quantity to cancel ({quantity:g}) is more than the quantity on "
                        f"the fulfillment order line item ({_d(line['Quantity']):g}).",
                        output,
                    )
                self._store.update(
                    "FulfillmentOrderLineItem",
                    line["Id"],
                    {
                        # Quantity = OriginalQuantity minus what was cancelled (reference).
                        "Quantity": _d(line["Quantity"]) - quantity,
                    },
                )
                ois = self._get("OrderItemSummary", line.get("OrderItemSummaryId"))
                if ois is not None:
                    self._bump(ois, QuantityAllocated=-quantity)
            if all(
                _d(x["Quantity"]) <= 0
                for x in self._store.where("FulfillmentOrderLineItem", FulfillmentOrderId=fo["Id"])
            ):
                self.dml.update("FulfillmentOrder", fo["Id"], {"Status": "Cancelled"}, system=True)
        return {"success": True, "errors": []}

    def create_invoice(self, fo_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /commerce/fulfillment/fulfillment-orders/{id}/actions/create-invoice."""
        output: dict[str, Any] = {"invoiceId": None}
        fo = self._get("FulfillmentOrder", fo_id)
        if fo is None:
            raise ConnectError("NOT_FOUND", "The requested resource does not exist", output, 404)
        if self._store.where("Invoice", ReferenceEntityId=fo["Id"]):
            raise ConnectError(
                "INVALID_API_INPUT", "This fulfillment order already has an invoice.", output
            )
        with self._store.transaction():
            total = _d(fo["TotalProductAmount"]) + _d(fo["TotalDeliveryAmount"])
            invoice_id = self.dml.create(
                "Invoice",
                {
                    "ReferenceEntityId": fo["Id"],
                    "BillingAccountId": fo.get("AccountId"),
                    "Status": "Posted",
                    "TotalAmount": total,
                    "TotalTaxAmount": fo["TotalTaxAmount"],
                    "TotalAmountWithTax": _d(fo["GrandTotalAmount"]),
                    "Balance": _d(fo["GrandTotalAmount"]),
                    "InvoiceDate": self._clock.now().date().isoformat(),
                },
                system=True,
            )
        return {"invoiceId": invoice_id, "success": True, "errors": []}

    # --- Connect: return orders -------------------------------------------------------------

    def create_return_order(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /commerce/returns/return-orders."""
        output: dict[str, Any] = {"returnOrderId": None}
        summary = self._summary_or_error(_require(body, "orderSummaryId", output), output)
        lifecycle = _require(body, "returnOrderLifeCycleType", output)
        if lifecycle not in ("Managed", "Unmanaged"):
            raise ConnectError(
                "INVALID_API_INPUT", f"Invalid returnOrderLifeCycleType: {lifecycle}", output
            )
        lines = body.get("returnOrderLineItems")
        if not isinstance(lines, list) or not lines:
            raise ConnectError(
                "INVALID_API_INPUT", "Missing required input: returnOrderLineItems", output
            )
        with self._store.transaction():
            return_id = self.dml.create(
                "ReturnOrder",
                {
                    "OrderSummaryId": summary["Id"],
                    "AccountId": summary["AccountId"],
                    "OrderId": summary["OriginalOrderId"],
                    "Status": body.get("status") or "Submitted",
                    "LifeCycleType": lifecycle.upper(),
                    "SourceLocationId": body.get("sourceLocationId"),
                    "DestinationLocationId": body.get("destinationLocationId"),
                },
                system=True,
            )
            seen: dict[str, Decimal] = {}
            for raw in lines:
                raw = raw or {}
                ois = self._get("OrderItemSummary", raw.get("orderItemSummaryId"))
                if ois is None or ois["OrderSummaryId"] != summary["Id"]:
                    raise ConnectError(
                        "INVALID_API_INPUT",
                        "The OrderItemSummary doesn't belong to the order summary.",
                        output,
                    )
                expected = _d(raw.get("quantityExpected"))
                if expected <= 0:
                    raise ConnectError(
                        "INVALID_API_INPUT", "quantityExpected must be greater than 0.", output
                    )
                if lifecycle == "Managed":
                    seen[ois["Id"]] = seen.get(ois["Id"], ZERO) + expected
                    available = _d(ois["QuantityAvailableToReturn"])
                    if seen[ois["Id"]] > available:
                        raise ConnectError(
                            "INVALID_API_INPUT",
                            f"The quantity expected ({seen[ois['Id']]:g}) is more than the "
                            f"quantity available to return ({available:g}) for "
                            f"OrderItemSummary {ois['Id']}.",
                            output,
                        )
                line_id = self.dml.create(
                    "ReturnOrderLineItem",
                    {
                        "ReturnOrderId": return_id,
                        "OrderItemSummaryId": ois["Id"],
                        "OrderItemId": ois["OriginalOrderItemId"],
                        "Product2Id": ois["Product2Id"],
                        "QuantityExpected": expected,
                        "QuantityReceived": _d(raw.get("quantityReceived")),
                        "ReasonForReturn": raw.get("reasonForReturn"),
                    },
                    system=True,
                )
                # Not a field of ReturnOrderLineItem: the action's input, kept for return-items.
                self._store.update(
                    "ReturnOrderLineItem",
                    line_id,
                    {"_CanReduceShipping": bool(raw.get("canReduceShipping"))},
                )
                if lifecycle == "Managed":
                    self._bump(ois, QuantityReturnInitiated=expected)
        return {"returnOrderId": return_id, "success": True, "errors": []}

    def return_items(self, return_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /commerce/returns/return-orders/{id}/actions/return-items."""
        output: dict[str, Any] = {"changeOrderId": None, "returnLineItemSplits": []}
        ro = self._get("ReturnOrder", return_id)
        if ro is None:
            raise ConnectError("NOT_FOUND", "The requested resource does not exist", output, 404)
        if ro["LifeCycleType"] != "MANAGED":
            raise ConnectError(
                "INVALID_API_INPUT", "Only Managed return orders can be processed.", output
            )
        items = body.get("returnOrderItems") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise ConnectError(
                "INVALID_API_INPUT", "Missing required input: returnOrderItems", output
            )
        summary = self._get("OrderSummary", ro["OrderSummaryId"])
        assert summary is not None
        splits: list[dict[str, Any]] = []
        with self._store.transaction():
            change_items = []
            for raw in items:
                raw = raw or {}
                line = self._get("ReturnOrderLineItem", raw.get("returnOrderLineItemId"))
                if line is None or line["ReturnOrderId"] != ro["Id"]:
                    raise ConnectError(
                        "INVALID_API_INPUT",
                        "The return order line item doesn't belong to this return order.",
                        output,
                    )
                if line.get("_IsProcessed"):
                    raise ConnectError(
                        "INVALID_API_INPUT",
                        f"The return order line item {line['Id']} was already processed.",
                        output,
                    )
                returned = _d(raw.get("quantityReturned"))
                to_cancel = _d(raw.get("quantityToCancel"))
                rejected = _d(raw.get("quantityRejected"))
                expected = _d(line["QuantityExpected"])
                if returned < 0 or to_cancel < 0 or returned + to_cancel + rejected > expected:
                    raise ConnectError(
                        "INVALID_API_INPUT",
                        f"The quantities returned, rejected and canceled are more than the "
                        f"quantity expected ({expected:g}).",
                        output,
                    )
                ois = self._get("OrderItemSummary", line["OrderItemSummaryId"])
                assert ois is not None
                handled = returned + to_cancel + rejected
                self._store.update(
                    "ReturnOrderLineItem",
                    line["Id"],
                    {
                        "QuantityReturned": returned,
                        "_QuantityToCancel": to_cancel,
                        "QuantityRejected": rejected,
                        "QuantityReceived": _d(raw.get("quantityReceived") or returned),
                        "ReasonForRejection": raw.get("reasonForRejection"),
                        "_IsProcessed": True,
                        "QuantityExpected": handled,
                    },
                )
                self._bump(ois, QuantityReturnInitiated=-handled)
                if returned > 0:
                    change_items.append(
                        {
                            "orderItemSummaryId": ois["Id"],
                            "quantity": returned,
                            "reason": line.get("ReasonForReturn") or "Other",
                            "shippingReductionFlag": bool(line.get("_CanReduceShipping")),
                        }
                    )
                leftover = expected - handled
                if leftover > 0:
                    split_id = self.dml.create(
                        "ReturnOrderLineItem",
                        {
                            "ReturnOrderId": ro["Id"],
                            "OrderItemSummaryId": ois["Id"],
                            "OrderItemId": line.get("OrderItemId"),
                            "Product2Id": line.get("Product2Id"),
                            "QuantityExpected": leftover,
                            "ReasonForReturn": line.get("ReasonForReturn"),
                        },
                        system=True,
                    )
                    self._store.update(
                        "ReturnOrderLineItem",
                        split_id,
                        {"_CanReduceShipping": line.get("_CanReduceShipping")},
                    )
                    splits.append(
                        {
                            "returnOrderLineItemId": line["Id"],
                            "splitReturnOrderLineItemId": split_id,
                        }
                    )
            change_order_id = None
            if change_items:
                change_order_id = self._apply_change(
                    summary, change_items, "return", output, check_reason=False
                )
                for line in self._store.where("ReturnOrderLineItem", ReturnOrderId=ro["Id"]):
                    if line.get("_IsProcessed") and not line.get("_ChangeOrderId"):
                        self._store.update(
                            "ReturnOrderLineItem", line["Id"], {"_ChangeOrderId": change_order_id}
                        )
            if all(
                x.get("_IsProcessed")
                for x in self._store.where("ReturnOrderLineItem", ReturnOrderId=ro["Id"])
            ):
                self._store.update("ReturnOrder", ro["Id"], {"Status": "Closed"})
        return {
            "changeOrderId": change_order_id,
            "returnLineItemSplits": splits,
            "success": True,
            "errors": [],
        }

    def routes(self) -> list[tuple[str, str, str, Callable[..., dict[str, Any]]]]:
        """(method, path pattern, documented action, handler) of every Connect resource this
        module serves; the action names the body's documented keys (connect_schema)."""
        base = "commerce/order-management/order-summaries/<id>"
        fo = "commerce/fulfillment/fulfillment-orders"
        returns = "commerce/returns/return-orders"
        return [
            (
                "POST",
                "commerce/order-management/order-summaries",
                "create-order-summary",
                lambda body: self.create_order_summary(body),
            ),
            (
                "POST",
                f"{base}/actions/preview-cancel",
                "preview-cancel",
                lambda body, id: self.change(id, body, kind="cancel", preview=True),
            ),
            (
                "POST",
                f"{base}/actions/submit-cancel",
                "submit-cancel",
                lambda body, id: self.change(id, body, kind="cancel", preview=False),
            ),
            (
                "POST",
                f"{base}/actions/preview-return",
                "preview-return",
                lambda body, id: self.change(id, body, kind="return", preview=True),
            ),
            (
                "POST",
                f"{base}/actions/submit-return",
                "submit-return",
                lambda body, id: self.change(id, body, kind="return", preview=False),
            ),
            (
                "POST",
                f"{base}/actions/create-credit-memo",
                "create-credit-memo",
                lambda body, id: self.create_credit_memo(id, body),
            ),
            (
                "POST",
                f"{base}/async-actions/ensure-refunds-async",
                "ensure-refunds-async",
                lambda body, id: self.ensure_refunds(id, body),
            ),
            (
                "POST",
                f"{base}/async-actions/ensure-funds-async",
                "ensure-funds-async",
                lambda body, id: self.ensure_funds(id, body),
            ),
            (
                "POST",
                fo,
                "create-fulfillment-orders",
                lambda body: self.create_fulfillment_orders(body),
            ),
            (
                "POST",
                f"{fo}/<id>/actions/cancel-item",
                "cancel-fulfillment-order-items",
                lambda body, id: self.cancel_fo_items(id, body),
            ),
            (
                "POST",
                f"{fo}/<id>/actions/create-invoice",
                "create-invoice-from-fulfillment-order",
                lambda body, id: self.create_invoice(id, body),
            ),
            (
                "POST",
                returns,
                "create-return-order",
                lambda body: self.create_return_order(body),
            ),
            (
                "POST",
                f"{returns}/<id>/actions/return-items",
                "return-items",
                lambda body, id: self.return_items(id, body),
            ),
        ]


def _require(body: Any, key: str, output: dict[str, Any]) -> Any:
    if not isinstance(body, dict) or body.get(key) in (None, ""):
        raise ConnectError("INVALID_API_INPUT", f"Missing required input: {key}", output)
    return body[key]
