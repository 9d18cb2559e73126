"""Org profiles: which Salesforce features, org picklist values and automation a sandbox org has.

The object definitions come from the generated schema (reference + setup package); a profile
only chooses among them (features) and supplies the org data Salesforce leaves to each org
(currencies, customised picklist values, a flow on order activation).
See docs/sandbox-salesforce.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: FulfillmentOrder.Status default values (reference FulfillmentOrder.json, objref-v67).
FO_STATUS_DEFAULTS: tuple[str, ...] = (
    "Allocated",
    "Assigned",
    "Cancelled",
    "Draft",
    "Fulfilled",
    "Pick Complete",
    "Pickpack",
    "Printed",
    "Rejected",
)

#: The values a real SOM org's describe returned (reference: picklist_values_seen_in_describe),
#: with the integration guide's own two statuses (its org spells "Ready For Pickup" and adds
#: "Picked Up", a CLOSED status): the configured org of the guide; the `som` profile uses them.
FO_STATUS_CONFIGURED: tuple[str, ...] = (
    "Draft",
    "Allocated",
    "Waiting Assignment",
    "Assigned",
    "Waiting Pickpack",
    "Pickpack",
    "Ready For Pickup",
    "Customer Arrived",
    "Picked Up",
    "Fulfilled",
    "Cancelled",
    "Rejected",
    "Printed",
    "Pick Complete",
    "Pack Complete",
)

#: Each FulfillmentOrder.Status value's StatusCategory (API values, upper case: reference
#: FulfillmentOrder.StatusCategory). In an org this mapping is part of the picklist set-up.
FO_STATUS_CATEGORY: dict[str, str] = {
    "Draft": "DRAFT",
    "Allocated": "ACTIVATED",
    "Waiting Assignment": "ACTIVATED",
    "Assigned": "ACTIVATED",
    "Waiting Pickpack": "ACTIVATED",
    "Pickpack": "FULFILLING",
    "Printed": "FULFILLING",
    "Pick Complete": "FULFILLING",
    "Pack Complete": "FULFILLING",
    "Ready For Pickup": "FULFILLING",
    "Customer Arrived": "FULFILLING",
    "Fulfilled": "CLOSED",
    "Picked Up": "CLOSED",
    "Cancelled": "CANCELLED",
    "Rejected": "REJECTED",
}

#: OrderItemSummaryChange.Reason: Salesforce's only default value (reference).
REASON_DEFAULT: tuple[str, ...] = ("Unknown",)
#: The values the `som` org added to its Reason picklist.
REASON_ORG_ADDED: tuple[str, ...] = ("Damaged", "Defective", "Wrong Item", "Changed Mind", "Other")


@dataclass(frozen=True)
class OrgProfile:
    """What one kind of org has: features, org picklist values, automation, seed extras."""

    name: str
    features: frozenset[str]
    currencies: tuple[str, ...]
    fo_statuses: tuple[str, ...]
    change_reasons: tuple[str, ...]
    #: The org's record-triggered flow on Order activation: creates the OrderSummary (MANAGED)
    #: and fulfils take-with lines. Without it only the Connect action creates summaries.
    activation_flow: bool
    #: Extra custom fields the org has beyond the setup package (object -> field specs).
    extra_fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    description: str = ""

    @property
    def multicurrency(self) -> bool:
        """Whether the org has multicurrency (CurrencyIsoCode fields)."""
        return "multicurrency" in self.features

    @property
    def corporate_currency(self) -> str:
        """The org's corporate currency."""
        return self.currencies[0]


PROFILES: dict[str, OrgProfile] = {
    "som": OrgProfile(
        name="som",
        features=frozenset({"multicurrency", "person_accounts", "setup_package"}),
        currencies=("USD", "EUR", "GBP", "CAD"),
        fo_statuses=FO_STATUS_CONFIGURED,
        change_reasons=REASON_DEFAULT + REASON_ORG_ADDED,
        activation_flow=True,
        extra_fields={
            # The demo seed's own store-id field (the integration guide's warehouseID__c).
            "Location": [
                {
                    "name": "warehouseID__c",
                    "type": "string",
                    "label": "Warehouse ID",
                    "length": 255,
                    "custom": True,
                    "external_id": True,
                    "id_lookup": True,
                }
            ]
        },
        description="Order Management with Person Accounts, multicurrency, an order-summary "
        "flow on activation and the omsbridge setup package",
    ),
    "som-minimal": OrgProfile(
        name="som-minimal",
        features=frozenset({"setup_package"}),
        currencies=("USD",),
        fo_statuses=FO_STATUS_DEFAULTS,
        change_reasons=REASON_DEFAULT,
        activation_flow=False,
        description="Order Management with the omsbridge setup package and nothing else",
    ),
    "som-unprepared": OrgProfile(
        name="som-unprepared",
        features=frozenset(),
        currencies=("USD",),
        fo_statuses=FO_STATUS_DEFAULTS,
        change_reasons=REASON_DEFAULT,
        activation_flow=False,
        description="som-minimal without the omsbridge setup package (no custom fields)",
    ),
}

DEFAULT_PROFILE = "som"


def get_profile(name: str) -> OrgProfile:
    """The profile called *name*, or ValueError naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown org profile {name!r}; expected one of {', '.join(PROFILES)}"
        ) from None


def merchant_settings(
    profile: OrgProfile,
    *,
    url: str,
    api_version: str,
    credentials: dict[str, Any],
    pubsub: str | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``[merchants.ID.salesforce]`` settings suited to *profile*, and the environment
    variables its secret references name (secrets never inline)."""
    env = {
        "SF_SANDBOX_PASSWORD": str(credentials.get("password", "")),
        "SF_SANDBOX_SECURITY_TOKEN": str(credentials.get("security_token", "")),
        "SF_SANDBOX_CLIENT_SECRET": str(credentials.get("client_secret", "")),
    }
    settings: dict[str, Any] = {
        "url_base": url,
        "auth_flow": "password",
        "username": credentials.get("username"),
        "password": {"env": "SF_SANDBOX_PASSWORD"},
        "security_token": {"env": "SF_SANDBOX_SECURITY_TOKEN"},
        "client_id": credentials.get("client_id"),
        "client_secret": {"env": "SF_SANDBOX_CLIENT_SECRET"},
        "api_version": f"v{api_version}",
        "custom_fields": [
            {
                "oms_field_name": "POS_Store_Id__c",
                "pos_field": "ORDER_STORE_ID",
                "apply_to": ["LOCATION"],
            }
        ],
        "received_quantity_field": "POS_Quantity_Received__c",
        "order_customer_id_field": "POS_Customer_Id__c",
        "order_placed_at_field": "POS_Placed_At__c",
        "order_store_id_field": "POS_Store_Id__c",
        "status_canceled_value": "Cancelled",
        "multi_currency": profile.multicurrency,
        "person_accounts": "person_accounts" in profile.features,
        "default_change_reason": "Unknown",
    }
    if url.startswith("http://"):
        settings["allow_insecure_sandbox_url"] = True
    # Events over the sandbox's Pub/Sub endpoint when it serves one, else over CometD.
    if pubsub:
        settings["event_transport"] = "pubsub"
        settings["pubsub_endpoint"] = pubsub
    else:
        settings["event_transport"] = "cometd"
    if profile.activation_flow:
        settings["order_summary_creation"] = "flow"
        settings["take_with_fulfillment"] = "flow"
        settings["change_reasons"] = {value: value for value in REASON_ORG_ADDED}
        settings["fulfillment_statuses"] = {
            "PICK": "Pickpack",
            "PACK": "Pack Complete",
            "READY_FOR_PICKUP": "Ready For Pickup",
            "PICKED_UP": "Picked Up",
            "SHIPPED": "Fulfilled",
            "RECEIVED": "Ready For Pickup",
            "REJECT": "Rejected",
        }
    else:
        settings["order_summary_creation"] = "connect"
        settings["take_with_fulfillment"] = "connector"
        # Only Salesforce's default FulfillmentOrder.Status values exist in this org.
        settings["fulfillment_statuses"] = {
            "PICK": "Pickpack",
            "PACK": "Pick Complete",
            "READY_FOR_PICKUP": "Printed",
            "PICKED_UP": "Fulfilled",
            "SHIPPED": "Fulfilled",
            "RECEIVED": "Printed",
            "REJECT": "Rejected",
        }
    return settings, env
