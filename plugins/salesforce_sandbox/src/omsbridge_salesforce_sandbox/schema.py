"""The sandbox org's object definitions, as data.

Adding an object is one :func:`_obj` entry in :data:`_DEFINITIONS`: its API name, key prefix
and fields. Everything else (REST CRUD, describe, SOQL, composite) reads this module.

Key prefixes marked ``[unconfirmed]`` below were not found in public Salesforce sources; they
are unique within the sandbox but clients must not route on them (read ``attributes.type``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

#: Field types the sandbox understands (Salesforce describe ``type`` values).
FIELD_TYPES = frozenset(
    {
        "id",
        "string",
        "textarea",
        "email",
        "phone",
        "url",
        "boolean",
        "int",
        "double",
        "currency",
        "percent",
        "date",
        "datetime",
        "picklist",
        "reference",
    }
)

NUMERIC_TYPES = frozenset({"int", "double", "currency", "percent"})
TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "id"})


@dataclass(frozen=True)
class Field:
    """One field of an sObject: what describe reports and what validation enforces."""

    name: str
    type: str
    required: bool = False
    picklist: tuple[str, ...] | None = None
    restricted: bool = True
    references: tuple[str, ...] = ()
    relationship_name: str | None = None
    child_relationship: str | None = None
    external_id: bool = False
    unique: bool = False
    createable: bool = True
    updateable: bool = True
    default: Any = None
    length: int = 255
    label: str | None = None

    @property
    def nillable(self) -> bool:
        """Whether the field may be null (required fields may not)."""
        return not self.required and self.type != "boolean"


@dataclass(frozen=True)
class SObjectType:
    """One sObject type: API name, key prefix, fields, and a few behaviour flags."""

    name: str
    key_prefix: str
    fields: dict[str, Field]
    label: str
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    name_field: str | None = "Name"

    def field(self, name: str) -> Field | None:
        """The field called *name* (case-insensitive), or None."""
        return self._lower().get(name.lower())

    def relationship(self, name: str) -> Field | None:
        """The reference field whose relationship name is *name* (case-insensitive)."""
        lowered = name.lower()
        for candidate in self.fields.values():
            if candidate.relationship_name and candidate.relationship_name.lower() == lowered:
                return candidate
        return None

    def external_id_fields(self) -> list[Field]:
        """Fields usable in an upsert URL (external ids; ``Id`` is handled separately)."""
        return [f for f in self.fields.values() if f.external_id]

    def _lower(self) -> dict[str, Field]:
        cache = self.__dict__.get("_lower_cache")
        if cache is None:
            cache = {k.lower(): v for k, v in self.fields.items()}
            object.__setattr__(self, "_lower_cache", cache)
        return cache


# --- field constructors (keep the object table below readable) -------------------------------


def _s(
    name: str,
    *,
    req: bool = False,
    ext: bool = False,
    unique: bool = False,
    length: int = 255,
    ro: bool = False,
    type_: str = "string",
) -> Field:
    return Field(
        name,
        type_,
        required=req,
        external_id=ext,
        unique=unique or ext,
        length=length,
        createable=not ro,
        updateable=not ro,
    )


def _email(name: str) -> Field:
    return Field(name, "email", length=80)


def _phone(name: str) -> Field:
    return Field(name, "phone", length=40)


def _text(name: str) -> Field:
    return Field(name, "textarea", length=32000)


def _bool(name: str, default: bool = False, *, ro: bool = False) -> Field:
    return Field(name, "boolean", default=default, createable=not ro, updateable=not ro)


def _num(
    name: str, *, req: bool = False, ro: bool = False, type_: str = "double", default: Any = None
) -> Field:
    return Field(name, type_, required=req, createable=not ro, updateable=not ro, default=default)


def _cur(name: str, *, req: bool = False, ro: bool = False) -> Field:
    return _num(name, req=req, ro=ro, type_="currency")


def _int(name: str, *, req: bool = False, ro: bool = False) -> Field:
    return _num(name, req=req, ro=ro, type_="int")


def _date(name: str, *, req: bool = False, ro: bool = False) -> Field:
    return Field(name, "date", required=req, createable=not ro, updateable=not ro)


def _dt(name: str, *, req: bool = False, ro: bool = False) -> Field:
    return Field(name, "datetime", required=req, createable=not ro, updateable=not ro)


def _pick(
    name: str,
    values: Iterable[str],
    *,
    req: bool = False,
    restricted: bool = True,
    default: str | None = None,
    ro: bool = False,
) -> Field:
    return Field(
        name,
        "picklist",
        required=req,
        picklist=tuple(values),
        restricted=restricted,
        default=default,
        createable=not ro,
        updateable=not ro,
    )


def _ref(
    name: str,
    *targets: str,
    req: bool = False,
    child: str | None = None,
    ro: bool = False,
    rel: str | None = None,
    update: bool = True,
) -> Field:
    if rel is None:
        rel = name[:-2] if name.endswith("Id") else name.replace("__c", "__r")
    return Field(
        name,
        "reference",
        required=req,
        references=targets,
        relationship_name=rel,
        child_relationship=child,
        createable=not ro,
        updateable=not ro and update,
    )


_CURRENCIES = ("USD", "EUR", "GBP", "CAD")
_PROCESSING_MODES = ("External", "Salesforce")
_PAYMENT_METHODS = ("CardPaymentMethod", "DigitalWallet", "AlternativePaymentMethod")
_ADDRESS = ("Street", "City", "State", "PostalCode", "Country")

#: FulfillmentOrder Status values and their StatusCategory (the org's picklist set-up).
#: "Cancelled", "Processing Cancel", "Ready For Pickup", "Picked Up" and "Invoice Paid" are
#: custom values such as the integration guide mentions; orgs add their own.
FO_STATUS_CATEGORY: dict[str, str] = {
    "Draft": "Draft",
    "Allocated": "Activated",
    "Assigned": "Activated",
    "Pickpack": "Fulfilling",
    "Printed": "Fulfilling",
    "Pick Complete": "Fulfilling",
    "Pack Complete": "Fulfilling",
    "Ready For Pickup": "Fulfilling",
    "Fulfilled": "Closed",
    "Picked Up": "Closed",
    "Invoice Paid": "Closed",
    "Canceled": "Canceled",
    "Cancelled": "Canceled",
    "Processing Cancel": "Fulfilling",
    "Rejected": "Rejected",
}


def _address(prefix: str) -> list[Field]:
    return [_s(prefix + part) for part in _ADDRESS]


def _obj(
    name: str,
    prefix: str,
    fields: list[Field],
    *,
    label: str | None = None,
    createable: bool = True,
    updateable: bool = True,
    deletable: bool = True,
    name_field: str | None = "Name",
    owner: bool = False,
) -> SObjectType:
    system = [
        Field("Id", "id", createable=False, updateable=False),
        _bool("IsDeleted", ro=True),
        _dt("CreatedDate", ro=True),
        _ref("CreatedById", "User", ro=True),
        _dt("LastModifiedDate", ro=True),
        _ref("LastModifiedById", "User", ro=True),
        _dt("SystemModstamp", ro=True),
    ]
    if owner:
        system.append(_ref("OwnerId", "User", update=True))
    by_name = {f.name: f for f in system}
    for f in fields:
        by_name[f.name] = f
    return SObjectType(
        name, prefix, by_name, label or name, createable, updateable, deletable, name_field
    )


_DEFINITIONS: list[SObjectType] = [
    _obj(
        "User",
        "005",
        [
            _s("Username", req=True, unique=True),
            _s("FirstName"),
            _s("LastName", req=True),
            _s("Name", ro=True),
            _email("Email"),
            _s("Alias", length=8),
            _bool("IsActive", True),
        ],
        createable=False,
        deletable=False,
    ),
    _obj(
        "Account",
        "001",
        [
            _s("Name"),
            _s("AccountNumber"),
            _pick("Type", ("Customer", "Partner", "Other"), restricted=False),
            _phone("Phone"),
            *_address("Billing"),
            *_address("Shipping"),
            _text("Description"),
            _ref("ParentId", "Account", child="ChildAccounts"),
            _bool("IsPersonAccount", ro=True),
            _s("FirstName"),
            _s("LastName"),
            _email("PersonEmail"),
            _phone("PersonMobilePhone"),
            *_address("PersonMailing"),
            _s("POS_Customer_Id__c", ext=True),
        ],
        owner=True,
    ),
    _obj(
        "Contact",
        "003",
        [
            _s("FirstName"),
            _s("LastName", req=True),
            _s("Name", ro=True),
            _email("Email"),
            _phone("Phone"),
            _ref("AccountId", "Account", child="Contacts"),
        ],
        owner=True,
    ),
    _obj(
        "Product2",
        "01t",
        [
            _s("Name", req=True),
            _s("ProductCode"),
            _s("StockKeepingUnit", ext=True),
            _text("Description"),
            _bool("IsActive"),
            _pick("Family", ("Apparel", "Footwear", "Accessories", "Delivery"), restricted=False),
            _s("QuantityUnitOfMeasure"),
        ],
    ),
    _obj(
        "Pricebook2",
        "01s",
        [
            _s("Name", req=True),
            _bool("IsActive"),
            _bool("IsStandard", ro=True),
            _text("Description"),
        ],
    ),
    _obj(
        "PricebookEntry",
        "01u",
        [
            _ref("Pricebook2Id", "Pricebook2", req=True, child="PricebookEntries", update=False),
            _ref("Product2Id", "Product2", req=True, child="PricebookEntries", update=False),
            _cur("UnitPrice", req=True),
            _bool("IsActive"),
            _bool("UseStandardPrice"),
            _s("ProductCode", ro=True),
            _s("Name", ro=True),
            _pick("CurrencyIsoCode", _CURRENCIES, default="USD"),
        ],
    ),
    _obj(
        "SalesChannel",
        "0bI",
        [  # [unconfirmed prefix]
            _s("SalesChannelName", req=True),
            _text("Description"),
            _s("ExternalChannelNumber"),
        ],
        name_field="SalesChannelName",
    ),
    _obj(
        "OrderDeliveryMethod",
        "2Dm",
        [  # [unconfirmed prefix]
            _s("Name", req=True),
            _s("ReferenceNumber"),
            _ref("ProductId", "Product2"),
            _bool("IsActive"),
            _s("Carrier"),
            _s("ClassOfService"),
            _text("Description"),
        ],
    ),
    _obj(
        "Order",
        "801",
        [
            _ref("AccountId", "Account", req=True, child="Orders"),
            _date("EffectiveDate", req=True),
            _pick("Status", ("Draft", "Activated"), req=True),
            _pick("StatusCode", ("Draft", "Activated"), ro=True),
            _ref("Pricebook2Id", "Pricebook2", child="Orders"),
            _s("OrderNumber", ro=True),
            _s("Name"),
            _text("Description"),
            _pick("Type", ("In-Store", "Online", "Endless Aisle", "Mixed Cart"), restricted=False),
            _dt("OrderedDate"),
            _dt("ActivatedDate", ro=True),
            _ref("SalesChannelId", "SalesChannel", child="Orders"),
            *_address("Billing"),
            _email("BillingEmailAddress"),
            _phone("BillingPhoneNumber"),
            _ref("BillToContactId", "Contact"),
            _cur("TotalAmount", ro=True),
            _cur("TotalTaxAmount", ro=True),
            _cur("GrandTotalAmount", ro=True),
            _pick("CurrencyIsoCode", _CURRENCIES, default="USD"),
            _pick("TaxLocaleType", ("Net", "Gross"), default="Net"),
            _s("OrderReferenceNumber"),
            _ref("OriginalOrderId", "Order", ro=True),
            _ref("RelatedOrderId", "Order", ro=True),
            _bool("IsReductionOrder", ro=True),
            # The sandbox's stand-in for the org's activation flow: MANAGED orders get an
            # OrderSummary when activated (see oms.py).
            _pick("OrderLifeCycleType", ("MANAGED", "UNMANAGED"), default="MANAGED"),
            _s("POS_Transaction_Id__c", ext=True),
        ],
        name_field="OrderNumber",
        owner=True,
    ),
    _obj(
        "OrderDeliveryGroup",
        "2Dg",
        [
            _ref("OrderId", "Order", req=True, child="OrderDeliveryGroups", update=False),
            _ref("OrderDeliveryMethodId", "OrderDeliveryMethod", req=True),
            _s("DeliverToName", req=True),
            *_address("DeliverTo"),
            _email("EmailAddress"),
            _phone("PhoneNumber"),
            _text("DeliveryInstructions"),
            _text("Description"),
            _date("DesiredDeliveryDate"),
            _cur("TotalAmount", ro=True),
            _s("OrderDeliveryGroupNumber", ro=True),
        ],
        name_field="OrderDeliveryGroupNumber",
    ),
    _obj(
        "OrderItem",
        "802",
        [
            _ref("OrderId", "Order", req=True, child="OrderItems", update=False),
            _ref("Product2Id", "Product2"),
            _ref("PricebookEntryId", "PricebookEntry", req=True, update=False),
            _num("Quantity", req=True),
            _cur("UnitPrice", req=True),
            _cur("ListPrice"),
            _cur("TotalLineAmount"),
            _cur("GrossUnitPrice"),
            _cur("TotalPrice", ro=True),
            _pick("Type", ("Order Product", "Delivery Charge"), default="Order Product"),
            _pick("TypeCode", ("Product", "Charge"), ro=True),
            _ref("OrderDeliveryGroupId", "OrderDeliveryGroup", child="OrderItems"),
            _text("Description"),
            _s("OrderItemNumber", ro=True),
            _ref("OriginalOrderItemId", "OrderItem", ro=True),
            _cur("TotalTaxAmount", ro=True),
            _cur("TotalAdjustmentAmount", ro=True),
            _s("POS_Line_Id__c"),
        ],
        name_field="OrderItemNumber",
    ),
    _obj(
        "OrderItemTaxLineItem",
        "0au",
        [
            _ref("OrderItemId", "OrderItem", req=True, child="OrderItemTaxLineItems", update=False),
            _s("Name", req=True),
            _pick("Type", ("Estimated", "Actual"), req=True),
            _cur("Amount", req=True),
            _num("Rate", type_="percent"),
            _date("TaxEffectiveDate", req=True),
            _text("Description"),
            _ref("OrderItemAdjustmentLineItemId", "OrderItemAdjustmentLineItem"),
            _ref("OrderId", "Order", ro=True),
        ],
    ),
    _obj(
        "OrderAdjustmentGroup",
        "0ah",
        [  # [unconfirmed prefix]
            _ref("OrderId", "Order", req=True, child="OrderAdjustmentGroups", update=False),
            _s("Name", req=True),
            _pick("Type", ("Header", "SplitLine"), req=True),
            _text("Description"),
            _cur("TotalAmount", ro=True),
        ],
    ),
    _obj(
        "OrderItemAdjustmentLineItem",
        "3qZ",
        [
            _ref(
                "OrderItemId",
                "OrderItem",
                req=True,
                child="OrderItemAdjustmentLineItems",
                update=False,
            ),
            _ref(
                "OrderAdjustmentGroupId",
                "OrderAdjustmentGroup",
                child="OrderItemAdjustmentLineItems",
            ),
            _s("Name", req=True),
            _cur("Amount", req=True),
            _text("Description"),
            _ref("OrderId", "Order", ro=True),
        ],
    ),
    _obj(
        "PaymentGateway",
        "0b0",
        [  # [unconfirmed prefix]
            _s("PaymentGatewayName", req=True),
            _pick("Status", ("Active", "Inactive"), req=True),
            _s("ExternalReference"),
        ],
        name_field="PaymentGatewayName",
    ),
    _obj(
        "PaymentGroup",
        "0aF",
        [  # [unconfirmed prefix]
            _ref("SourceObjectId", "Order", req=True, child="PaymentGroups", update=False),
            _s("PaymentGroupNumber", ro=True),
            _pick("CurrencyIsoCode", _CURRENCIES, default="USD"),
        ],
        name_field="PaymentGroupNumber",
    ),
    _obj(
        "CardPaymentMethod",
        "03O",
        [
            _pick("ProcessingMode", _PROCESSING_MODES, req=True),
            _pick("Status", ("Active", "Inactive", "Canceled"), req=True),
            _ref("AccountId", "Account"),
            _pick(
                "CardType",
                (
                    "Visa",
                    "MasterCard",
                    "AmericanExpress",
                    "DinersClub",
                    "JCB",
                    "Maestro",
                    "Discover",
                    "UnionPay",
                ),
            ),
            _s("CardHolderName"),
            _s("CardHolderFirstName"),
            _s("CardHolderLastName"),
            _int("ExpiryMonth"),
            _int("ExpiryYear"),
            _pick("CardCategory", ("CreditCard", "DebitCard")),
            _s("InputCardNumber"),
            _s("CardLastFour", ro=True),
            _s("DisplayCardNumber", ro=True),
            _s("GatewayToken"),
            _ref("PaymentGatewayId", "PaymentGateway"),
            _email("Email"),
            _s("NickName"),
        ],
        name_field="DisplayCardNumber",
    ),
    _obj(
        "DigitalWallet",
        "1DW",
        [
            _pick("ProcessingMode", _PROCESSING_MODES, req=True),
            _pick("Status", ("Active", "Inactive", "Canceled"), req=True),
            _ref("AccountId", "Account"),
            _pick(
                "Type",
                ("ApplePay", "GooglePay", "PayPal", "Cash", "GiftCard", "Other"),
                restricted=False,
            ),
            _s("GatewayToken"),
            _s("NickName"),
            _ref("PaymentGatewayId", "PaymentGateway"),
            _email("Email"),
            _s("DigitalWalletNumber", ro=True),
        ],
        name_field="DigitalWalletNumber",
    ),
    _obj(
        "AlternativePaymentMethod",
        "0aR",
        [  # [unconfirmed prefix]
            _pick("ProcessingMode", _PROCESSING_MODES, req=True),
            _pick("Status", ("Active", "Inactive", "Canceled"), req=True),
            _ref("AccountId", "Account"),
            _s("GatewayToken"),
            _s("NickName"),
            _ref("PaymentGatewayId", "PaymentGateway"),
            _email("Email"),
            _s("AlternativePaymentMethodNumber", ro=True),
        ],
        name_field="AlternativePaymentMethodNumber",
    ),
    _obj(
        "PaymentAuthorization",
        "0Xc",
        [  # [unconfirmed prefix]
            _cur("Amount", req=True),
            _pick("ProcessingMode", _PROCESSING_MODES, req=True),
            _pick("Status", ("Draft", "Pending", "Processed", "Failed", "Canceled"), req=True),
            _ref("AccountId", "Account"),
            _ref("PaymentMethodId", *_PAYMENT_METHODS),
            _ref("PaymentGroupId", "PaymentGroup", child="PaymentAuthorizations"),
            _ref("OrderPaymentSummaryId", "OrderPaymentSummary", child="PaymentAuthorizations"),
            _ref("PaymentGatewayId", "PaymentGateway"),
            _s("GatewayRefNumber"),
            _dt("Date"),
            _dt("EffectiveDate"),
            _dt("ExpirationDate"),
            _s("PaymentAuthorizationNumber", ro=True),
        ],
        name_field="PaymentAuthorizationNumber",
    ),
    _obj(
        "Payment",
        "0aQ",
        [
            _cur("Amount", req=True),
            _pick("ProcessingMode", _PROCESSING_MODES, req=True),
            _pick("Status", ("Draft", "Pending", "Processed", "Failed", "Canceled"), req=True),
            _pick("Type", ("Capture", "Sale"), req=True),
            _ref("AccountId", "Account"),
            _ref("PaymentGroupId", "PaymentGroup", child="Payments"),
            _ref("PaymentMethodId", *_PAYMENT_METHODS),
            _ref("PaymentAuthorizationId", "PaymentAuthorization", child="Payments"),
            _ref("PaymentGatewayId", "PaymentGateway"),
            _ref("OrderPaymentSummaryId", "OrderPaymentSummary", child="Payments"),
            _s("GatewayRefNumber"),
            _s("GatewayResultCode"),
            _dt("Date"),
            _dt("EffectiveDate"),
            _s("PaymentNumber", ro=True),
            _pick("CurrencyIsoCode", _CURRENCIES, default="USD"),
        ],
        name_field="PaymentNumber",
    ),
    _obj(
        "Location",
        "131",
        [
            _s("Name", req=True),
            _pick("LocationType", ("Warehouse", "Store", "Site", "Van", "Plant"), restricted=False),
            _bool("IsInventoryLocation"),
            _s("ExternalReference"),
            _text("Description"),
            _s("warehouseID__c", ext=True),
        ],
        owner=True,
    ),
    # --- Order Management summaries: built by activation / Connect actions, not inserted.
    _obj(
        "OrderSummary",
        "1Os",
        [
            _ref("OriginalOrderId", "Order", ro=True),
            _ref("AccountId", "Account", ro=True),
            _s("OrderNumber", ro=True),
            _pick(
                "Status",
                ("Created", "Approved", "Waiting to Fulfill", "Fulfilled", "Canceled", "Returned"),
                restricted=False,
            ),
            _pick("OrderLifeCycleType", ("MANAGED", "UNMANAGED"), ro=True),
            _ref("SalesChannelId", "SalesChannel", ro=True),
            _dt("OrderedDate", ro=True),
            _email("BillingEmailAddress"),
            _phone("BillingPhoneNumber"),
            *_address("Billing"),
            _ref("Pricebook2Id", "Pricebook2", ro=True),
            _cur("TotalProductAmount", ro=True),
            _cur("TotalDeliveryAmount", ro=True),
            _cur("TotalAdjustedProductAmount", ro=True),
            _cur("TotalAdjustedDeliveryAmount", ro=True),
            _cur("TotalAdjustedProductTaxAmount", ro=True),
            _cur("TotalAdjustedDeliveryTaxAmount", ro=True),
            _cur("TotalTaxAmount", ro=True),
            _cur("GrandTotalAmount", ro=True),
            _cur("TotalAdjustmentDistributedAmount", ro=True),
            _pick("CurrencyIsoCode", _CURRENCIES, ro=True),
            _s("ExternalReferenceIdentifier", ro=True),
            _pick("BusinessModel", ("B2C", "B2B"), ro=True),
            _text("Description"),
            _s("POS_Transaction_Id__c", ro=True),
        ],
        createable=False,
        name_field="OrderNumber",
        owner=True,
    ),
    _obj(
        "OrderDeliveryGroupSummary",
        "0ag",
        [
            _ref("OrderSummaryId", "OrderSummary", ro=True, child="OrderDeliveryGroupSummaries"),
            _ref("OriginalOrderDeliveryGroupId", "OrderDeliveryGroup", ro=True),
            _ref("OrderDeliveryMethodId", "OrderDeliveryMethod"),
            _s("DeliverToName"),
            *_address("DeliverTo"),
            _email("EmailAddress"),
            _phone("PhoneNumber"),
            _text("Description"),
            _s("OrderDeliveryGroupSummaryNumber", ro=True),
            _cur("TotalAmount", ro=True),
        ],
        createable=False,
        name_field="OrderDeliveryGroupSummaryNumber",
    ),
    _obj(
        "OrderItemSummary",
        "10u",
        [
            _ref("OrderSummaryId", "OrderSummary", ro=True, child="OrderItemSummaries"),
            _ref("OriginalOrderItemId", "OrderItem", ro=True),
            _ref("Product2Id", "Product2", ro=True),
            _s("StockKeepingUnit", ro=True),
            _s("ProductCode", ro=True),
            _s("Name", ro=True),
            _text("Description"),
            _pick("Type", ("Order Product", "Delivery Charge"), ro=True),
            _pick("TypeCode", ("Product", "Charge"), ro=True),
            _int("LineNumber", ro=True),
            _ref(
                "OrderDeliveryGroupSummaryId",
                "OrderDeliveryGroupSummary",
                ro=True,
                child="OrderItemSummaries",
            ),
            _pick(
                "Status",
                (
                    "ORDERED",
                    "ALLOCATED",
                    "PARTIALLYALLOCATED",
                    "FULFILLED",
                    "PARTIALLYFULFILLED",
                    "CANCELED",
                    "RETURNED",
                    "RETURNINITIATED",
                ),
                ro=True,
            ),
            *[
                _num(q, ro=True)
                for q in (
                    "QuantityOrdered",
                    "QuantityCanceled",
                    "QuantityNetOrdered",
                    "QuantityAllocated",
                    "QuantityFulfilled",
                    "QuantityReturnInitiated",
                    "QuantityReturned",
                    "QuantityAvailableToFulfill",
                    "QuantityAvailableToCancel",
                    "QuantityAvailableToReturn",
                )
            ],
            _cur("UnitPrice", ro=True),
            _cur("ListPrice", ro=True),
            _cur("TotalLineAmount", ro=True),
            _cur("TotalPrice", ro=True),
            _cur("TotalTaxAmount", ro=True),
            _cur("TotalAdjustmentAmount", ro=True),
            _cur("AdjustedLineAmount", ro=True),
            _cur("TotalAmtWithTax", ro=True),
            _s("POS_Line_Id__c", ro=True),
        ],
        createable=False,
    ),
    _obj(
        "OrderPaymentSummary",
        "0bM",
        [  # [unconfirmed prefix]
            _ref("OrderSummaryId", "OrderSummary", ro=True, child="OrderPaymentSummaries"),
            _ref("PaymentMethodId", *_PAYMENT_METHODS, ro=True),
            _s("Method", ro=True),
            _s("FullName", ro=True),
            _pick("Type", ("Sale", "Authorization", "Unknown"), ro=True),
            _cur("AuthorizationAmount", ro=True),
            _cur("CapturedAmount", ro=True),
            _cur("RefundedAmount", ro=True),
            _cur("BalanceAmount", ro=True),
        ],
        createable=False,
        name_field="Method",
    ),
    _obj(
        "OrderAdjustmentGroupSummary",
        "0aH",
        [  # [unconfirmed prefix]
            _ref("OrderSummaryId", "OrderSummary", ro=True, child="OrderAdjustmentGroupSummaries"),
            _ref("OriginalOrderAdjustmentGroupId", "OrderAdjustmentGroup", ro=True),
            _s("Name", ro=True),
            _pick("Type", ("Header", "SplitLine"), ro=True),
            _text("Description"),
            _cur("TotalAmount", ro=True),
        ],
        createable=False,
    ),
    _obj(
        "OrderItemTaxLineItemSummary",
        "0at",
        [  # [unconfirmed prefix]
            _ref(
                "OrderItemSummaryId",
                "OrderItemSummary",
                ro=True,
                child="OrderItemTaxLineItemSummaries",
            ),
            _ref("OrderSummaryId", "OrderSummary", ro=True),
            _ref("OriginalOrderItemTaxLineItemId", "OrderItemTaxLineItem", ro=True),
            _s("Name", ro=True),
            _pick("Type", ("Estimated", "Actual"), ro=True),
            _cur("Amount", ro=True),
            _num("Rate", ro=True, type_="percent"),
            _date("TaxEffectiveDate", ro=True),
        ],
        createable=False,
    ),
    _obj(
        "OrderItemAdjustmentLineSummary",
        "0aJ",
        [  # [unconfirmed prefix]
            _ref(
                "OrderItemSummaryId",
                "OrderItemSummary",
                ro=True,
                child="OrderItemAdjustmentLineSummaries",
            ),
            _ref("OrderSummaryId", "OrderSummary", ro=True),
            _ref("OrderAdjustmentGroupSummaryId", "OrderAdjustmentGroupSummary", ro=True),
            _ref("OriginalOrderItemAdjustmentLineItemId", "OrderItemAdjustmentLineItem", ro=True),
            _s("Name", ro=True),
            _cur("Amount", ro=True),
        ],
        createable=False,
    ),
    _obj(
        "FulfillmentOrder",
        "0a3",
        [
            _ref("OrderSummaryId", "OrderSummary", child="FulfillmentOrders", update=False),
            _ref("AccountId", "Account"),
            _ref("FulfilledFromLocationId", "Location", child="FulfillmentOrders"),
            _ref("DeliveryMethodId", "OrderDeliveryMethod", req=True),
            _pick("Status", tuple(FO_STATUS_CATEGORY), req=True),
            _pick(
                "StatusCategory",
                ("Draft", "Activated", "Fulfilling", "Closed", "Canceled", "Rejected"),
                ro=True,
            ),
            _pick(
                "Type",
                ("Warehouse", "Retail Store", "Drop Ship", "In Store Pickup"),
                req=True,
                restricted=False,
            ),
            _pick("TypeCategory", ("Warehouse", "Store", "Drop Ship"), restricted=False),
            _s("FulfilledToName", req=True),
            *_address("FulfilledTo"),
            _email("FulfilledToEmailAddress"),
            _phone("FulfilledToPhone"),
            _s("FulfillmentOrderNumber", ro=True),
            _ref("OrderId", "Order"),
            _cur("TotalProductAmount", ro=True),
            _cur("TotalDeliveryAmount", ro=True),
            _cur("TotalTaxAmount", ro=True),
            _cur("GrandTotalAmount", ro=True),
            _dt("ClosedDate", ro=True),
            _pick("CurrencyIsoCode", _CURRENCIES, default="USD"),
        ],
        name_field="FulfillmentOrderNumber",
        owner=True,
    ),
    _obj(
        "FulfillmentOrderLineItem",
        "0a4",
        [
            _ref(
                "FulfillmentOrderId",
                "FulfillmentOrder",
                req=True,
                child="FulfillmentOrderLineItems",
                update=False,
            ),
            _ref("OrderItemSummaryId", "OrderItemSummary", child="FulfillmentOrderLineItems"),
            _ref("OrderItemId", "OrderItem"),
            _ref("Product2Id", "Product2"),
            _num("Quantity", req=True),
            _num("OriginalQuantity"),
            _num("QuantityCanceled", ro=True),
            _pick("Type", ("Order Product", "Delivery Charge"), req=True),
            _pick("TypeCode", ("Product", "Charge"), req=True),
            _cur("UnitPrice"),
            _cur("TotalLineAmount"),
            _cur("TotalPrice", ro=True),
            _s("FulfillmentOrderLineItemNumber", ro=True),
            _text("Description"),
        ],
        name_field="FulfillmentOrderLineItemNumber",
    ),
    _obj(
        "BackgroundOperation",
        "0bO",
        [  # [unconfirmed prefix]
            _s("Name", ro=True),
            _pick("Status", ("New", "Running", "Complete", "Error"), ro=True),
            _dt("FinishedAt", ro=True),
            _text("Error"),
        ],
        createable=False,
        deletable=False,
    ),
    _obj(
        "Shipment",
        "0OB",
        [  # [unconfirmed prefix]
            _ref("FulfillmentOrderId", "FulfillmentOrder", child="Shipments"),
            _ref("OrderSummaryId", "OrderSummary", child="Shipments"),
            _s("ShipToName", req=True),
            *_address("ShipTo"),
            _s("TrackingNumber"),
            _s("TrackingUrl"),
            _s("Provider"),
            _pick("Status", ("Shipped", "Delivered", "In Transit", "Canceled"), restricted=False),
            _dt("ActualDeliveryDate"),
            _dt("ExpectedDeliveryDate"),
            _dt("ShipmentDate"),
            _s("ShipmentNumber", ro=True),
        ],
        name_field="ShipmentNumber",
    ),
    _obj(
        "Invoice",
        "3tt",
        [  # [unconfirmed prefix]
            _ref("ReferenceEntityId", "OrderSummary", "FulfillmentOrder", child="Invoices"),
            _ref("BillingAccountId", "Account"),
            _pick("Status", ("Draft", "Posted", "Canceled"), default="Posted"),
            _cur("TotalAmount", ro=True),
            _cur("TotalAmountWithTax", ro=True),
            _cur("TotalTaxAmount", ro=True),
            _cur("Balance", ro=True),
            _date("InvoiceDate"),
            _s("DocumentNumber", ro=True),
        ],
        name_field="DocumentNumber",
    ),
    _obj(
        "CreditMemo",
        "50g",
        [
            _ref("ReferenceEntityId", "OrderSummary", child="CreditMemos"),
            _ref("BillingAccountId", "Account"),
            _pick("Status", ("Draft", "Posted", "Canceled"), default="Posted"),
            _cur("TotalAmount", ro=True),
            _cur("TotalAmountWithTax", ro=True),
            _cur("TotalTaxAmount", ro=True),
            _cur("Balance", ro=True),
            _date("CreditMemoDate"),
            _s("DocumentNumber", ro=True),
        ],
        name_field="DocumentNumber",
    ),
    _obj(
        "Refund",
        "0bR",
        [  # [unconfirmed prefix]
            _cur("Amount", req=True),
            _pick("ProcessingMode", _PROCESSING_MODES, req=True),
            _pick("Status", ("Draft", "Pending", "Processed", "Failed", "Canceled"), req=True),
            _pick("Type", ("Referenced", "Unreferenced"), req=True),
            _ref("AccountId", "Account"),
            _ref("PaymentMethodId", *_PAYMENT_METHODS),
            _ref("OrderPaymentSummaryId", "OrderPaymentSummary", child="Refunds"),
            _ref("CreditMemoId", "CreditMemo", child="Refunds"),
            _s("GatewayRefNumber"),
            _dt("Date"),
            _s("RefundNumber", ro=True),
        ],
        name_field="RefundNumber",
    ),
    _obj(
        "ReturnOrder",
        "0RR",
        [  # [unconfirmed prefix]
            _ref("OrderSummaryId", "OrderSummary", child="ReturnOrders"),
            _ref("AccountId", "Account"),
            _ref("OrderId", "Order"),
            _pick(
                "Status",
                ("Draft", "Submitted", "Approved", "Closed", "Canceled"),
                req=True,
                restricted=False,
            ),
            _pick("ReturnOrderLifeCycleType", ("Managed", "Unmanaged"), default="Unmanaged"),
            _ref("SourceLocationId", "Location"),
            _ref("DestinationLocationId", "Location"),
            _s("ReturnOrderNumber", ro=True),
            _text("Description"),
        ],
        name_field="ReturnOrderNumber",
        owner=True,
    ),
    _obj(
        "ReturnOrderLineItem",
        "0RS",
        [  # [unconfirmed prefix]
            _ref(
                "ReturnOrderId", "ReturnOrder", req=True, child="ReturnOrderLineItems", update=False
            ),
            _ref("OrderItemSummaryId", "OrderItemSummary"),
            _ref("OrderItemId", "OrderItem"),
            _ref("Product2Id", "Product2"),
            _num("QuantityExpected"),
            _num("QuantityReceived"),
            _num("QuantityReturned"),
            _num("QuantityRejected"),
            _num("QuantityToCancel"),
            _pick(
                "ReasonForReturn",
                (
                    "Damaged",
                    "Defective",
                    "Duplicate Order",
                    "Not Satisfied",
                    "Wrong Item",
                    "Wrong Size",
                    "Other",
                ),
                restricted=False,
            ),
            _s("ReasonForRejection"),
            _bool("CanReduceShipping"),
            _s("ReturnOrderLineItemNumber", ro=True),
            _ref("ChangeOrderId", "Order", ro=True),
            _bool("IsProcessed", ro=True),
        ],
        name_field="ReturnOrderLineItemNumber",
    ),
]


class Schema:
    """The set of sObject types of one sandbox org (with any integrator-added fields)."""

    def __init__(self, types: Iterable[SObjectType]) -> None:
        self._types: dict[str, SObjectType] = {t.name.lower(): t for t in types}
        self._by_prefix = {t.key_prefix: t for t in self._types.values()}
        if len(self._by_prefix) != len(self._types):
            raise ValueError("duplicate key prefix in schema")

    def get(self, name: str) -> SObjectType | None:
        """The type called *name* (case-insensitive), or None."""
        return self._types.get(name.lower())

    def by_prefix(self, prefix: str) -> SObjectType | None:
        """The type whose ids start with *prefix*, or None."""
        return self._by_prefix.get(prefix)

    def types(self) -> list[SObjectType]:
        """All types, in definition order."""
        return list(self._types.values())

    def children(self, parent: str) -> dict[str, tuple[SObjectType, Field]]:
        """Child relationships of *parent*: relationship name -> (child type, lookup field)."""
        out: dict[str, tuple[SObjectType, Field]] = {}
        for child_type in self._types.values():
            for f in child_type.fields.values():
                if f.child_relationship and parent in f.references:
                    out[f.child_relationship] = (child_type, f)
        return out

    def with_fields(self, extra: dict[str, list[Field]]) -> Schema:
        """A copy with *extra* fields added per type (an org's custom fields)."""
        types = []
        for t in self._types.values():
            added = extra.get(t.name, [])
            if added:
                merged = dict(t.fields)
                for f in added:
                    merged[f.name] = f
                t = replace(t, fields=merged)
            types.append(t)
        return Schema(types)


def default_schema(custom_fields: dict[str, list[Field]] | None = None) -> Schema:
    """The sandbox org's schema, plus *custom_fields* (type name -> extra fields)."""
    schema = Schema(_DEFINITIONS)
    return schema.with_fields(custom_fields) if custom_fields else schema


def custom_field(name: str, type_: str = "string", **kwargs: Any) -> Field:
    """Declare an integrator's custom field (e.g. ``custom_field("Loyalty__c")``)."""
    if type_ not in FIELD_TYPES:
        raise ValueError(f"unknown field type {type_!r}")
    if kwargs.get("external_id"):
        kwargs.setdefault("unique", True)
    if type_ == "reference" and "relationship_name" not in kwargs:
        kwargs["relationship_name"] = name.replace("__c", "__r")
    return Field(name, type_, **kwargs)


def describe_field(f: Field) -> dict[str, Any]:
    """The describe representation of one field (the subset clients read)."""
    return {
        "name": f.name,
        "label": f.label or f.name,
        "type": f.type,
        "length": f.length if f.type in TEXT_TYPES else 0,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "defaultedOnCreate": f.default is not None or f.type == "boolean",
        "externalId": f.external_id,
        "unique": f.unique,
        "idLookup": f.external_id or f.name == "Id",
        "custom": f.name.endswith("__c"),
        "referenceTo": list(f.references),
        "relationshipName": f.relationship_name,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": v == f.default,
                "label": v,
                "validFor": None,
                "value": v,
            }
            for v in (f.picklist or ())
        ],
        "restrictedPicklist": bool(f.picklist) and f.restricted,
        "filterable": True,
        "sortable": f.type != "textarea",
        "calculated": False,
    }


__all__ = [
    "FO_STATUS_CATEGORY",
    "Field",
    "SObjectType",
    "Schema",
    "custom_field",
    "default_schema",
    "describe_field",
]
