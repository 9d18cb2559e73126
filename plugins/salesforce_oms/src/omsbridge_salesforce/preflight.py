"""Is this Salesforce org ready for a merchant's settings? Describe calls and a few queries.

:func:`preflight` reads the org (``GET /services/data/``, ``/sobjects/{X}/describe``, SOQL) and
returns one :class:`Check` per thing the connector relies on: the API version, Order
Management, Person Accounts, multicurrency, every configured field (type, external id, unique,
case-sensitive, writable by the integration user), every configured picklist value, what the
steps after a sale need (API version of the Connect summary action, store Locations, the
take-with fulfillment order's values), payment gateways, delivery methods, the sales channel and
the import filter. It never writes: no record is created,
changed or deleted (``omsbridge salesforce preflight`` is safe on a production org).

A field the integration user cannot read is absent from describe, exactly like a field that
was never deployed, so every "missing field" fix names both the setup package and its
permission set. Describe answers for the integration user also say ``createable`` /
``updateable`` per its field-level security, which is what the connector needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from omsbridge import BackendError, MerchantContext, NotFound
from omsbridge_salesforce.client import SalesforceClient
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.soql import soql

__all__ = ["PERMISSION_SET", "SETUP_PACKAGE", "Check", "preflight", "problems"]

SETUP_PACKAGE = "plugins/salesforce_oms/org-setup"
"""The SFDX project with the custom fields and permission set (see docs/salesforce.md)."""
PERMISSION_SET = "omsbridge_Integration"
"""The permission set of the setup package that gives the integration user its fields."""

# ``sf project deploy start`` runs inside an SFDX project (the folder of sfdx-project.json).
_DEPLOY = (
    f"deploy the setup package (cd {SETUP_PACKAGE} && sf project deploy start --source-dir "
    "force-app --target-org ORG) and assign its permission set (sf org assign permset --name "
    f"{PERMISSION_SET} --on-behalf-of INTEGRATION_USER --target-org ORG)"
)
_TEXT = frozenset({"string"})
_NUMBER = frozenset({"double", "int", "long"})
# Objects the connector reads or writes whatever the settings; Location and PaymentGateway are
# added when the settings use them.
_ALWAYS = (
    "Order",
    "OrderItem",
    "OrderSummary",
    "OrderItemSummary",
    "Account",
    "FulfillmentOrder",
    "FulfillmentOrderLineItem",
    "OrderItemSummaryChange",
    "OrderDeliveryMethod",
    "SalesChannel",
    "Product2",
    "PricebookEntry",
)
# What the connector writes on the take-with FulfillmentOrder (aftersale.py: TAKE_WITH_STATUS,
# TAKE_WITH_TYPE): default values of FulfillmentOrder.Status (CLOSED category) and Type.
_TAKE_WITH_STATUS = "Fulfilled"
_TAKE_WITH_TYPE = "Retail Store"
# The Connect create-order-summary action takes externalReferenceIdentifier from API v56.0.
_MIN_API_CONNECT_SUMMARY = 56
# Created on first use when an OrderDeliveryMethod does not exist yet (lookups.py).
_DELIVERY_RECORDS = ("OrderDeliveryMethod", "Product2", "PricebookEntry")


@attrs.frozen
class Check:
    """One thing the connector relies on, and whether the org has it.

    ``check`` names the setting (its path under ``[merchants.ID.salesforce]``) and the
    Salesforce object, field or record it points at; ``problem`` and ``fix`` are set when
    ``ok`` is false.
    """

    check: str
    ok: bool
    problem: str | None = None
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"check", "ok", "problem", "fix"}``."""
        return {"check": self.check, "ok": self.ok, "problem": self.problem, "fix": self.fix}


def problems(checks: Iterable[Check]) -> list[Check]:
    """The checks that failed."""
    return [c for c in checks if not c.ok]


def _ok(check: str) -> Check:
    return Check(check, True)


def _bad(check: str, problem: str, fix: str) -> Check:
    return Check(check, False, problem, fix)


# -- what the org says ---------------------------------------------------------------------------


class _Org:
    """Describe answers of the objects the connector uses (None: the user cannot see it)."""

    def __init__(self, client: SalesforceClient, names: Iterable[str]) -> None:
        self.describes: dict[str, dict[str, Any] | None] = {}
        for name in names:
            try:
                body = client.request(
                    "GET", client.sobject_path(name) + "/describe", context=f"describe {name}"
                )
            except NotFound:
                # Salesforce answers NOT_FOUND both for an object the org lacks (feature off)
                # and for one the user has no access to.
                body = None
            self.describes[name] = body if isinstance(body, dict) else None

    def has(self, sobject: str) -> bool:
        return self.describes.get(sobject) is not None

    def field(self, sobject: str, name: str) -> dict[str, Any] | None:
        """The describe of one field (API names are case-insensitive), or None."""
        describe = self.describes.get(sobject) or {}
        wanted = name.lower()
        for field in describe.get("fields") or ():
            if isinstance(field, dict) and str(field.get("name", "")).lower() == wanted:
                return field
        return None

    def createable(self, sobject: str) -> bool:
        return bool((self.describes.get(sobject) or {}).get("createable"))


def _active_values(field: Mapping[str, Any]) -> list[str]:
    return [
        str(v.get("value"))
        for v in field.get("picklistValues") or ()
        if isinstance(v, dict) and v.get("active", True)
    ]


# -- the checks -------------------------------------------------------------------------------


def preflight(
    client: SalesforceClient, config: SalesforceConfig, merchant: MerchantContext
) -> list[Check]:
    """Every check of the org against ``config``, in a stable order (read only).

    Auth and network failures are raised as the client raises them (AuthFailed,
    TransientBackendError, ...); everything the org lacks is a failed :class:`Check`.
    """
    checks = _versions(client, config)
    if problems(checks):
        return [
            *checks,
            _bad(
                "org",
                "the other checks were not run: every call names the API version",
                "fix the API version first",
            ),
        ]
    names = list(_ALWAYS)
    if config.store_id_field:
        names.append("Location")
    if _gateways(config):
        names.append("PaymentGateway")
    org = _Org(client, names)
    checks += _objects(org, names)
    checks += _features(org, config)
    checks += _fields(org, config)
    checks += _picklists(org, config)
    checks += _sale_steps(client, org, config)
    checks += _records(client, org, config, merchant)
    return checks


def _versions(client: SalesforceClient, config: SalesforceConfig) -> list[Check]:
    listed = client.request("GET", "/services/data/", context="list API versions")
    available = {
        f"v{entry['version']}"
        for entry in listed or ()
        if isinstance(entry, dict) and entry.get("version")
    }
    newest = max(available, key=lambda v: float(v[1:]), default="none")
    wanted = {"api_version": config.api_version}
    if config.query_api_version:
        wanted["query_api_version"] = config.query_api_version
    checks = []
    for setting, version in wanted.items():
        name = f"{setting}: {version}"
        if version in available:
            checks.append(_ok(name))
        else:
            checks.append(
                _bad(
                    name,
                    f"the org does not offer REST API {version} (newest: {newest})",
                    f"set {setting} to a version the org lists at /services/data/, e.g. {newest}",
                )
            )
    return checks


def _objects(org: _Org, names: Sequence[str]) -> list[Check]:
    checks = []
    if not org.has("OrderSummary"):
        checks.append(
            _bad(
                "Order Management: OrderSummary",
                "OrderSummary cannot be described: Order Management is not enabled, or the "
                "integration user has no Order Management licence",
                "enable Order Management (Setup > Order Management Settings) and assign the "
                "integration user the Salesforce Order Management permission set licence and a "
                "permission set that grants it",
            )
        )
    else:
        checks.append(_ok("Order Management: OrderSummary"))
    for name in names:
        if name == "OrderSummary":
            continue
        if not org.has("OrderSummary") and _is_som(name) and not org.has(name):
            continue  # without Order Management its objects are all missing: said once above
        if org.has(name):
            checks.append(_ok(f"object {name}"))
        else:
            checks.append(
                _bad(
                    f"object {name}",
                    f"{name} cannot be described: the org lacks it or the integration user "
                    "cannot read it",
                    f"give the integration user read access to {name} (its profile or a "
                    "permission set)",
                )
            )
    return checks


def _is_som(name: str) -> bool:
    return name in {
        "OrderItemSummary",
        "FulfillmentOrder",
        "FulfillmentOrderLineItem",
        "OrderItemSummaryChange",
    }


def _features(org: _Org, config: SalesforceConfig) -> list[Check]:
    checks = []
    if org.has("Account"):
        name = f"person_accounts = {str(config.person_accounts).lower()}: Account.IsPersonAccount"
        # With person_accounts the connector finds customers by Account.PersonEmail
        # (lookups.py) and reads their names from the Account (reading.py): both exist only
        # where Person Accounts are enabled.
        org_person = org.field("Account", "IsPersonAccount") is not None
        if org_person or not config.person_accounts:
            checks.append(_ok(name))
        else:
            checks.append(
                _bad(
                    name,
                    "person_accounts = true but Person Accounts are not enabled (Account has no "
                    "IsPersonAccount field); the connector would look customers up by "
                    "Account.PersonEmail",
                    "set person_accounts = false (customers then share the default account), "
                    "or enable Person Accounts (Setup > Person Accounts; it cannot be undone) "
                    "and give the integration user a Person Account record type",
                )
            )
    if org.has("Order"):
        name = f"multi_currency = {str(config.multi_currency).lower()}: Order.CurrencyIsoCode"
        org_multi = org.field("Order", "CurrencyIsoCode") is not None
        if org_multi == config.multi_currency:
            checks.append(_ok(name))
        elif config.multi_currency:
            checks.append(
                _bad(
                    name,
                    "multi_currency = true but the org has one currency (Order has no "
                    "CurrencyIsoCode field): every order would fail with INVALID_FIELD",
                    "set multi_currency = false",
                )
            )
        else:
            checks.append(
                _bad(
                    name,
                    "the org has multiple currencies (Order.CurrencyIsoCode exists) but "
                    "multi_currency = false: orders would take the user's default currency "
                    "instead of the transaction's",
                    "set multi_currency = true",
                )
            )
    return checks


def _fields(org: _Org, config: SalesforceConfig) -> list[Check]:
    txn = config.order_external_id_field
    line = config.order_item_external_id_field
    checks: list[Check | None] = [
        _field(
            org,
            "order_external_id_field",
            "Order",
            txn,
            types=_TEXT,
            external_id=True,
            unique=not config.check_before_post,
            case_sensitive=not config.check_before_post,
            access="createable",
            why="it holds the transaction id, the idempotency key",
        ),
        _field(
            org,
            "order_item_external_id_field",
            "OrderItem",
            line,
            types=_TEXT,
            access="createable",
            why="it holds the POS line id",
        ),
        _field(
            org,
            "order_item_external_id_field",
            "OrderItemSummary",
            line,
            types=_TEXT,
            why="Order Management copies the line id here and returns find lines by it",
        ),
    ]
    if config.order_customer_id_field:
        checks.append(
            _field(
                org,
                "order_customer_id_field",
                "Order",
                config.order_customer_id_field,
                types=_TEXT,
                access="createable",
                why="it holds the POS customer id",
            )
        )
    for name, why in (
        ("order_placed_at_field", "it holds the POS's local time of the sale"),
        ("order_store_id_field", "it holds the POS store id of the sale"),
    ):
        if getattr(config, name):
            checks.append(
                _field(
                    org,
                    name,
                    "Order",
                    getattr(config, name),
                    types=_TEXT,
                    access="createable",
                    why=why,
                )
            )
    if config.received_quantity_field:
        checks.append(
            _field(
                org,
                "received_quantity_field",
                "FulfillmentOrderLineItem",
                config.received_quantity_field,
                types=_NUMBER,
                access="updateable",
                why="ship-to-store receipts add up the quantity received in it",
            )
        )
    for i, custom in enumerate(config.custom_fields):
        if custom.pos_field == "ORDER_STORE_ID":
            checks.append(
                _field(
                    org,
                    f"custom_fields[{i}].oms_field_name",
                    "Location",
                    custom.oms_field_name,
                    types=_TEXT,
                    why="it holds the POS store id of a Location",
                )
            )
    return [c for c in checks if c is not None]


def _field(
    org: _Org,
    setting: str,
    sobject: str,
    name: str,
    *,
    types: frozenset[str],
    why: str,
    external_id: bool = False,
    unique: bool = False,
    case_sensitive: bool = False,
    access: str | None = None,
) -> Check | None:
    check = f"{setting}: {sobject}.{name}"
    if not org.has(sobject):
        return None  # the object's own check already failed
    field = org.field(sobject, name)
    if field is None:
        return _bad(
            check,
            f"{sobject}.{name} does not exist or the integration user cannot read it ({why})",
            f"{_DEPLOY}; or set {setting} to the org's own field",
        )
    wrong = []
    if field.get("type") not in types:
        wrong.append(f"its type is {field.get('type')}, not {' or '.join(sorted(types))}")
    # Real describe answers always carry these flags; a missing one counts as false.
    if external_id and field.get("externalId") is not True:
        wrong.append("it is not an External ID")
    if unique and field.get("unique") is not True:
        wrong.append("it is not Unique (a retried sale could create a second order)")
    if case_sensitive and field.get("caseSensitive") is not True:
        wrong.append(
            "its uniqueness is not case-sensitive (transaction ids differing only in case "
            "would collide)"
        )
    if access and field.get(access) is not True:
        wrong.append(f"the integration user cannot write it ({access} is false: no edit access)")
    if not wrong:
        return _ok(check)
    fix = (
        f"change {sobject}.{name} to match the setup package "
        f"({SETUP_PACKAGE}/force-app/main/default/objects/{sobject}/fields/) and assign the "
        f"permission set {PERMISSION_SET}"
    )
    if unique and any("Unique" in w for w in wrong):
        fix += "; or set check_before_post = true"
    return _bad(check, f"{sobject}.{name}: " + "; ".join(wrong), fix)


def _picklists(org: _Org, config: SalesforceConfig) -> list[Check]:
    checks: list[Check | None] = []
    fo_values: dict[str, list[str]] = {}
    for action, value in config.fulfillment_statuses.items():
        fo_values.setdefault(value, []).append(f"fulfillment_statuses.{action}")
    fo_values.setdefault(config.status_canceled_value, []).append("status_canceled_value")
    for i, status in enumerate(config.statuses_to_process):
        fo_values.setdefault(status, []).append(f"statuses_to_process[{i}]")
    for value, settings in fo_values.items():
        checks.append(_value(org, settings, "FulfillmentOrder", "Status", value))
    checks.append(
        _value(
            org, ["status_canceled_value"], "OrderSummary", "Status", config.status_canceled_value
        )
    )
    reasons: dict[str, list[str]] = {}
    for pos_reason, value in config.change_reasons.items():
        reasons.setdefault(str(value), []).append(f"change_reasons.{pos_reason}")
    default_reason = config.default_change_reason
    if default_reason:
        reasons.setdefault(str(default_reason), []).append("default_change_reason")
    for value, settings in reasons.items():
        checks.append(_value(org, settings, "OrderItemSummaryChange", "Reason", value))
    return [c for c in checks if c is not None]


def _value(org: _Org, settings: Sequence[str], sobject: str, name: str, value: str) -> Check | None:
    check = f"{', '.join(settings)}: {sobject}.{name} = {value!r}"
    if not org.has(sobject):
        return None
    field = org.field(sobject, name)
    if field is None:
        return _bad(
            check,
            f"{sobject}.{name} cannot be described",
            f"give the integration user read access to {sobject}.{name}",
        )
    values = _active_values(field)
    if value in values:
        return _ok(check)
    near = [v for v in values if v.lower() == value.lower()]
    hint = f" (it has {near[0]!r}: picklist API values are case-sensitive)" if near else ""
    extra = (
        " and give it a Status Category (Setup > Order Management > Fulfillment Order Status)"
        if sobject == "FulfillmentOrder"
        else ""
    )
    return _bad(
        check,
        f"{value!r} is not an active value of {sobject}.{name}{hint}; the org has: "
        + ", ".join(repr(v) for v in values),
        f"add {value!r} to the {sobject}.{name} picklist (Object Manager > {sobject} > Fields)"
        f"{extra}, or set {settings[0]} to one of the org's values",
    )


def _sale_steps(client: SalesforceClient, org: _Org, config: SalesforceConfig) -> list[Check]:
    """What the steps after a sale's graph need (aftersale.py): the API version of the Connect
    summary action, and the store Locations and values of the take-with fulfillment order."""
    checks: list[Check | None] = []
    if config.order_summary_creation == "connect":
        check = f'order_summary_creation = "connect": api_version {config.api_version}'
        if _major(config.api_version) >= _MIN_API_CONNECT_SUMMARY:
            checks.append(_ok(check))
        else:
            checks.append(
                _bad(
                    check,
                    "the connector creates the OrderSummary through the Connect action with "
                    "externalReferenceIdentifier (the duplicate guard), which needs API "
                    f"v{_MIN_API_CONNECT_SUMMARY}.0 or later",
                    f"set api_version to v{_MIN_API_CONNECT_SUMMARY}.0 or later, or set "
                    'order_summary_creation = "flow" if the org\'s flow creates the summary',
                )
            )
    store_field = config.store_id_field
    if config.take_with_fulfillment == "connector":
        setting = 'take_with_fulfillment = "connector"'
        if store_field is None:
            checks.append(
                _bad(
                    f"{setting}: custom_fields ORDER_STORE_ID",
                    "take-with lines are fulfilled at the store's Location, found through the "
                    "ORDER_STORE_ID field of custom_fields, and none is configured",
                    'add custom_fields = [{ oms_field_name = "POS_Store_Id__c" }] (the setup '
                    'package\'s field), or set take_with_fulfillment = "flow" when the org '
                    "fulfils take-with lines itself",
                )
            )
        checks.append(_value(org, [setting], "FulfillmentOrder", "Status", _TAKE_WITH_STATUS))
        checks.append(_value(org, [setting], "FulfillmentOrder", "Type", _TAKE_WITH_TYPE))
    if store_field and org.field("Location", store_field) is not None:
        check = f"custom_fields ORDER_STORE_ID: Location.{store_field} values"
        rows = client.query(f"SELECT Id FROM Location WHERE {store_field} != null LIMIT 1")
        if rows:
            checks.append(_ok(check))
        else:
            checks.append(
                _bad(
                    check,
                    f"no Location has {store_field} set: take-with lines cannot be fulfilled "
                    "and fulfillment orders cannot be read by store",
                    f"set {store_field} to the POS store id on each store's Location",
                )
            )
    return [c for c in checks if c is not None]


def _major(version: str) -> int:
    """62 for ``v62.0`` (the config already checked the format)."""
    return int(version.lstrip("v").split(".")[0])


def _gateways(config: SalesforceConfig) -> dict[str, str]:
    """Gateway name -> the setting naming it."""
    out: dict[str, str] = {}
    for setting in ("payment_gateway_name", "cash_payment_gateway_name"):
        value = getattr(config, setting)
        if value:
            out.setdefault(value, setting)
    return out


def _records(
    client: SalesforceClient, org: _Org, config: SalesforceConfig, merchant: MerchantContext
) -> list[Check]:
    """Gateways (must exist), delivery methods and the sales channel (exist or can be made),
    and the import filter (must be valid SOQL)."""
    checks: list[Check] = []
    gateways = _gateways(config)
    if gateways and org.has("PaymentGateway"):
        rows = client.query(
            soql(
                "SELECT Id, PaymentGatewayName FROM PaymentGateway "
                "WHERE PaymentGatewayName IN {:in}",
                sorted(gateways),
            )
        )
        found = {r.get("PaymentGatewayName") for r in rows}
        for gateway, setting in gateways.items():
            check = f"{setting}: PaymentGateway {gateway!r}"
            if gateway in found:
                checks.append(_ok(check))
            else:
                checks.append(
                    _bad(
                        check,
                        f"no PaymentGateway is named {gateway!r} (the connector never creates "
                        "gateways)",
                        "create the PaymentGateway (with its provider and named credential) or "
                        f"set {setting} to an existing gateway's PaymentGatewayName",
                    )
                )
    if org.has("OrderDeliveryMethod"):
        methods: dict[str, list[str]] = {}
        for key, value in config.delivery_methods.items():
            methods.setdefault(value, []).append(f"delivery_methods.{key}")
        rows = client.query(
            soql("SELECT Id, Name FROM OrderDeliveryMethod WHERE Name IN {:in}", sorted(methods))
        )
        found = {r.get("Name") for r in rows}
        cannot = [o for o in _DELIVERY_RECORDS if not org.createable(o)]
        for method, settings in methods.items():
            check = f"{', '.join(settings)}: OrderDeliveryMethod {method!r}"
            if method in found or not cannot:
                checks.append(_ok(check))
            else:
                checks.append(
                    _bad(
                        check,
                        f"no OrderDeliveryMethod is named {method!r} and the integration user "
                        f"cannot create one ({', '.join(cannot)} not createable)",
                        f"create the OrderDeliveryMethod {method!r}, or give the integration "
                        f"user create access to {', '.join(cannot)}",
                    )
                )
    if org.has("SalesChannel"):
        channel = config.name_for(
            config.sales_channel_name, merchant.merchant_id, merchant.locale, merchant.region
        )
        names = sorted({config.sales_channel_lookup_name, channel})
        rows = client.query(
            soql("SELECT Id FROM SalesChannel WHERE SalesChannelName IN {:in}", names)
        )
        check = f"sales_channel_lookup_name, sales_channel_name: SalesChannel {' or '.join(repr(n) for n in names)}"
        if rows or org.createable("SalesChannel"):
            checks.append(_ok(check))
        else:
            checks.append(
                _bad(
                    check,
                    f"no SalesChannel is named {' or '.join(repr(n) for n in names)} and the "
                    "integration user cannot create one",
                    f"create the SalesChannel {channel!r}, or give the integration user create "
                    "access to SalesChannel",
                )
            )
    if config.filter_query and org.has("FulfillmentOrder"):
        checks.append(_filter(client, config.filter_query))
    return checks


def _filter(client: SalesforceClient, condition: str) -> Check:
    check = "filter_query: FulfillmentOrder"
    try:
        client.query(f"SELECT Id FROM FulfillmentOrder WHERE ({condition}) LIMIT 1")
    except BackendError as exc:
        if exc.status != 400:  # auth, limits, network: not the filter's fault
            raise
        return _bad(
            check,
            f"Salesforce refuses the import filter: {exc.message}",
            "fix filter_query (one SOQL condition on FulfillmentOrder fields)",
        )
    return _ok(check)
