"""The Salesforce backend's settings: the seed's "PS OMS Configuration", typed and checked.

A merchant's ``[merchants.ID.salesforce]`` table is structured into :class:`SalesforceConfig`
by the core's config loader. Every wrong value is refused with its path, e.g.
``merchants.SHOPNOW.salesforce.url_base: must end with .my.salesforce.com``.
Secrets are references (``{ env = "VAR" }`` / ``{ file = "path" }``) resolved by core.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attrs

from omsbridge import FulfillmentAction, FulfillmentType, InvalidTransaction, Issue, Secret

__all__ = [
    "AUTH_FLOWS",
    "DEFAULT_DELIVERY_METHODS",
    "DEFAULT_FULFILLMENT_STATUSES",
    "CustomField",
    "SalesforceConfig",
]

AUTH_FLOWS = ("password", "client_credentials", "jwt_bearer")
"""The OAuth flows the backend can use."""

DEFAULT_DELIVERY_METHODS: Mapping[str, str] = MappingProxyType(
    {
        "IN_STORE-DEFAULT": "IN_STORE-DEFAULT",
        "IN_STORE-PICKUP_LATER": "IN_STORE-PICKUP_LATER",
        "ONLINE-DEFAULT": "ONLINE-DEFAULT",
        "SHIP_TO_STORE-DEFAULT": "SHIP_TO_STORE-DEFAULT",
    }
)
"""Fulfillment ``TYPE-SUBTYPE`` -> OrderDeliveryMethod name (the seed: the same names)."""

DEFAULT_FULFILLMENT_STATUSES: Mapping[str, str] = MappingProxyType(
    {
        "PICK": "Pickpack",
        "PACK": "Pickpack",
        "READY_FOR_PICKUP": "Ready For Pickup",
        "PICKED_UP": "Picked Up",
        "SHIPPED": "Fulfilled",
        "RECEIVED": "Ready For Pickup",
        "REJECT": "Rejected",
    }
)
"""FulfillmentAction -> FulfillmentOrder.Status; CANCEL uses ``status_canceled_value``."""

_SUMMARY_CREATION = ("connect", "flow")
_LIFE_CYCLE_TYPES = ("MANAGED", "UNMANAGED")
_TAKE_WITH = ("connector", "flow")
_API_VERSION = re.compile(r"^v(\d{2,3})\.\d$")
_MIN_API = 50  # composite graph exists from v50.0
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_METHOD_KEY = re.compile(r"^([A-Z_]+)-([A-Z][A-Z0-9_]{0,39})$")
_NAME_FIELDS = frozenset({"merchant_id", "locale", "region"})
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MIN_SYNC = timedelta(seconds=30)
_MAX_SYNC = timedelta(hours=24)
_MAX_AGE = timedelta(days=7)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
PUBSUB_ENDPOINT = "api.pubsub.salesforce.com:443"
"""Salesforce's Pub/Sub API endpoint."""


class _Problems:
    """Collects every problem of one settings object so all are reported at once."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def text(self, value: Any, path: str, *, optional: bool = False) -> bool:
        if value is None:
            if not optional:
                self.add(path, "is required")
            return False
        if not isinstance(value, str) or not value.strip():
            self.add(path, "must not be blank")
            return False
        return True

    def done(self) -> None:
        # InvalidTransaction is what core's config loader turns into path-named issues
        # (it prefixes each issue path with the table's path).
        if self.issues:
            raise InvalidTransaction(self.issues, code="INVALID_CONFIG", backend="salesforce")


@attrs.frozen
class CustomField:
    """The seed's OMSCustomField: which Salesforce field holds a POS value.

    Only ``pos_field = "ORDER_STORE_ID"`` applied to ``LOCATION`` exists: the Location field
    (e.g. ``warehouseID__c``) that holds the store id a BOPIS order is fulfilled from.
    """

    oms_field_name: str
    pos_field: str = "ORDER_STORE_ID"
    apply_to: list[str] = attrs.field(factory=lambda: ["LOCATION"])

    def __attrs_post_init__(self) -> None:
        check = _Problems()
        if check.text(self.oms_field_name, "oms_field_name") and not _FIELD_NAME.match(
            self.oms_field_name
        ):
            check.add(
                "oms_field_name",
                f"must be a Salesforce field API name, got {self.oms_field_name!r}",
            )
        if self.pos_field != "ORDER_STORE_ID":
            check.add("pos_field", f"only ORDER_STORE_ID is supported, got {self.pos_field!r}")
        if list(self.apply_to) != ["LOCATION"]:
            check.add("apply_to", f'only ["LOCATION"] is supported, got {list(self.apply_to)!r}')
        check.done()


def _merge(defaults: Mapping[str, str]) -> Any:
    def convert(value: Mapping[str, str] | None) -> Mapping[str, str]:
        return MappingProxyType({**defaults, **(value or {})})

    return convert


@attrs.frozen
class SalesforceConfig:
    """Settings of one merchant's Salesforce Order Management org.

    See ``docs/salesforce.md`` for every field with an example.
    """

    url_base: str
    """The org's My Domain URL, ``https://NAME.my.salesforce.com`` (the seed's UrlBase)."""
    client_id: str | None = None
    """Consumer key of the connected app (every flow)."""
    auth_flow: str = "password"
    """``password`` (the seed's set-up), ``client_credentials`` or ``jwt_bearer``."""
    username: str | None = None
    """Integration user (password and JWT bearer flows)."""
    password: Secret | None = None
    """The user's password (password flow)."""
    security_token: Secret | None = None
    """Appended to the password when the caller's IP is not trusted (password flow)."""
    client_secret: Secret | None = None
    """Consumer secret (password and client-credentials flows)."""
    private_key: Secret | None = None
    """PEM RSA private key whose certificate is on the connected app (JWT bearer flow)."""
    audience: str = "https://login.salesforce.com"
    """JWT ``aud`` claim: login.salesforce.com, test.salesforce.com or a community URL."""
    token_url: str | None = None
    """Token endpoint; defaults to ``{url_base}/services/oauth2/token``."""
    service: str = "LIGHTNING"
    """The seed's Service; must be LIGHTNING."""
    api_version: str = "v62.0"
    """REST API version used in every URL (>= v50.0, composite graph)."""
    query_api_version: str | None = None
    """Version used for /query; defaults to ``api_version``."""
    allow_insecure_sandbox_url: bool = False
    """Allow ``http://127.0.0.1:PORT`` as url_base: the local sandbox only."""
    custom_fields: list[CustomField] = attrs.field(factory=list)
    """The seed's OMSCustomField list (ORDER_STORE_ID on LOCATION)."""
    filter_query: str | None = None
    """Extra SOQL condition on FulfillmentOrder for imports, e.g. ``DeliveryMethod.Name = 'X'``."""
    status_canceled_value: str = "Cancelled"
    """Status written when an order or fulfillment order is cancelled."""
    cash_payment_gateway_name: str | None = None
    """PaymentGateway for cash; unset means no gateway on cash payments."""
    payment_gateway_name: str | None = None
    """PaymentGateway for cards (CardPaymentMethod.PaymentGatewayId and Payment)."""
    statuses_to_process: list[str] = attrs.field(factory=list)
    """FulfillmentOrder statuses that are imported (empty: all)."""
    delivery_methods: Mapping[str, str] = attrs.field(
        factory=dict, converter=_merge(DEFAULT_DELIVERY_METHODS)
    )
    """Fulfillment ``TYPE-SUBTYPE`` -> OrderDeliveryMethod name, over the defaults."""
    fulfillment_statuses: Mapping[str, str] = attrs.field(
        factory=dict, converter=_merge(DEFAULT_FULFILLMENT_STATUSES)
    )
    """FulfillmentAction -> FulfillmentOrder Status value, over the defaults."""
    received_quantity_field: str | None = None
    """Number field on FulfillmentOrderLineItem where ship-to-store receipts add the quantity
    received (e.g. ``POS_Quantity_Received__c``); needed for partial receipts."""
    default_account_name: str = "{merchant_id}-{locale}-{region}"
    """Account used when the customer is unknown; placeholders merchant_id, locale, region."""
    price_book_name: str = "{merchant_id}-{locale}-{region}"
    """Pricebook2 the orders use."""
    sales_channel_lookup_name: str = "POS"
    """SalesChannel looked up first."""
    sales_channel_name: str = "{merchant_id}-{locale}-{region}-POS"
    """SalesChannel used (and created) when ``sales_channel_lookup_name`` does not exist."""
    order_external_id_field: str = "POS_Transaction_Id__c"
    """Order field holding the transaction id (unique external id: the idempotency key)."""
    order_item_external_id_field: str = "POS_Line_Id__c"
    """OrderItem field holding the POS line id (copied to OrderItemSummary; used by returns)."""
    order_customer_id_field: str | None = None
    """Order field holding the POS customer id (a text field the org adds, e.g.
    ``POS_Customer_Id__c``), so orders can be searched by it; None: not stored, and a search by
    ``customer_id`` takes only Salesforce Account/Contact ids. On the Order rather than the
    Account because customers without a Person Account share the default account."""
    order_placed_at_field: str | None = None
    """Order text field holding when the sale happened as the POS wrote it, UTC offset included
    (e.g. ``POS_Placed_At__c``: ``2026-11-23T10:15:40-08:00``). Salesforce keeps
    ``OrderedDate`` in UTC only; with this field set, ``placed_at`` reads back in the POS's
    zone. None: not stored, ``placed_at`` reads back in UTC."""
    order_store_id_field: str | None = None
    """Order text field holding the POS store id of the sale (e.g. ``POS_Store_Id__c``), read
    back as ``OrderDetail.store_id``; None: not stored (``store_id`` reads back None)."""
    check_before_post: bool = False
    """Query the order by external id before posting: needed when that field is not unique."""
    multi_currency: bool = False
    """Send and read CurrencyIsoCode: only orgs with multiple currencies have that field."""
    person_accounts: bool = False
    """The org has Person Accounts: customers are found by ``Account.PersonEmail`` and their
    names read from the Account. False (an org without them): every sale uses the default
    account, and the customer's email, phone and name live on the order only."""
    order_summary_creation: str = "connect"
    """Who creates the OrderSummary of a sale: ``connect`` (the connector, through the Connect
    create-order-summary action after activation) or ``flow`` (the org's flow on activation)."""
    order_life_cycle_type: str = "MANAGED"
    """``orderLifeCycleType`` sent to the Connect action (``MANAGED`` or ``UNMANAGED``)."""
    take_with_fulfillment: str = "connector"
    """Who fulfils take-with (IN_STORE-DEFAULT) lines so that they are returnable:
    ``connector`` (a FulfillmentOrder at the store's Location, created and set fulfilled) or
    ``flow`` (the org's automation)."""
    change_reasons: Mapping[str, str] = attrs.field(factory=dict, converter=MappingProxyType)
    """POS return/cancel reason -> ``OrderItemSummaryChange.Reason`` picklist value."""
    default_change_reason: str = "Unknown"
    """Reason picklist value for a POS reason not in ``change_reasons`` (Salesforce's only
    default value is ``Unknown``); the POS text goes to ``reasonForChangeText`` (API >= 59)."""
    send_order_life_cycle_type: Any = None
    """Removed: refused with a message naming ``order_summary_creation``."""
    return_window_days: int | None = None
    """Returns are refused this many days after the order date (seed 004); unset: no limit."""
    connect_timeout: float = 5.0
    """Seconds to open a connection."""
    read_timeout: float = 30.0
    """Seconds to wait for a response."""
    event_transport: str | None = None
    """How fulfillment events arrive: ``pubsub`` (Salesforce's Pub/Sub API over gRPC, its
    recommendation for new integrations) or ``cometd`` (the Streaming API; where HTTP/2 is
    blocked or Pub/Sub is not offered, e.g. Government Cloud). Unset: ``pubsub``, except for
    the loopback sandbox without a ``pubsub_endpoint`` (its gRPC port is its own), which is
    followed over CometD; :attr:`transport` is the one in force."""
    pubsub_endpoint: str = PUBSUB_ENDPOINT
    """``host:port`` of the Pub/Sub API (TLS; plaintext only for the loopback sandbox, whose
    address ``/__sandbox__/info`` gives under ``pubsub``)."""
    pubsub_ca_file: str | None = None
    """PEM file of the certificate(s) the Pub/Sub endpoint's certificate must chain to, in place
    of the system's roots (a sandbox started with TLS gives its self-signed certificate here,
    ``/__sandbox__/info``'s ``merchant_settings``). Set, the endpoint is reached over TLS even
    on loopback."""
    pubsub_batch_size: int = 100
    """Events requested at a time (Pub/Sub flow control, ``num_requested``; at most 100)."""
    stall_timeout: float = 330.0
    """Seconds without any event or keepalive after which the stream is taken as stalled and
    reconnected (Pub/Sub sends a keepalive about every 270 s, CometD answers a long poll every
    110 s)."""

    catalog_sync: str | None = None
    """Keep an index of the merchant's catalog (Product2 SKUs and their price-book entries) in
    the bridge's store, refreshed this often by ``omsbridge worker`` (or ``omsbridge salesforce
    catalog-sync``): a duration such as ``"5m"``, ``"90s"``, ``"1h"`` (30 s to 24 h). With a
    fresh index a sale with a SKU never seen costs no lookup call (docs/salesforce.md, "Catalog
    sync"). Unset: no index, SKUs are looked up."""
    catalog_max_age: str | None = None
    """How old the index may be for sales to trust it (a duration, at least ``catalog_sync``);
    older, SKUs are looked up as without it. Unset: three times ``catalog_sync``."""

    _SECRET_FIELDS: ClassVar[tuple[str, ...]] = (
        "password", "security_token", "client_secret", "private_key",
    )  # fmt: skip

    def __attrs_post_init__(self) -> None:
        check = _Problems()
        self._check_url(check)
        if self.service != "LIGHTNING":
            check.add("service", f"must be LIGHTNING, got {self.service!r}")
        self._check_auth(check)
        for name in ("api_version", "query_api_version"):
            value = getattr(self, name)
            if value is None:
                continue
            match = _API_VERSION.match(value) if isinstance(value, str) else None
            if not match:
                check.add(name, f"must look like v62.0, got {value!r}")
            elif int(match.group(1)) < _MIN_API:
                check.add(name, f"must be v{_MIN_API}.0 or later (composite graph), got {value}")
        for name in ("order_external_id_field", "order_item_external_id_field"):
            value = getattr(self, name)
            if check.text(value, name) and not _FIELD_NAME.match(value):
                check.add(name, f"must be a Salesforce field API name, got {value!r}")
        for name in ("order_customer_id_field", "order_placed_at_field", "order_store_id_field"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _FIELD_NAME.match(value)):
                check.add(name, f"must be a Salesforce field API name, got {value!r}")
        if self.received_quantity_field is not None and not (
            isinstance(self.received_quantity_field, str)
            and _FIELD_NAME.match(self.received_quantity_field)
        ):
            check.add(
                "received_quantity_field",
                f"must be a Salesforce field API name, got {self.received_quantity_field!r}",
            )
        for name in ("default_account_name", "price_book_name", "sales_channel_name"):
            self._check_template(check, name)
        for name in ("status_canceled_value", "sales_channel_lookup_name"):
            check.text(getattr(self, name), name)
        for name in ("cash_payment_gateway_name", "payment_gateway_name", "filter_query"):
            check.text(getattr(self, name), name, optional=True)
        if isinstance(self.filter_query, str) and ";" in self.filter_query:
            check.add("filter_query", "must be one SOQL condition, without ';'")
        for i, status in enumerate(self.statuses_to_process):
            check.text(status, f"statuses_to_process[{i}]")
        self._check_mappings(check)
        self._check_som(check)
        if self.return_window_days is not None and not 1 <= self.return_window_days <= 3650:
            check.add("return_window_days", f"must be 1-3650, got {self.return_window_days}")
        self._check_events(check)
        self._check_catalog(check)
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not 0 < value <= 600
            ):
                check.add(name, f"must be a number of seconds, 0-600, got {value!r}")
        check.done()

    @property
    def transport(self) -> str:
        """The event transport in force (see :attr:`event_transport`)."""
        if self.event_transport is not None:
            return self.event_transport
        sandbox = urlsplit(str(self.url_base)).hostname in _LOOPBACK
        return "cometd" if sandbox and self.pubsub_endpoint == PUBSUB_ENDPOINT else "pubsub"

    @property
    def pubsub_tls(self) -> bool:
        """Whether the Pub/Sub endpoint is reached over TLS (all but the loopback sandbox)."""
        if self.pubsub_ca_file:
            return True
        host = self.pubsub_endpoint.rsplit(":", 1)[0].strip("[]").lower()
        return not (host in _LOOPBACK and self.allow_insecure_sandbox_url)

    @property
    def pubsub_root_certificates(self) -> bytes | None:
        """The PEM bytes of :attr:`pubsub_ca_file` (None: the system's roots)."""
        if not self.pubsub_ca_file:
            return None
        return Path(self.pubsub_ca_file).read_bytes()

    def _check_events(self, check: _Problems) -> None:
        if self.event_transport not in (None, "pubsub", "cometd"):
            check.add("event_transport", f"must be pubsub or cometd, got {self.event_transport!r}")
        if check.text(self.pubsub_endpoint, "pubsub_endpoint"):
            host, _, port = self.pubsub_endpoint.rpartition(":")
            if not host or not port.isdigit():
                check.add("pubsub_endpoint", f"must be host:port, got {self.pubsub_endpoint!r}")
            elif (
                self.event_transport == "pubsub"
                and self.pubsub_endpoint == PUBSUB_ENDPOINT
                and urlsplit(str(self.url_base)).hostname in _LOOPBACK
            ):
                check.add(
                    "pubsub_endpoint",
                    "the local sandbox serves Pub/Sub on its own port: set pubsub_endpoint to "
                    "/__sandbox__/info's 'pubsub' (or event_transport = \"cometd\")",
                )
        self._check_ca_file(check)
        size = self.pubsub_batch_size
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 100:
            check.add("pubsub_batch_size", f"must be 1-100, got {size!r}")
        stall = self.stall_timeout
        if not isinstance(stall, int | float) or isinstance(stall, bool) or not 5 <= stall <= 3600:
            check.add("stall_timeout", f"must be a number of seconds, 5-3600, got {stall!r}")

    def _check_ca_file(self, check: _Problems) -> None:
        name = self.pubsub_ca_file
        if name is None:
            return
        if not isinstance(name, str) or not name:
            check.add("pubsub_ca_file", f"must be the path of a PEM file, got {name!r}")
            return
        path = Path(name)
        try:
            if not path.is_file():
                check.add("pubsub_ca_file", f"{name}: not a file")
                return
            if path.stat().st_size > 1_000_000:
                check.add("pubsub_ca_file", f"{name}: larger than 1 MB, not a certificate file")
                return
            text = path.read_bytes()
        except OSError as exc:
            check.add("pubsub_ca_file", f"{name}: cannot be read ({exc.strerror})")
            return
        if b"-----BEGIN CERTIFICATE-----" not in text:
            check.add("pubsub_ca_file", f"{name}: expected PEM certificates (BEGIN CERTIFICATE)")

    def _check_url(self, check: _Problems) -> None:
        for name in ("url_base", "token_url"):
            value = getattr(self, name)
            if value is None and name == "token_url":
                continue
            if not check.text(value, name):
                continue
            parts = urlsplit(value)
            host = (parts.hostname or "").lower()
            if parts.scheme == "https":
                if name == "url_base" and not host.endswith(".my.salesforce.com"):
                    check.add(name, f"must be https://NAME.my.salesforce.com, got {value!r}")
            elif (
                parts.scheme == "http"
                and host in _LOOPBACK
                and parts.port is not None
                and self.allow_insecure_sandbox_url
            ):
                pass
            elif parts.scheme == "http" and host in _LOOPBACK:
                check.add(
                    name,
                    "http://127.0.0.1:PORT is the local sandbox: set allow_insecure_sandbox_url "
                    "= true (and give the port)",
                )
            else:
                check.add(name, f"must be an https URL, got {value!r}")
            if parts.query or parts.fragment:
                check.add(name, "must not have a query or fragment")

    def _check_auth(self, check: _Problems) -> None:
        if self.auth_flow not in AUTH_FLOWS:
            check.add(
                "auth_flow", f"must be one of {', '.join(AUTH_FLOWS)}, got {self.auth_flow!r}"
            )
            return
        needed = {
            "password": ("client_id", "client_secret", "username", "password"),
            "client_credentials": ("client_id", "client_secret"),
            "jwt_bearer": ("client_id", "username", "private_key"),
        }[self.auth_flow]
        for name in needed:
            if getattr(self, name) is None:
                check.add(name, f"is required for auth_flow = {self.auth_flow!r}")
        for name in ("client_id", "username"):
            check.text(getattr(self, name), name, optional=True)
        if self.security_token is not None and self.auth_flow != "password":
            check.add("security_token", "only applies to auth_flow = 'password'")
        if self.private_key is not None:
            if self.auth_flow != "jwt_bearer":
                check.add("private_key", "only applies to auth_flow = 'jwt_bearer'")
            elif not _is_rsa_pem(self.private_key.reveal()):
                check.add("private_key", "must be a PEM-encoded RSA private key")
        if self.auth_flow == "jwt_bearer":
            parts = urlsplit(self.audience if isinstance(self.audience, str) else "")
            if parts.scheme != "https" or not parts.hostname:
                check.add("audience", f"must be an https URL, got {self.audience!r}")

    def _check_template(self, check: _Problems, name: str) -> None:
        value = getattr(self, name)
        if not check.text(value, name):
            return
        try:
            used = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            check.add(name, f"is not a valid name template: {exc}")
            return
        unknown = used - _NAME_FIELDS
        if unknown:
            check.add(
                name,
                f"unknown placeholder(s) {', '.join(sorted(unknown))}; use merchant_id, "
                "locale, region",
            )

    def _check_mappings(self, check: _Problems) -> None:
        types = {str(t) for t in FulfillmentType}
        for key, value in self.delivery_methods.items():
            match = _METHOD_KEY.match(key) if isinstance(key, str) else None
            if not match or match.group(1) not in types:
                check.add(
                    f"delivery_methods.{key}",
                    f"must be FULFILLMENTTYPE-SUBTYPE with a type of {', '.join(sorted(types))}",
                )
            check.text(value, f"delivery_methods.{key}")
        actions = {str(a) for a in FulfillmentAction}
        for key, value in self.fulfillment_statuses.items():
            if key not in actions:
                check.add(
                    f"fulfillment_statuses.{key}",
                    f"unknown action; use one of {', '.join(sorted(actions))}",
                )
            elif key == "CANCEL":
                check.add(
                    f"fulfillment_statuses.{key}", "CANCEL uses status_canceled_value instead"
                )
            check.text(value, f"fulfillment_statuses.{key}")

    def _check_som(self, check: _Problems) -> None:
        choices = {
            "order_summary_creation": _SUMMARY_CREATION,
            "order_life_cycle_type": _LIFE_CYCLE_TYPES,
            "take_with_fulfillment": _TAKE_WITH,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                check.add(name, f"must be one of {', '.join(allowed)}, got {value!r}")
        if self.send_order_life_cycle_type is not None:
            check.add(
                "send_order_life_cycle_type",
                "was removed: Order has no OrderLifeCycleType field; set order_summary_creation "
                '= "connect" (the connector creates the OrderSummary with order_life_cycle_type) '
                'or "flow" (the org\'s flow creates it)',
            )
        check.text(self.default_change_reason, "default_change_reason")
        for key, value in self.change_reasons.items():
            check.text(value, f"change_reasons.{key}")

    def _check_catalog(self, check: _Problems) -> None:
        interval = _duration(self.catalog_sync)
        if self.catalog_sync is not None and (
            interval is None or not _MIN_SYNC <= interval <= _MAX_SYNC
        ):
            check.add(
                "catalog_sync",
                f'must be a duration from 30s to 24h such as "5m", got {self.catalog_sync!r}',
            )
        if self.catalog_max_age is None:
            return
        if self.catalog_sync is None:
            check.add("catalog_max_age", "needs catalog_sync (the index it limits)")
            return
        max_age = _duration(self.catalog_max_age)
        if max_age is None or max_age > _MAX_AGE:
            check.add(
                "catalog_max_age",
                f'must be a duration up to 7d such as "15m", got {self.catalog_max_age!r}',
            )
        elif interval is not None and max_age < interval:
            check.add(
                "catalog_max_age",
                f"must be at least catalog_sync ({self.catalog_sync}), got {self.catalog_max_age}",
            )

    # -- derived values ------------------------------------------------------------------------

    @property
    def catalog_interval(self) -> timedelta | None:
        """How often the catalog index is refreshed; None without a catalog sync."""
        return _duration(self.catalog_sync)

    @property
    def catalog_max_age_delta(self) -> timedelta | None:
        """How old the catalog index may be for sales to trust it; None without a sync."""
        interval = self.catalog_interval
        if interval is None:
            return None
        return _duration(self.catalog_max_age) or interval * 3

    @property
    def effective_query_api_version(self) -> str:
        """The version used for /query."""
        return self.query_api_version or self.api_version

    @property
    def effective_token_url(self) -> str:
        """Where tokens are requested."""
        return self.token_url or self.url_base.rstrip("/") + "/services/oauth2/token"

    @property
    def api_number(self) -> int:
        """The major number of ``api_version`` (62 for v62.0)."""
        match = _API_VERSION.match(self.api_version)
        return int(match.group(1)) if match else 0

    @property
    def store_id_field(self) -> str | None:
        """The Location field holding the POS store id (ORDER_STORE_ID), when configured."""
        for field in self.custom_fields:
            if field.pos_field == "ORDER_STORE_ID":
                return field.oms_field_name
        return None

    def delivery_method_name(self, method: str) -> str:
        """The OrderDeliveryMethod name for a fulfillment ``TYPE-SUBTYPE`` (itself if unmapped)."""
        return self.delivery_methods.get(method, method)

    def fulfillment_status(self, action: FulfillmentAction) -> str:
        """The FulfillmentOrder status value a store action is written as."""
        if action == FulfillmentAction.CANCEL:
            return self.status_canceled_value
        return self.fulfillment_statuses.get(str(action), str(action))

    def name_for(
        self, template: str, merchant_id: str, locale: str | None, region: str | None
    ) -> str:
        """Fill a name template; a missing locale or region drops its ``-`` segment."""
        parts = {"merchant_id": merchant_id, "locale": locale or "", "region": region or ""}
        name = template.format(**parts)
        return re.sub(r"-{2,}", "-", name).strip("-")


def _duration(value: Any) -> timedelta | None:
    """``"90s"``, ``"5m"``, ``"2h"``, ``"1d"`` as a timedelta; None if not such a string."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _is_rsa_pem(text: str) -> bool:
    try:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        return False
    return isinstance(key, rsa.RSAPrivateKey)
