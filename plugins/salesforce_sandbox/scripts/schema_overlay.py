"""The ONE overlay on top of the Salesforce reference: what the sandbox needs that the reference
(``plugins/salesforce_sandbox/reference/``) does not list.

The reference says "a field not listed is unknown, not absent". Everything here is such a gap;
each entry says why the sandbox needs it and where it was confirmed. Read by
``scripts/generate_schema.py`` only (at generation time). Keep it small: anything that the
reference lists must come from the reference, never from here.
"""

from __future__ import annotations

from typing import Any

#: Whole objects the sandbox serves that the reference has no file for. Fields use the
#: generator's field format (see generate_schema._field_from_reference for the keys).
EXTRA_OBJECTS: dict[str, dict[str, Any]] = {
    # User: the target of every OwnerId/CreatedById/LastModifiedById in the reference; the
    # seed inserts the integration user so those references resolve. Fields and the 005
    # prefix: Object Reference "User" (developer.salesforce.com .../sforce_api_objects_user.htm).
    # Salesforce refuses User inserts without a licence/profile; the sandbox makes it read-only.
    "User": {
        "key_prefix": "005",
        "label": "User",
        "createable": False,
        "updateable": False,
        "deletable": False,
        "name_field": "Name",
        "fields": {
            "Username": {"type": "string", "length": 80, "nillable": False, "unique": True},
            "FirstName": {"type": "string", "length": 40},
            "LastName": {"type": "string", "length": 80, "nillable": False},
            "Name": {"type": "string", "length": 121, "createable": False, "updateable": False},
            "Email": {"type": "email", "length": 128},
            "Alias": {"type": "string", "length": 8},
            "IsActive": {"type": "boolean"},
        },
    },
    # Contact: target of Order.BillToContactId, OrderSummary.BillToContactId, ReturnOrder.
    # ContactId... (reference_to in the reference). Fields and the 003 prefix: Object Reference
    # "Contact" (.../sforce_api_objects_contact.htm).
    "Contact": {
        "key_prefix": "003",
        "label": "Contact",
        "name_field": "Name",
        "owner": True,
        "fields": {
            "FirstName": {"type": "string", "length": 40},
            "LastName": {"type": "string", "length": 80, "nillable": False},
            "Name": {"type": "string", "length": 121, "createable": False, "updateable": False},
            "Email": {"type": "email", "length": 80},
            "Phone": {"type": "phone", "length": 40},
            "AccountId": {"type": "reference", "reference_to": ["Account"]},
        },
    },
    # AlternativePaymentMethod: one of the targets of Payment/Refund/PaymentAuthorization
    # .PaymentMethodId in Salesforce ("AlternativePaymentMethod" object, API 51.0+, Object
    # Reference .../sforce_api_objects_alternativepaymentmethod.htm). Key prefix 0aR is
    # unconfirmed (sandbox-only); clients must route on attributes.type, not on prefixes.
    "AlternativePaymentMethod": {
        "key_prefix": "0aR",
        "label": "Alternative Payment Method",
        "name_field": "AlternativePaymentMethodNumber",
        "fields": {
            "ProcessingMode": {
                "type": "picklist",
                "picklist": ["External", "Salesforce"],
                "restricted": True,
                "nillable": False,
            },
            # Same values as CardPaymentMethod/DigitalWallet.Status in the reference.
            "Status": {
                "type": "picklist",
                "picklist": ["Active", "Canceled", "InActive"],
                "restricted": True,
                "nillable": False,
            },
            "AccountId": {"type": "reference", "reference_to": ["Account"]},
            "GatewayToken": {"type": "string", "length": 255},
            "NickName": {"type": "string", "length": 100},
            "PaymentGatewayId": {"type": "reference", "reference_to": ["PaymentGateway"]},
            "Email": {"type": "email", "length": 80},
            "AlternativePaymentMethodNumber": {
                "type": "string",
                "length": 30,
                "createable": False,
                "updateable": False,
                "autonumber": True,
            },
        },
    },
    # BackgroundOperation: the record whose id ensure-funds-async / ensure-refunds-async
    # answer (connect/ensure-*-async.json: "backgroundOperationId"); Object Reference
    # "BackgroundOperation" (API 50.0+, .../sforce_api_objects_backgroundoperation.htm).
    # Key prefix 0bO is unconfirmed (sandbox-only).
    "BackgroundOperation": {
        "key_prefix": "0bO",
        "label": "Background Operation",
        "createable": False,
        "updateable": False,
        "deletable": False,
        "name_field": "Name",
        "fields": {
            "Name": {"type": "string", "length": 80, "createable": False, "updateable": False},
            # Values as remembered from the Object Reference; a doc search (2026-12-06) did not
            # confirm them. The sandbox only ever writes "Complete" (async actions finish at once).
            "Status": {
                "type": "picklist",
                "picklist": ["Canceled", "Complete", "Error", "New", "Running", "Waiting"],
                "restricted": True,
                "createable": False,
                "updateable": False,
            },
            "FinishedAt": {"type": "datetime", "createable": False, "updateable": False},
            "Error": {
                "type": "textarea",
                "length": 32000,
                "createable": False,
                "updateable": False,
            },
        },
    },
}

#: Key prefixes the reference does not give (no describe source for them). Sandbox-only values,
#: unique within the sandbox; clients must not route on them.
EXTRA_KEY_PREFIXES: dict[str, str] = {
    # ShipmentItem: no public source gives its prefix (reference ShipmentItem.json key_prefix null).
    "ShipmentItem": "0sI",
}

#: Child relationship names (describe ``childRelationships[].relationshipName``), used by SOQL
#: parent-to-child subqueries. The reference lists fields, not relationships. Names follow
#: Salesforce's convention for standard objects (the plural of the child object: Contacts,
#: Orders, OrderItems); ``OrderItemSummaries`` is confirmed by SOQL in Salesforce's B2C
#: Commerce-Order Management connector code (code search, 2026-12-06); the others are not
#: individually confirmed. They are what the hand-written sandbox schema used.
CHILD_RELATIONSHIPS: dict[str, str] = {
    "Contact.AccountId": "Contacts",
    "Account.ParentId": "ChildAccounts",
    "PricebookEntry.Pricebook2Id": "PricebookEntries",
    "PricebookEntry.Product2Id": "PricebookEntries",
    "Order.AccountId": "Orders",
    "Order.Pricebook2Id": "Orders",
    "Order.SalesChannelId": "Orders",
    "OrderDeliveryGroup.OrderId": "OrderDeliveryGroups",
    "OrderItem.OrderId": "OrderItems",
    "OrderItem.OrderDeliveryGroupId": "OrderItems",
    "OrderItemTaxLineItem.OrderItemId": "OrderItemTaxLineItems",
    "OrderAdjustmentGroup.OrderId": "OrderAdjustmentGroups",
    "OrderItemAdjustmentLineItem.OrderItemId": "OrderItemAdjustmentLineItems",
    "OrderItemAdjustmentLineItem.OrderAdjustmentGroupId": "OrderItemAdjustmentLineItems",
    "PaymentGroup.SourceObjectId": "PaymentGroups",
    "PaymentAuthorization.PaymentGroupId": "PaymentAuthorizations",
    "PaymentAuthorization.OrderPaymentSummaryId": "PaymentAuthorizations",
    "Payment.PaymentGroupId": "Payments",
    "Payment.PaymentAuthorizationId": "Payments",
    "Payment.OrderPaymentSummaryId": "Payments",
    "Refund.OrderPaymentSummaryId": "Refunds",
    "OrderPaymentSummary.OrderSummaryId": "OrderPaymentSummaries",
    "OrderAdjustmentGroupSummary.OrderSummaryId": "OrderAdjustmentGroupSummaries",
    "OrderDeliveryGroupSummary.OrderSummaryId": "OrderDeliveryGroupSummaries",
    "OrderItemSummary.OrderSummaryId": "OrderItemSummaries",
    "OrderItemSummary.OrderDeliveryGroupSummaryId": "OrderItemSummaries",
    "OrderItemTaxLineItemSummary.OrderItemSummaryId": "OrderItemTaxLineItemSummaries",
    "OrderItemAdjustmentLineSummary.OrderItemSummaryId": "OrderItemAdjustmentLineSummaries",
    "OrderItemSummaryChange.OrderSummaryId": "OrderItemSummaryChanges",
    "OrderItemSummaryChange.OrderItemSummaryId": "OrderItemSummaryChanges",
    "FulfillmentOrder.OrderSummaryId": "FulfillmentOrders",
    "FulfillmentOrder.FulfilledFromLocationId": "FulfillmentOrders",
    "FulfillmentOrderLineItem.FulfillmentOrderId": "FulfillmentOrderLineItems",
    "FulfillmentOrderLineItem.OrderItemSummaryId": "FulfillmentOrderLineItems",
    "Shipment.FulfillmentOrderId": "Shipments",
    "Shipment.OrderSummaryId": "Shipments",
    "ShipmentItem.ShipmentId": "ShipmentItems",
    "Invoice.ReferenceEntityId": "Invoices",
    "CreditMemo.ReferenceEntityId": "CreditMemos",
    "ReturnOrder.OrderSummaryId": "ReturnOrders",
    "ReturnOrderLineItem.ReturnOrderId": "ReturnOrderLineItems",
}

#: Picklist default values (describe ``picklistValues[].defaultValue``). The reference marks
#: ``defaulted_on_create`` but never says which value.
PICKLIST_DEFAULTS: dict[str, str] = {
    # OrderItemSummaryChange.Reason: the only default value, "Unknown" (reference picklist).
    "OrderItemSummaryChange.Reason": "Unknown",
}

#: Reference targets the reference names by an abstract type. ``PaymentMethod`` is not an
#: sObject: Payment/Refund/PaymentAuthorization/OrderPaymentSummary.PaymentMethodId point at
#: one of the concrete payment method objects (Object Reference "Payment": "PaymentMethodId —
#: the payment method ... CardPaymentMethod, DigitalWallet or AlternativePaymentMethod").
REFERENCE_EXPANSIONS: dict[str, list[str]] = {
    "PaymentMethod": ["AlternativePaymentMethod", "CardPaymentMethod", "DigitalWallet"],
}
