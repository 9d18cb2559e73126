"""The records an order graph points at, found or created exactly as the seed describes.

* Account: the customer's Person Account by ``PersonEmail`` (orgs with Person Accounts) ->
  the default account (``MerchantId-Locale-Region``) -> created.
* Pricebook2 ``MerchantId-Locale-Region`` -> created (products get their price-book entries
  there, after a standard price where the org has a standard price book).
* SalesChannel ``POS`` -> ``MerchantId-Locale-Region-POS`` -> created.
* OrderDeliveryMethod by name (``FulfillmentType-FulfillmentSubType`` through the
  ``delivery_methods`` mapping) -> created with its Product2 and dummy PricebookEntry.
* Product2 + PricebookEntry per SKU (``StockKeepingUnit``) -> created.
* PaymentGateway by name for cards and cash, when configured (never created).

Everything found is cached for the merchant, and kept in the bridge's store
(``MerchantContext.cache``, 24 hours) so that a new process starts warm: a warm merchant pays
**zero** API calls here. A miss pays one ``/composite`` call of lookups (plus the price-book
entries of pre-existing delivery products when needed); what is missing is then created by
the first nodes of the sale's own graph (:meth:`Lookups.resolve_inline`, the single post's
path), or by one graph of its own for a whole batch (:meth:`Lookups.resolve_many`, the export
job's path: one round for all their emails, SKUs and delivery methods). A customer email that
is all a sale lacks costs no call of its own: :meth:`Lookups.account_query` gives the query the
sale's own ``/composite`` request opens with (docs/salesforce.md, "Lookups"). With
``catalog_sync`` and a fresh catalog index (:mod:`omsbridge_salesforce.catalog`) no SKU is
queried: the index gives known SKUs' ids, and a SKU it lacks is new, created by the sale's own
nodes; :meth:`Lookups.duplicate_check` tells, in the same request, whether the merchant made one
since the last sync.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from omsbridge import Conflict, MerchantContext, Rejected, Transaction
from omsbridge_salesforce.catalog import Catalog, CatalogIndex
from omsbridge_salesforce.client import SalesforceClient
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.graph import DeliveryMethodRef, OrderGraph, OrderRefs, ProductRef
from omsbridge_salesforce.soql import soql

__all__ = [
    "ACCOUNT_QUERY_REF",
    "ACCOUNT_QUERY_REF_ID",
    "INLINE_PREFIX",
    "AccountQuery",
    "Inline",
    "Lookups",
    "delivery_sku",
]

log = logging.getLogger(__name__)

_EMAIL_CACHE_SIZE = 10_000
_PERSIST_KEY = "salesforce.lookups"
# How long ids found by one process are trusted by the next: a record deleted in Salesforce
# is noticed anyway (INVALID_CROSS_REFERENCE_KEY / ENTITY_IS_DELETED clear the cache).
_PERSIST_TTL = timedelta(hours=24)
_MISSING = object()
# New SKUs looked up (and created) per round: each costs up to three creation nodes, and the
# creation graph must stay under Salesforce's 500 nodes.
_MAX_NEW_SKUS = 120
# Values per SOQL ``IN (...)`` list, so a query's URL stays well under Salesforce's limits.
_IN_CHUNK = 200


_CHECK_PRODUCTS = "dupprod"
_CHECK_ENTRIES = "duppbe"


def _created_skus(plan: _Plan) -> list[str]:
    """SKUs whose product ``plan`` creates (a node reference, not a known id)."""
    return sorted(sku for sku, (product, _) in plan.products.items() if product.startswith("@{"))


def delivery_sku(method_name: str) -> str:
    """The StockKeepingUnit given to the product of a delivery method the connector creates."""
    return f"DELIVERY-{method_name}"


@attrs.define
class _Need:
    """What one or more transactions need that the cache does not hold yet."""

    emails: set[str] = attrs.field(factory=set)
    account: bool = False
    pricebook: bool = False
    channel: bool = False
    methods: set[str] = attrs.field(factory=set)  # ODM names
    skus: dict[str, tuple[str, Decimal]] = attrs.field(factory=dict)  # sku -> (name, price)
    gateways: set[str] = attrs.field(factory=set)

    def __bool__(self) -> bool:
        return bool(
            self.emails
            or self.account
            or self.pricebook
            or self.channel
            or self.methods
            or self.skus
            or self.gateways
        )


INLINE_PREFIX = "lk"
"""Reference ids of the lookup records a sale's own graph creates start with this."""


@attrs.frozen
class _Plan:
    """Ids (or ``@{ref.id}`` of nodes to be created) of the records a lookup round settled."""

    account: str | None
    pricebook: str | None
    channel: str | None
    products: dict[str, tuple[str, str]]  # sku -> (product, price-book entry)
    methods: dict[str, tuple[str, str | None, str | None]]  # ODM name -> (id, product, entry)


class Inline:
    """Lookup records to create at the start of a sale's graph (see :meth:`Lookups.resolve_inline`).

    Exactly one of :meth:`done` and :meth:`abandon` must be called; until then the merchant's
    lookups are held by this thread.
    """

    def __init__(
        self,
        lookups: Lookups,
        plan: _Plan,
        nodes: list[dict[str, Any]],
        new_skus: Sequence[str] = (),
    ) -> None:
        self._lookups: Lookups | None = lookups
        self._plan = plan
        self.nodes = nodes
        self.new_skus = tuple(new_skus)
        """SKUs these nodes create because a fresh catalog index does not hold them (the
        merchant may have made one since the last sync: :meth:`Lookups.duplicate_check`)."""

    def done(self, ids: dict[str, str]) -> None:
        """The graph committed: cache the created records (``ids``: reference id -> record id)."""
        lookups, self._lookups = self._lookups, None
        if lookups is not None:
            lookups._finish_inline(self._plan, ids)

    def abandon(self) -> None:
        """The graph was not sent or did not commit: cache none of the planned records."""
        lookups, self._lookups = self._lookups, None
        if lookups is not None:
            lookups._finish_inline(None, {})


ACCOUNT_QUERY_REF = "acct"
"""Reference id of the account query that opens a sale's own ``/composite`` request."""
ACCOUNT_QUERY_REF_ID = f"@{{{ACCOUNT_QUERY_REF}.records[0].Id}}"


class AccountQuery:
    """The account query of a sale sent as one ``/composite`` request (see
    :meth:`Lookups.account_query`)."""

    def __init__(
        self, lookups: Lookups, email: str, soql: str, inline: Inline | None = None
    ) -> None:
        self._lookups = lookups
        self.email = email
        self.soql = soql
        self.inline = inline
        """Records to create at the start of the request (SKUs a fresh catalog index does not
        hold); the caller ends it like any :class:`Inline`."""

    def answered(self, rows: Sequence[dict[str, Any]]) -> None:
        """The request committed: cache the account the query found for the email."""
        self._lookups._answer_account(self.email, rows)


class Lookups:
    """Per-merchant, thread-safe cache of the ids an order graph needs."""

    def __init__(
        self, client: SalesforceClient, config: SalesforceConfig, merchant: MerchantContext
    ) -> None:
        self._client = client
        self._config = config
        self._persisted = merchant.cache
        self._restored = False
        name = lambda template: config.name_for(  # noqa: E731
            template, merchant.merchant_id, merchant.locale, merchant.region
        )
        self.default_account_name = name(config.default_account_name)
        self.price_book_name = name(config.price_book_name)
        self.sales_channel_name = name(config.sales_channel_name)
        self._lock = threading.RLock()
        self._account: str | None = None
        self._emails: OrderedDict[str, str | None] = OrderedDict()
        self._pricebook: str | None = None
        self._standard: Any = _MISSING  # standard price book id, None if the org has none
        self._channel: str | None = None
        self._methods: dict[str, DeliveryMethodRef] = {}
        self._products: dict[str, ProductRef] = {}
        self._gateways: dict[str, str] = {}
        self._locations: dict[str, str] = {}
        # Scratch state of one lookup round (under the lock).
        self._found_products: dict[str, str] = {}
        self._found_entries: dict[str, dict[str, str]] = {}
        self._found_methods: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, tuple[str, str | None, str | None]] = {}
        self.catalog: Catalog | None = None
        """The merchant's catalog index (``catalog_sync``), None when not configured."""
        if config.catalog_sync is not None:
            self.catalog = Catalog(client, config, merchant, price_book_name=self.price_book_name)
            self.catalog.on_duplicates = self._prefer_catalog

    def clear(self) -> None:
        """Forget everything (after Salesforce says a cached id no longer exists), here and in
        the store."""
        with self._lock:
            self._restored = True  # what the store holds is as stale: never read it back
            if self.catalog is not None:
                self.catalog.distrust()  # it may hold the deleted ids too: until its next sync
            if self._persisted is not None:
                self._persisted.drop(_PERSIST_KEY)
            self._account = self._pricebook = self._channel = None
            self._standard = _MISSING
            self._emails.clear()
            self._methods.clear()
            self._products.clear()
            self._gateways.clear()
            self._locations.clear()

    # -- persistence (the bridge's store: a new process starts warm) -----------------------------

    def _restore(self) -> None:
        """Load what an earlier process found (once, at the first lookup; under the lock)."""
        self._restored = True
        text = self._persisted.get(_PERSIST_KEY, _PERSIST_TTL) if self._persisted else None
        if not text:
            return
        try:
            data = json.loads(text)
            if data.get("v") != 1 or data.get("names") != self._names():
                return  # another version, or the merchant's settings changed
            self._account = data["account"]
            self._pricebook = data["pricebook"]
            self._standard = data["standard"]
            self._channel = data["channel"]
            self._emails.update(data["emails"])
            self._methods.update({k: DeliveryMethodRef(*v) for k, v in data["methods"].items()})
            self._products.update({k: ProductRef(*v) for k, v in data["products"].items()})
            self._gateways.update(data["gateways"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("stored Salesforce lookups unreadable (%s); looking up again", exc)

    def _save(self) -> None:
        """Keep what is cached now in the store (after a lookup round changed it)."""
        if self._persisted is None or self._standard is _MISSING:
            return
        data = {
            "v": 1,
            "names": self._names(),
            "account": self._account,
            "pricebook": self._pricebook,
            "standard": self._standard,
            "channel": self._channel,
            "emails": dict(self._emails),
            "methods": {k: attrs.astuple(v) for k, v in self._methods.items()},
            "products": {k: attrs.astuple(v) for k, v in self._products.items()},
            "gateways": self._gateways,
        }
        self._persisted.put(_PERSIST_KEY, json.dumps(data, separators=(",", ":")))

    def _names(self) -> list[Any]:
        return [
            self.default_account_name,
            self.price_book_name,
            self.sales_channel_name,
            self._config.person_accounts,
        ]

    # -- public -----------------------------------------------------------------------------------

    def store_location(self, store_id: str) -> str:
        """The Location id of a POS store, through the ORDER_STORE_ID field of ``custom_fields``
        (cached; a store without a Location is refused, naming the field to fill)."""
        found = self._locations.get(store_id)
        if found is not None:
            return found
        field = self._config.store_id_field
        if field is None:
            raise Rejected(
                "take-with lines are fulfilled at the store's Location: add a custom_fields "
                'entry { oms_field_name = "POS_Store_Id__c" } (ORDER_STORE_ID on LOCATION), or '
                'set take_with_fulfillment = "flow" when the org fulfils them itself',
                code="NO_STORE_FIELD",
                backend="salesforce",
            )
        rows = self._client.query(
            soql(f"SELECT Id FROM Location WHERE {field} = {{}} LIMIT 1", store_id)
        )
        if not rows:
            raise Rejected(
                f"no Salesforce Location has {field} = {store_id!r}: set it on the store's "
                "Location so that take-with lines can be fulfilled there",
                code="NO_STORE_LOCATION",
                backend="salesforce",
            )
        with self._lock:
            self._locations[store_id] = rows[0]["Id"]
        return str(rows[0]["Id"])

    def resolve(self, transaction: Transaction) -> OrderRefs:
        """The ids for ``transaction``'s graph; looks up and creates only what is not cached."""
        refs = self._from_cache(transaction)
        if refs is not None:
            return refs
        with self._lock:
            if not self._restored:
                self._restore()
            refs = self._from_cache(transaction)
            if refs is not None:
                return refs
            self._fill_retrying([transaction])
            refs = self._from_cache(transaction)
            assert refs is not None, "lookups left something unresolved"
            return refs

    def resolve_many(self, transactions: Sequence[Transaction]) -> list[OrderRefs]:
        """The ids for each transaction's graph, looked up (and created) for all of them at once:
        one lookup round per :data:`_MAX_NEW_SKUS` new SKUs, zero calls when all is cached.
        Raises like :meth:`resolve` when a round fails (the caller isolates the culprit)."""
        with self._lock:
            if not self._restored:
                self._restore()
            group: list[Transaction] = []
            new_skus: set[str] = set()
            # What the cache answers now is kept: only the others are looked up again below.
            cached: list[OrderRefs | None] = []
            for transaction in transactions:
                cached.append(self._from_cache(transaction))
                if cached[-1] is not None:
                    continue
                skus = {li.sku for li in transaction.sale_lines if li.sku not in self._products}
                if group and len(new_skus | skus) > _MAX_NEW_SKUS:
                    self._fill_retrying(group)
                    group, new_skus = [], set()
                group.append(transaction)
                new_skus |= skus
            if group:
                self._fill_retrying(group)
            out = []
            for transaction, refs in zip(transactions, cached, strict=True):
                if refs is None:
                    refs = self._from_cache(transaction)
                    assert refs is not None, "lookups left something unresolved"
                out.append(refs)
            return out

    def _fill_retrying(self, transactions: Sequence[Transaction]) -> None:
        try:
            self._fill(transactions)
        except Conflict:
            # Another process created the same record between our query and our insert:
            # everything it made is now findable, so one more round settles it.
            log.info("lookup creation raced with another writer; looking up again")
            self._fill(transactions)

    # -- cache ----------------------------------------------------------------------------------

    def _method_names(self, transaction: Transaction) -> dict[str, str]:
        """Fulfillment TYPE-SUBTYPE -> ODM name for every group and charge of the sale part."""
        methods = {f.method_name for f in transaction.fulfillment_groups()}
        methods |= {c.fulfillment.method_name for c in transaction.charges}
        return {m: self._config.delivery_method_name(m) for m in sorted(methods)}

    def _charged_methods(self, transaction: Transaction) -> set[str]:
        return {
            self._config.delivery_method_name(c.fulfillment.method_name)
            for c in transaction.charges
        }

    def _needs(self, transactions: Sequence[Transaction]) -> _Need:
        need = _Need()
        if self._account is None:
            need.account = True
        need.pricebook = self._pricebook is None or self._standard is _MISSING
        need.channel = self._channel is None
        for transaction in transactions:
            email = (
                transaction.customer.email.lower()
                if transaction.customer and transaction.customer.email
                else None
            )
            if email is not None and email not in self._emails:
                need.emails.add(email)
            charged = self._charged_methods(transaction)
            for name in self._method_names(transaction).values():
                ref = self._methods.get(name)
                if ref is None or (name in charged and not ref.pricebook_entry_id):
                    need.methods.add(name)
            for line in transaction.sale_lines:
                if line.sku not in self._products and line.sku not in need.skus:
                    need.skus[line.sku] = (line.name or line.sku, line.unit_price)
            for gateway in self._gateway_names(transaction):
                if gateway not in self._gateways:
                    need.gateways.add(gateway)
        return need

    def _gateway_names(self, transaction: Transaction) -> set[str]:
        from omsbridge import CardTender, CashTender

        names = set()
        for tender in transaction.tenders:
            if isinstance(tender, CardTender) and self._config.payment_gateway_name:
                names.add(self._config.payment_gateway_name)
            if isinstance(tender, CashTender) and self._config.cash_payment_gateway_name:
                names.add(self._config.cash_payment_gateway_name)
        return names

    def _from_cache(self, transaction: Transaction) -> OrderRefs | None:
        try:
            return self._cached_refs(transaction)
        except KeyError:  # cleared by another thread meanwhile: take the locked path
            return None

    def _cached_refs(self, transaction: Transaction) -> OrderRefs | None:
        if self._needs([transaction]):
            return None
        customer = transaction.customer
        email = customer.email.lower() if customer and customer.email else None
        account = (self._emails.get(email) if email else None) or self._account
        if account is None or self._pricebook is None:
            return None
        methods = {
            method: self._methods[name] for method, name in self._method_names(transaction).items()
        }
        return OrderRefs(
            account_id=account,
            pricebook_id=self._pricebook,
            sales_channel_id=self._channel,
            delivery_methods=methods,
            products={line.sku: self._products[line.sku] for line in transaction.sale_lines},
            card_gateway_id=self._gateways.get(self._config.payment_gateway_name or ""),
            cash_gateway_id=self._gateways.get(self._config.cash_payment_gateway_name or ""),
        )

    # -- lookups ------------------------------------------------------------------------------

    def _fill(self, transactions: Sequence[Transaction]) -> None:
        self._pending.clear()
        self._look_up(transactions)
        self._create_missing(transactions)
        self._save()

    def _look_up(self, transactions: Sequence[Transaction]) -> bool:
        """One lookup round for what ``transactions`` need: the SKUs from a fresh catalog index
        when there is one (no query for them; returns True), everything else by query."""
        need = self._needs(transactions)
        index = self._usable_index(need)
        if index is None:
            if self.catalog is not None and need.skus:
                self.catalog.stats["stale_fallbacks"] += 1
                log.info("no fresh catalog index for %d SKU(s): looking them up", len(need.skus))
            found = self._run_queries(self._queries(need))
            self._take_found(need, found)
            self._find_delivery_entries()
            return False
        asked = attrs.evolve(need, skus={})
        self._take_found(asked, self._run_queries(self._queries(asked)))
        self._take_index(index, need.skus)
        return True

    def duplicate_check(self, skus: Sequence[str]) -> dict[str, str]:
        """Queries (reference id -> SOQL) to send after the nodes creating ``skus`` in the same
        ``/composite`` request: every product with those SKUs (the one just created among
        them) and their entries in the two books. Answered by :meth:`checked`."""
        return {
            _CHECK_PRODUCTS: soql(
                "SELECT Id, StockKeepingUnit, CreatedDate FROM Product2 "
                "WHERE StockKeepingUnit IN {:in}",
                sorted(skus),
            ),
            _CHECK_ENTRIES: soql(
                "SELECT Id, Product2Id, Pricebook2Id FROM PricebookEntry "
                "WHERE Product2.StockKeepingUnit IN {:in} "
                "AND (Pricebook2.Name = {} OR Pricebook2.IsStandard = true)",
                sorted(skus),
                self.price_book_name,
            ),
        }

    def checked(self, skus: Sequence[str], rows: Mapping[str, Sequence[dict[str, Any]]]) -> None:
        """The answer of :meth:`duplicate_check` (the request committed): a SKU held by more
        than one product was made by the merchant after the last sync. The index learns the
        products and entries, and the SKU's product is the oldest (the merchant's) from the
        next sale on; logged and counted (``duplicates``)."""
        catalog = self.catalog
        if catalog is None:
            return
        products = rows.get(_CHECK_PRODUCTS, [])
        by_sku: dict[str, list[dict[str, Any]]] = {}
        for row in products:
            by_sku.setdefault(row.get("StockKeepingUnit") or "", []).append(row)
        twins = sorted(sku for sku in skus if len(by_sku.get(sku, [])) > 1)
        if not twins:
            return
        entries: dict[str, dict[str, str]] = {}
        for entry in rows.get(_CHECK_ENTRIES, []):
            entries.setdefault(entry["Product2Id"], {})[entry["Pricebook2Id"]] = entry["Id"]
        chosen = catalog.learn(
            [(r["Id"], sku, r.get("CreatedDate") or "") for sku in twins for r in by_sku[sku]],
            entries,
        )
        catalog.stats["duplicates"] += len(twins)
        log.warning(
            "SKU(s) %s: the sale created a Product2 the merchant had made since the last catalog "
            "sync; the merchant's (older) product is used from the next sale on",
            ", ".join(twins),
        )
        self._prefer_catalog(chosen)

    def _usable_index(self, need: _Need) -> CatalogIndex | None:
        """The catalog index, when it can answer every SKU of ``need``: fresh, for the price
        books the lookups hold, and nothing but SKUs and customer emails missing (a set-up
        merchant; the other records are looked up as without an index)."""
        catalog = self.catalog
        if catalog is None or not need.skus:
            return None
        if (
            need.account
            or need.pricebook
            or need.channel
            or need.methods
            or need.gateways
            or self._standard is _MISSING
        ):
            return None
        index = catalog.fresh_index()
        if index is None or index.pricebook != self._pricebook or index.standard != self._standard:
            return None
        return index

    def _take_index(self, index: CatalogIndex, skus: Iterable[str]) -> None:
        """Take the SKUs' ids from the index as a lookup round would from its queries: known
        products with an entry in the merchant's book are cached; the others (absent: new;
        or lacking that entry) are left to the creation nodes."""
        assert self.catalog is not None
        self._found_products, self._found_entries = index.found(skus)
        for sku in skus:
            product = self._found_products.get(sku)
            entry = self._found_entries.get(product or "", {}).get(self._pricebook or "")
            if product is not None and entry:
                self._products[sku] = ProductRef(product, entry)
                self.catalog.stats["index_hits"] += 1
            elif product is None:
                self.catalog.stats["index_new"] += 1

    def _prefer_catalog(self, chosen: dict[str, str]) -> None:
        """A sync found SKUs held by several products: forget the cached ones that are not the
        index's choice (the merchant's, older), so the next sale uses it."""
        with self._lock:
            dropped = [
                sku
                for sku, product in chosen.items()
                if sku in self._products and self._products[sku].product_id != product
            ]
            for sku in dropped:
                del self._products[sku]
            if dropped:
                log.warning(
                    "SKU(s) %s: using the merchant's Product2 from now on", ", ".join(dropped)
                )
                self._save()

    def _run_queries(self, named: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        """Named queries, 25 to a ``/composite`` call; chunked ``prodN``/``pbeN`` merged back."""
        items = list(named.items())
        found: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(items), 25):
            found.update(self._client.queries(dict(items[start : start + 25])))
        merged: dict[str, list[dict[str, Any]]] = {}
        for name, rows in found.items():
            merged.setdefault(name.rstrip("0123456789"), []).extend(rows)
        return merged

    def _queries(self, need: _Need) -> dict[str, str]:
        queries: dict[str, str] = {}
        conditions = []
        if need.account:
            conditions.append(soql("Name = {}", self.default_account_name))
        # Without Person Accounts an org has no PersonEmail: every sale uses the default account.
        emails = sorted(need.emails) if self._config.person_accounts else []
        if len(emails) == 1:
            conditions.append(soql("PersonEmail = {}", emails[0]))
        elif emails:
            conditions.append(soql("PersonEmail IN {:in}", emails))
        if conditions:
            email_field = ", PersonEmail" if self._config.person_accounts else ""
            queries["acct"] = (
                f"SELECT Id, Name{email_field} FROM Account WHERE "
                + " OR ".join(conditions)
                + f" ORDER BY CreatedDate ASC LIMIT {200 if len(emails) <= 1 else 2000}"
            )
        if need.pricebook or need.skus or need.methods:
            queries["pb"] = soql(
                "SELECT Id, Name, IsStandard FROM Pricebook2 WHERE Name = {} OR IsStandard = true",
                self.price_book_name,
            )
        if need.channel:
            queries["sc"] = soql(
                "SELECT Id, SalesChannelName FROM SalesChannel WHERE SalesChannelName IN {:in}",
                [self._config.sales_channel_lookup_name, self.sales_channel_name],
            )
        if need.methods:
            queries["odm"] = soql(
                "SELECT Id, Name, ProductId FROM OrderDeliveryMethod WHERE Name IN {:in}",
                sorted(need.methods),
            )
        skus = sorted(need.skus) + [delivery_sku(n) for n in sorted(need.methods)]
        for n, start in enumerate(range(0, len(skus), _IN_CHUNK)):
            chunk = skus[start : start + _IN_CHUNK]
            suffix = str(n) if n else ""
            queries["prod" + suffix] = soql(
                "SELECT Id, Name, StockKeepingUnit FROM Product2 WHERE StockKeepingUnit IN {:in}",
                chunk,
            )
            queries["pbe" + suffix] = soql(
                "SELECT Id, Product2Id, Pricebook2Id, Product2.StockKeepingUnit "
                "FROM PricebookEntry WHERE Product2.StockKeepingUnit IN {:in} "
                "AND (Pricebook2.Name = {} OR Pricebook2.IsStandard = true)",
                chunk,
                self.price_book_name,
            )
        if need.gateways:
            queries["pgw"] = soql(
                "SELECT Id, PaymentGatewayName FROM PaymentGateway WHERE PaymentGatewayName IN {:in}",
                sorted(need.gateways),
            )
        return queries

    def _take_found(self, need: _Need, found: dict[str, list[dict[str, Any]]]) -> None:
        accounts = found.get("acct", [])
        by_email: dict[str, str] = {}
        for account in accounts:  # oldest first: the first account of an email wins
            by_email.setdefault((account.get("PersonEmail") or "").lower(), account["Id"])
        for email in sorted(need.emails):
            self._remember_email(email, by_email.get(email))
        if need.account:
            self._account = next(
                (a["Id"] for a in accounts if a.get("Name") == self.default_account_name), None
            )
        if "pb" in found:
            books = found["pb"]
            self._pricebook = next(
                (
                    b["Id"]
                    for b in books
                    if b.get("Name") == self.price_book_name and not b.get("IsStandard")
                ),
                None,
            ) or next((b["Id"] for b in books if b.get("Name") == self.price_book_name), None)
            self._standard = next((b["Id"] for b in books if b.get("IsStandard")), None)
        if need.channel:
            channels = {c.get("SalesChannelName"): c["Id"] for c in found.get("sc", [])}
            self._channel = channels.get(self._config.sales_channel_lookup_name) or channels.get(
                self.sales_channel_name
            )
        self._found_products = {p["StockKeepingUnit"]: p["Id"] for p in found.get("prod", [])}
        self._found_entries = {}
        for entry in found.get("pbe", []):
            self._found_entries.setdefault(entry["Product2Id"], {})[entry["Pricebook2Id"]] = entry[
                "Id"
            ]
        self._found_methods = {m["Name"]: m for m in found.get("odm", [])}
        for gateway in found.get("pgw", []):
            self._gateways[gateway["PaymentGatewayName"]] = gateway["Id"]
        missing = need.gateways - set(self._gateways)
        if missing:
            raise Rejected(
                f"PaymentGateway {', '.join(sorted(missing))} not found in Salesforce; create it "
                "or fix payment_gateway_name / cash_payment_gateway_name",
                code="PAYMENT_GATEWAY_NOT_FOUND",
                backend="salesforce",
            )
        for sku, product_id in self._found_products.items():
            entry = self._found_entries.get(product_id, {}).get(self._pricebook or "")
            if entry and sku in need.skus:
                self._products[sku] = ProductRef(product_id, entry)

    def _find_delivery_entries(self) -> None:
        """Price-book entries of delivery products the merchant made (no connector SKU on them)."""
        ids = [
            m["ProductId"]
            for m in self._found_methods.values()
            if m.get("ProductId") and m["ProductId"] not in self._found_entries
        ]
        # A new merchant has no price book yet, but the org's standard book may already price
        # the delivery product: look there too, or creating its standard entry is a duplicate.
        books = [b for b in (self._pricebook, self._standard) if isinstance(b, str)]
        if not ids or not books:
            return
        rows = self._client.query(
            soql(
                "SELECT Id, Product2Id, Pricebook2Id FROM PricebookEntry "
                "WHERE Product2Id IN {:in} AND Pricebook2Id IN {:in}",
                ids,
                books,
            )
        )
        for entry in rows:
            self._found_entries.setdefault(entry["Product2Id"], {})[entry["Pricebook2Id"]] = entry[
                "Id"
            ]

    # -- creation -----------------------------------------------------------------------------

    def _create_missing(self, transactions: Sequence[Transaction]) -> None:
        """Create what the lookups did not find, in one graph of its own (the batch path)."""
        g = OrderGraph("lookups", self._config.api_version)
        plan = self._plan_missing(transactions, g, prefix="")
        if g.nodes:
            log.info("creating %d lookup record(s) for POS orders", len(g.nodes))
            (result,) = self._client.graph([g.payload()], context="create lookup records")
            if not result.successful:
                raise result.error(context="create lookup records")
            ids = {ref: str(node.id) for ref, node in result.nodes.items()}
        else:
            ids = {}
        self._apply_plan(plan, ids)

    def _plan_missing(
        self, transactions: Sequence[Transaction], g: OrderGraph, *, prefix: str
    ) -> _Plan:
        """Add to ``g`` the nodes creating what is missing (reference ids prefixed ``prefix``);
        the plan holds each record's id, or ``@{ref.id}`` for one ``g`` creates."""
        account = self._account
        if account is None:
            account = g.add(f"{prefix}acct", "Account", {"Name": self.default_account_name})
        pricebook = self._pricebook
        if pricebook is None:
            pricebook = g.add(
                f"{prefix}pb",
                "Pricebook2",
                {
                    "Name": self.price_book_name,
                    "IsActive": True,
                    "Description": "Created by omsbridge for POS orders",
                },
            )
        channel = self._channel
        if channel is None:
            channel = g.add(
                f"{prefix}sc",
                "SalesChannel",
                {"SalesChannelName": self.sales_channel_name, "Description": "Point of Sale"},
            )
        products: dict[str, str] = {}  # sku -> id or @{ref}
        entries: dict[str, str] = {}  # sku -> pricebook entry id or @{ref}
        need = self._needs(transactions)
        wanted: dict[str, tuple[str, Decimal, bool]] = {
            sku: (name, price, False) for sku, (name, price) in need.skus.items()
        }
        for name in need.methods:
            method = self._found_methods.get(name)
            if method is None or not method.get("ProductId"):
                wanted[delivery_sku(name)] = (f"Delivery {name}", Decimal(0), True)
        for n, (sku, (name, price, is_delivery)) in enumerate(sorted(wanted.items())):
            product = self._found_products.get(sku)
            if product is None:
                body: dict[str, Any] = {
                    "Name": name[:255],
                    "StockKeepingUnit": sku,
                    "IsActive": True,
                }
                if is_delivery:
                    body["Family"] = "Delivery"
                product = g.add(f"{prefix}p{n}", "Product2", body)
            products[sku] = product
            entries[sku] = self._entry_nodes(g, f"{prefix}p{n}", product, pricebook, price)
        for name in sorted(need.methods):
            method = self._found_methods.get(name)
            if method is not None and method.get("ProductId"):
                product_id = method["ProductId"]
                entry = self._entry_nodes(
                    g, f"{prefix}m{len(g.nodes)}", product_id, pricebook, Decimal(0)
                )
                self._pending_method(name, method["Id"], product_id, entry)
                continue
            sku = delivery_sku(name)
            method_id: str = method["Id"] if method is not None else ""
            if method is None:
                method_id = g.add(
                    f"{prefix}odm{len(g.nodes)}",
                    "OrderDeliveryMethod",
                    {
                        "Name": name,
                        "ReferenceNumber": name,
                        "ProductId": products[sku],
                        "IsActive": True,
                    },
                )
            else:
                g.add(
                    f"{prefix}odmu{len(g.nodes)}",
                    "OrderDeliveryMethod",
                    {"ProductId": products[sku]},
                    method="PATCH",
                    record=method["Id"],
                )
            self._pending_method(name, method_id, products[sku], entries[sku])
        plan = _Plan(
            account=account,
            pricebook=pricebook,
            channel=channel,
            products={
                sku: (products[sku], entries[sku])
                for sku in need.skus
                if sku in products and sku in entries
            },
            methods=dict(self._pending),
        )
        self._pending.clear()
        return plan

    def _apply_plan(self, plan: _Plan, ids: dict[str, str]) -> None:
        """Cache the plan's records, with the ids Salesforce gave the ones a graph created."""

        def real(value: str | None) -> str | None:
            if value and value.startswith("@{"):
                return ids.get(value[2:-4])
            return value

        self._account = real(plan.account)
        self._pricebook = real(plan.pricebook)
        self._channel = real(plan.channel)
        for sku, (product, entry) in plan.products.items():
            product_id, entry_id = real(product), real(entry)
            if product_id and entry_id:
                self._products[sku] = ProductRef(product_id, entry_id)
                if self.catalog is not None and self._pricebook:
                    self.catalog.remember(sku, product_id, {self._pricebook: entry_id})
        for name, (method_id, product_id, entry_id) in plan.methods.items():
            self._methods[name] = DeliveryMethodRef(
                real(method_id) or "", real(product_id), real(entry_id)
            )

    # -- records created inside the sale's own graph ---------------------------------------------

    def resolve_inline(self, transaction: Transaction) -> tuple[OrderRefs, Inline | None]:
        """The ids for ``transaction``'s graph, where what is missing is created by nodes to
        put at the start of that very graph (one call less than :meth:`resolve`).

        With an :class:`Inline`, the caller holds the lookups until it calls
        :meth:`Inline.done` (the graph committed: its ids are cached) or
        :meth:`Inline.abandon` (it did not: nothing is cached), so that no other sale of this
        process creates the same records meanwhile.
        """
        refs = self._from_cache(transaction)
        if refs is not None:
            return refs, None
        self._lock.acquire()
        try:
            if not self._restored:
                self._restore()
            refs = self._from_cache(transaction)
            if refs is not None:
                self._lock.release()
                return refs, None
            self._pending.clear()
            indexed = self._look_up([transaction])
            g = OrderGraph("lookups", self._config.api_version)
            plan = self._plan_missing([transaction], g, prefix=INLINE_PREFIX)
            if not g.nodes:
                self._apply_plan(plan, {})
                self._save()
                refs = self._from_cache(transaction)
                assert refs is not None, "lookups left something unresolved"
                self._lock.release()
                return refs, None
            new = _created_skus(plan) if indexed else ()
            return self._planned_refs(transaction, plan), Inline(self, plan, g.nodes, new)
        except BaseException:
            self._found_entries.clear()
            self._lock.release()
            raise

    # -- a customer email resolved inside the sale's own request ---------------------------------

    def account_query(self, transaction: Transaction) -> tuple[OrderRefs, AccountQuery] | None:
        """When the customer's email is all the cache lacks: the sale's ids with the account as
        a composite reference (``@{acct.records[0].Id}``), and the query that answers it, to be
        sent as the first subrequest of the sale's own ``/composite`` request (one call, not
        two). ``None`` when anything else is missing, or without Person Accounts.

        The query finds the email's Person Account (the oldest, as :meth:`resolve` does), else
        the merchant's default account when that is a business account; it finds nothing only
        when the default account was deleted or is itself a Person Account, and then the whole
        request rolls back (the reference cannot be resolved) and the caller looks up as usual.
        """
        if not self._config.person_accounts:
            return None
        customer = transaction.customer
        email = customer.email.lower() if customer and customer.email else None
        if email is None or email in self._emails:
            return None
        inline: Inline | None = None
        self._lock.acquire()
        try:
            if not self._restored:
                self._restore()
            need = self._needs([transaction])
            others = attrs.evolve(need, emails=set())
            index = None
            if need.emails == {email} and self._account is not None and others:
                index = self._usable_index(others)
            if need.emails != {email} or self._account is None or (others and index is None):
                self._lock.release()
                return None
            if index is not None:
                # With a fresh catalog index the SKUs need no query: known ones are cached now,
                # new ones are created by the request's first nodes (the lock stays held).
                self._pending.clear()
                self._take_index(index, others.skus)
                if attrs.evolve(self._needs([transaction]), emails=set()):
                    g = OrderGraph("lookups", self._config.api_version)
                    plan = self._plan_missing([transaction], g, prefix=INLINE_PREFIX)
                    inline = Inline(self, plan, g.nodes, _created_skus(plan))
                    refs = self._planned_refs(transaction, plan, account=ACCOUNT_QUERY_REF_ID)
                else:
                    self._save()
            if inline is None:
                refs = self._cached_refs_with(transaction, account=ACCOUNT_QUERY_REF_ID)
            default = self._account
        except BaseException:
            self._found_entries.clear()
            self._lock.release()
            raise
        if inline is None:
            self._lock.release()
        query = soql(
            "SELECT Id, PersonEmail FROM Account WHERE PersonEmail = {} "
            "OR (Id = {} AND IsPersonAccount = false) "
            "ORDER BY PersonEmail ASC NULLS LAST, CreatedDate ASC LIMIT 1",
            email,
            default,
        )
        return refs, AccountQuery(self, email, query, inline)

    def _cached_refs_with(self, transaction: Transaction, *, account: str) -> OrderRefs:
        assert self._pricebook is not None
        return OrderRefs(
            account_id=account,
            pricebook_id=self._pricebook,
            sales_channel_id=self._channel,
            delivery_methods={
                method: self._methods[name]
                for method, name in self._method_names(transaction).items()
            },
            products={line.sku: self._products[line.sku] for line in transaction.sale_lines},
            card_gateway_id=self._gateways.get(self._config.payment_gateway_name or ""),
            cash_gateway_id=self._gateways.get(self._config.cash_payment_gateway_name or ""),
        )

    def _answer_account(self, email: str, rows: Sequence[dict[str, Any]]) -> None:
        """Cache what the sale's account query found: the email's Person Account, or none
        (the default account answered: the customer has no account of their own)."""
        with self._lock:
            row = rows[0] if rows else None
            if row is None:
                return
            person = (row.get("PersonEmail") or "").lower() == email
            self._remember_email(email, row["Id"] if person else None)
            self._save()

    def _planned_refs(
        self, transaction: Transaction, plan: _Plan, *, account: str | None = None
    ) -> OrderRefs:
        customer = transaction.customer
        email = customer.email.lower() if customer and customer.email else None
        account = account or (self._emails.get(email) if email else None) or plan.account
        assert account is not None and plan.pricebook is not None

        def method(name: str) -> DeliveryMethodRef:
            if name in plan.methods:
                method_id, product, entry = plan.methods[name]
                return DeliveryMethodRef(method_id, product, entry)
            return self._methods[name]

        def product(sku: str) -> ProductRef:
            if sku in plan.products:
                return ProductRef(*plan.products[sku])
            return self._products[sku]

        return OrderRefs(
            account_id=account,
            pricebook_id=plan.pricebook,
            sales_channel_id=plan.channel,
            delivery_methods={
                m: method(name) for m, name in self._method_names(transaction).items()
            },
            products={line.sku: product(line.sku) for line in transaction.sale_lines},
            card_gateway_id=self._gateways.get(self._config.payment_gateway_name or ""),
            cash_gateway_id=self._gateways.get(self._config.cash_payment_gateway_name or ""),
        )

    def _finish_inline(self, plan: _Plan | None, ids: dict[str, str]) -> None:
        try:
            if plan is not None:
                self._apply_plan(plan, ids)
            else:
                # Not committed: what the lookups found stays cached, nothing they planned.
                self._found_entries.clear()
            self._save()
        finally:
            self._lock.release()

    def _pending_method(
        self, name: str, method_id: str, product: str | None, entry: str | None
    ) -> None:
        self._pending[name] = (method_id, product, entry)

    def _entry_nodes(
        self, g: OrderGraph, ref: str, product: str, pricebook: str, price: Decimal
    ) -> str:
        """Price-book entries a product still lacks (standard first); returns the custom entry.

        Entries added to ``g`` are remembered under the product, so a product that several
        delivery methods share (an org's one "delivery" product) is priced once per book:
        a second entry for the same product and book is a DUPLICATE_VALUE that fails the graph.
        """
        existing = (
            self._found_entries.setdefault(product, {}) if not product.startswith("@{") else {}
        )
        if (
            isinstance(self._standard, str)
            and self._standard not in existing
            and pricebook != self._standard
        ):
            existing[self._standard] = g.add(
                f"{ref}s",
                "PricebookEntry",
                {
                    "Pricebook2Id": self._standard,
                    "Product2Id": product,
                    "UnitPrice": price,
                    "IsActive": True,
                },
            )
        if pricebook in existing:
            return existing[pricebook]
        existing[pricebook] = g.add(
            f"{ref}e",
            "PricebookEntry",
            {
                "Pricebook2Id": pricebook,
                "Product2Id": product,
                "UnitPrice": price,
                "IsActive": True,
            },
        )
        return existing[pricebook]

    def _remember_email(self, email: str, account_id: str | None) -> None:
        self._emails[email] = account_id
        self._emails.move_to_end(email)
        while len(self._emails) > _EMAIL_CACHE_SIZE:
            self._emails.popitem(last=False)

    def cached_skus(self) -> Iterable[str]:
        """SKUs whose product and price-book entry are known (for diagnostics)."""
        return tuple(self._products)
