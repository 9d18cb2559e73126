"""Seed data: the org's users and connected app (always), and the ``demo`` org.

Demo credentials (documented in docs/sandbox-salesforce.md):

* username ``integration@omsbridge.sandbox``, password ``sandbox-password``, security token
  ``SANDBOXTOKEN`` (the password flow accepts the password with or without the token);
* connected app client id ``3MVG9omsbridgeSandboxConsumerKey``, secret
  ``sandbox-consumer-secret`` (password, client-credentials, JWT bearer and refresh flows);
* JWT bearer: a 2048-bit RSA key pair generated at first use and kept in the state file; its
  private key is in ``SalesforceSandbox.credentials["jwt_private_key_pem"]`` and
  ``GET /__sandbox__/info``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import ids
from .auth import ConnectedApp, User, generate_key_pair
from .records import format_datetime

if TYPE_CHECKING:
    from .auth import Auth
    from .clock import Clock
    from .oms import OrderManagement
    from .profiles import OrgProfile
    from .records import Dml
    from .schema import Schema
    from .store import Store


@dataclass
class SeedContext:
    """What seeding an org needs: its parts (not the app), and what seeding produces."""

    auth: Auth
    store: Store
    dml: Dml
    oms: OrderManagement
    clock: Clock
    schema: Schema
    profile: OrgProfile
    user_id: str
    jwt_certificate_pem: str | None
    credentials: dict[str, Any] = field(default_factory=dict)
    demo: dict[str, Any] = field(default_factory=dict)


USERNAME = "integration@omsbridge.sandbox"
PASSWORD = "sandbox-password"
SECURITY_TOKEN = "SANDBOXTOKEN"
CLIENT_ID = "3MVG9omsbridgeSandboxConsumerKey"
CLIENT_SECRET = "sandbox-consumer-secret"

SEEDS = ("empty", "demo")

_KEYS: tuple[str, str] | None = None
_KEYS_LOCK = threading.Lock()


def _demo_keys(sandbox: SeedContext) -> tuple[str, str]:
    global _KEYS
    saved = sandbox.store.load_meta("jwt_keys")
    if saved:
        return saved[0], saved[1]
    with _KEYS_LOCK:
        # One key pair per process is enough for tests; generating RSA keys is the slow part.
        if _KEYS is None:
            _KEYS = generate_key_pair()
        keys = _KEYS
    sandbox.store.save_meta("jwt_keys", list(keys))
    return keys


def load_org(sandbox: SeedContext, seed: str, *, create_records: bool) -> None:
    """Install users and the connected app, and (if *create_records*) the seed's records."""
    if seed not in SEEDS:
        raise ValueError(f"unknown seed {seed!r}; use one of {', '.join(SEEDS)}")
    private_pem, public_pem = _demo_keys(sandbox)
    certificate = sandbox.jwt_certificate_pem or public_pem
    auth = sandbox.auth
    auth.users.clear()
    auth.apps.clear()
    auth.add_user(
        User(
            sandbox.user_id,
            USERNAME,
            PASSWORD,
            SECURITY_TOKEN,
            "Integration",
            "User",
            "integration@omsbridge.sandbox",
        )
    )
    auth.add_app(
        ConnectedApp(
            CLIENT_ID,
            CLIENT_SECRET,
            "omsbridge",
            certificate_pem=certificate,
            client_credentials_user=USERNAME,
        )
    )
    sandbox.credentials = {
        "username": USERNAME,
        "password": PASSWORD,
        "security_token": SECURITY_TOKEN,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "jwt_private_key_pem": None if sandbox.jwt_certificate_pem else private_pem,
        "jwt_audience": "https://login.salesforce.com",
    }
    if not create_records:
        sandbox.demo = sandbox.store.load_meta("demo") or {}
        return
    with sandbox.store.transaction():
        _insert_user(sandbox, sandbox.user_id, "Integration", "User", USERNAME)
        _insert_user(
            sandbox,
            ids.make_id("005", 1_000_002),
            None,
            "Automated Process",
            "autoproc@omsbridge.sandbox",
        )
        standard = sandbox.dml.create(
            "Pricebook2", {"Name": "Standard Price Book", "IsActive": True}, system=True
        )
        sandbox.store.update("Pricebook2", standard, {"IsStandard": True})
        sandbox.demo = {"standard_pricebook_id": standard}
        if seed == "demo":
            _demo(sandbox, standard)
    sandbox.store.save_meta("demo", sandbox.demo)


def _insert_user(
    sandbox: SeedContext, user_id: str, first: str | None, last: str, username: str
) -> None:
    # Users are not createable through the API; the org simply has them.
    now = format_datetime(sandbox.clock.now())
    sobject = sandbox.schema.get("User")
    assert sobject is not None
    record: dict[str, Any] = {f: None for f in sobject.fields}
    record.update(
        {
            "Id": user_id,
            "Username": username,
            "FirstName": first,
            "LastName": last,
            "Name": " ".join(p for p in (first, last) if p),
            "Email": username,
            "Alias": last[:8].lower(),
            "IsActive": True,
            "IsDeleted": False,
            "CreatedDate": now,
            "CreatedById": sandbox.user_id,
            "LastModifiedDate": now,
            "LastModifiedById": sandbox.user_id,
            "SystemModstamp": now,
        }
    )
    sandbox.store.insert("User", record)


_PRODUCTS = [
    ("Classic Tee - Black - M", "TEE-BLK-M", "Apparel", "25.00"),
    ("Classic Tee - White - L", "TEE-WHT-L", "Apparel", "25.00"),
    ("Runner Sneaker - 42", "SNK-RUN-42", "Footwear", "120.00"),
    ("Leather Belt - 90", "BELT-LTH-90", "Accessories", "45.00"),
    ("Canvas Tote", "TOTE-CNV", "Accessories", "30.00"),
    ("Standard Shipping", "DELIVERY-SHIP", "Delivery", "7.95"),
    ("Store Pickup", "DELIVERY-PICKUP", "Delivery", "0.00"),
]
_DELIVERY_METHODS = [
    ("IN_STORE-DEFAULT", "DELIVERY-PICKUP"),
    ("IN_STORE-PICKUP_LATER", "DELIVERY-PICKUP"),
    ("ONLINE-DEFAULT", "DELIVERY-SHIP"),
    ("Store Pickup", "DELIVERY-PICKUP"),
    ("Standard Shipping", "DELIVERY-SHIP"),
]
_LOCATIONS = [
    ("Downtown Store", "Store", "store-001"),
    ("Mall Store", "Store", "store-002"),
    ("Central Warehouse", "Warehouse", "wh-001"),
]
MERCHANT_KEY = "DEMO-en_US-US"


def _demo(sb: SeedContext, standard: str) -> None:
    create = sb.dml.create
    demo = sb.demo
    merchant_book = create("Pricebook2", {"Name": MERCHANT_KEY, "IsActive": True})
    demo["pricebook_id"] = merchant_book
    demo["products"] = {}
    demo["pricebook_entries"] = {}
    for name, sku, family, price in _PRODUCTS:
        product = create(
            "Product2",
            {
                "Name": name,
                "StockKeepingUnit": sku,
                "ProductCode": sku,
                "Family": family,
                "IsActive": True,
            },
        )
        create(
            "PricebookEntry",
            {"Pricebook2Id": standard, "Product2Id": product, "UnitPrice": price, "IsActive": True},
        )
        entry = create(
            "PricebookEntry",
            {
                "Pricebook2Id": merchant_book,
                "Product2Id": product,
                "UnitPrice": price,
                "IsActive": True,
            },
        )
        demo["products"][sku] = product
        demo["pricebook_entries"][sku] = entry
    demo["sales_channels"] = {
        name: create("SalesChannel", {"SalesChannelName": name})
        for name in ("POS", f"{MERCHANT_KEY}-POS", "Web Store")
    }
    demo["delivery_methods"] = {
        name: create(
            "OrderDeliveryMethod",
            {
                "Name": name,
                "ReferenceNumber": name,
                "ProductId": demo["products"][sku],
                "IsActive": True,
            },
        )
        for name, sku in _DELIVERY_METHODS
    }
    demo["locations"] = {
        store_id: create(
            "Location",
            {
                "Name": name,
                "LocationType": kind,
                "IsInventoryLocation": True,
                "ExternalReference": store_id,
                **_present(sb, "Location", warehouseID__c=store_id, POS_Store_Id__c=store_id),
            },
        )
        for name, kind, store_id in _LOCATIONS
    }
    demo["payment_gateways"] = {
        name: create(
            "PaymentGateway",
            {"PaymentGatewayName": name, "Status": "Active", "ExternalReference": name.lower()},
        )
        for name in ("DemoGateway", "CashPOS")
    }
    demo["accounts"] = {
        MERCHANT_KEY: create("Account", {"Name": MERCHANT_KEY}),
        "amanda.freeman@example.com": create(
            "Account",
            _customer(
                sb,
                "Amanda",
                "Freeman",
                "amanda.freeman@example.com",
                "San Francisco",
                phone="+1 415 555 0101",
            ),
        ),
        "ben.ortiz@example.com": create(
            "Account",
            _customer(sb, "Ben", "Ortiz", "ben.ortiz@example.com", "Oakland"),
        ),
    }
    demo["orders"] = [
        _online_order(
            sb,
            "amanda.freeman@example.com",
            [("TEE-BLK-M", 1), ("TOTE-CNV", 1)],
            "Store Pickup",
            "store-001",
            kind="BOPIS",
        ),
        _online_order(
            sb,
            "ben.ortiz@example.com",
            [("SNK-RUN-42", 1)],
            "Store Pickup",
            "store-002",
            kind="BOPIS",
        ),
        _online_order(
            sb,
            "amanda.freeman@example.com",
            [("BELT-LTH-90", 1)],
            "Standard Shipping",
            "wh-001",
            kind="SHIPPED",
            fulfill=True,
        ),
    ]


def _customer(
    sb: SeedContext, first: str, last: str, email: str, city: str, *, phone: str | None = None
) -> dict[str, Any]:
    """A customer account: a person account where the org has them, else a business one."""
    if "person_accounts" in sb.profile.features:
        body: dict[str, Any] = {
            "FirstName": first,
            "LastName": last,
            "PersonEmail": email,
            "BillingCity": city,
            "BillingCountry": "US",
        }
        if phone:
            body["PersonMobilePhone"] = phone
        return body
    return {"Name": f"{first} {last}", "Phone": phone, "BillingCity": city, "BillingCountry": "US"}


def _present(sb: SeedContext, type_name: str, **values: Any) -> dict[str, Any]:
    """*values* limited to the fields this org has (custom fields depend on the profile)."""
    sobject = sb.schema.get(type_name)
    assert sobject is not None
    return {k: v for k, v in values.items() if sobject.field(k) is not None}


def _online_order(
    sb: SeedContext,
    email: str,
    lines: list[tuple[str, int]],
    method: str,
    location: str,
    *,
    kind: str,
    fulfill: bool = False,
) -> dict[str, Any]:
    """One online (web store) order, activated (-> OrderSummary) with a FulfillmentOrder."""
    create = sb.dml.create
    demo = sb.demo
    account = demo["accounts"][email]
    person = sb.store.get("Account", account)
    assert person is not None
    today = sb.clock.now()
    order = create(
        "Order",
        {
            "AccountId": account,
            "EffectiveDate": today.date().isoformat(),
            "Status": "Draft",
            "Pricebook2Id": demo["pricebook_id"],
            "SalesChannelId": demo["sales_channels"]["Web Store"],
            "OrderedDate": today.isoformat(),
            "BillingEmailAddress": email,
            "BillingCity": person.get("BillingCity"),
            "BillingCountry": "US",
            "Type": "Online",
        },
    )
    group = create(
        "OrderDeliveryGroup",
        {
            "OrderId": order,
            "OrderDeliveryMethodId": demo["delivery_methods"][method],
            "DeliverToName": person["Name"],
            "EmailAddress": email,
            "DeliverToCity": person.get("BillingCity"),
            "DeliverToCountry": "US",
        },
    )
    total = Decimal(0)
    charge_sku = "DELIVERY-PICKUP" if method == "Store Pickup" else "DELIVERY-SHIP"
    for sku, qty in [*lines, (charge_sku, 1)]:
        entry = sb.store.get("PricebookEntry", demo["pricebook_entries"][sku])
        assert entry is not None
        price = entry["UnitPrice"]
        line_total = price * qty
        item = create(
            "OrderItem",
            {
                "OrderId": order,
                "PricebookEntryId": entry["Id"],
                "Quantity": qty,
                "UnitPrice": price,
                "ListPrice": price,
                "TotalLineAmount": line_total,
                "Type": "Delivery Charge" if sku.startswith("DELIVERY") else "Order Product",
                "OrderDeliveryGroupId": group,
            },
        )
        tax = (line_total * Decimal("0.08")).quantize(Decimal("0.01"))
        if tax:
            create(
                "OrderItemTaxLineItem",
                {
                    "OrderItemId": item,
                    "Name": "Sales Tax",
                    "Type": "Estimated",
                    "Amount": tax,
                    "Rate": 8,
                    "TaxEffectiveDate": today.date().isoformat(),
                },
            )
        total += line_total + tax
    payment_group = create("PaymentGroup", {"SourceObjectId": order})
    card = create(
        "CardPaymentMethod",
        {
            "ProcessingMode": "External",
            "Status": "Active",
            "AccountId": account,
            "CardType": "Visa",
            "CardHolderName": person["Name"],
            "ExpiryMonth": 12,
            "ExpiryYear": today.year + 3,
            "CardCategory": "CreditCard",
            "InputCardNumber": "4111111111111111",
            "PaymentGatewayId": demo["payment_gateways"]["DemoGateway"],
        },
    )
    create(
        "Payment",
        {
            "Amount": total,
            "AccountId": account,
            "ProcessingMode": "External",
            "Status": "Processed",
            "Type": "Sale",
            "PaymentGroupId": payment_group,
            "PaymentMethodId": card,
            "GatewayRefNumber": f"demo-{order[-6:]}",
            "Date": today.isoformat(),
        },
    )
    sb.dml.update("Order", order, {"Status": "Activated"})
    if not sb.profile.activation_flow:
        # No flow in this org: the summary comes from the Connect action, as a connector does.
        sb.oms.create_order_summary({"orderId": order, "orderLifeCycleType": "MANAGED"})
    summary = sb.store.where("OrderSummary", OriginalOrderId=order)[0]
    odgs = sb.store.where("OrderDeliveryGroupSummary", OrderSummaryId=summary["Id"])[0]
    items = sb.store.where("OrderItemSummary", OrderSummaryId=summary["Id"])
    result = sb.oms.create_fulfillment_orders(
        {
            "orderSummaryId": summary["Id"],
            "orderDeliveryGroupSummaryId": odgs["Id"],
            "fulfillmentGroups": [
                {
                    "fulfilledFromLocationId": demo["locations"][location],
                    "fulfillmentType": "Warehouse" if location.startswith("wh") else "Retail Store",
                    "orderItemSummaries": [
                        {"orderItemSummaryId": o["Id"], "quantity": float(o["QuantityOrdered"])}
                        for o in items
                    ],
                }
            ],
        }
    )
    fo_id = result["fulfillmentOrderIds"][0]
    if fulfill:
        sb.dml.update("FulfillmentOrder", fo_id, {"Status": "Fulfilled"})
    order_rec = sb.store.get("Order", order)
    assert order_rec is not None
    return {
        "kind": kind,
        "order_id": order,
        "order_number": order_rec["OrderNumber"],
        "order_summary_id": summary["Id"],
        "fulfillment_order_id": fo_id,
        "store_id": location,
        "customer_email": email,
    }
