"""Catalog sync: an index of the merchant's Salesforce catalog kept in the bridge's store.

Opt-in per merchant (``catalog_sync = "5m"``). The index holds every Product2 with a
``StockKeepingUnit`` and its PricebookEntry rows in the merchant's price book and the standard
price book. With a **fresh** index (synced within ``catalog_max_age``) the lookups need no query
for a SKU: a SKU in the index gives its ids, a SKU absent from it is new and is created by the
first nodes of the sale's own graph (:mod:`omsbridge_salesforce.lookups`), so a sale of a set-up
merchant is one API call whatever its SKUs. An index older than its max age is not used: the
lookups query as before (2 calls for a sale with a SKU never seen).

Loading: one ``/composite`` request with three queries (the price books, Product2, PricebookEntry),
then ``nextRecordsUrl`` pages (up to 2,000 rows each) — ``1 + pages`` API calls. Refreshing:
the same request with ``queryAll`` and ``SystemModstamp >= last change - overlap`` (changed,
created and soft-deleted rows, ``IsDeleted``), 1 call while fewer than 2,000 rows changed per
object. A full reload runs every :data:`FULL_RELOAD_EVERY` (rows hard-deleted or purged from the
Recycle Bin are only seen by a full load). See docs/salesforce.md, "Catalog sync".

Two products with one SKU (``StockKeepingUnit`` is not unique): the oldest (``CreatedDate``,
then ``Id``) is the SKU's product. A product the merchant created after the last sync and sold
before the next is created again by the sale; the next sync sees both, logs the duplicate,
counts it, and from then on the merchant's (older) product is used.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote as url_quote

import attrs

from omsbridge import BackendError, MerchantContext
from omsbridge_salesforce.client import SalesforceClient, error_from
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.soql import soql

__all__ = [
    "FULL_RELOAD_EVERY",
    "Catalog",
    "CatalogIndex",
    "SyncReport",
    "catalog_merchants",
    "run_in_worker",
    "sync_due",
]

log = logging.getLogger(__name__)

_PERSIST_KEY = "salesforce.catalog"
# The stored index stays usable as a base for an incremental refresh this long; whether sales
# may trust it is decided by its own sync time against catalog_max_age.
_PERSIST_TTL = timedelta(days=2)
FULL_RELOAD_EVERY = timedelta(hours=24)
"""A full reload at least this often: rows purged from the Recycle Bin are invisible to
``queryAll``, and a full load forgets them."""
# Re-read rows modified this long before the last change seen: a transaction that commits
# late can carry an earlier SystemModstamp (Salesforce's replication guidance).
_OVERLAP = timedelta(minutes=5)
# A process whose index went stale re-reads the store at most this often (another process,
# the worker, may have synced meanwhile).
_RELOAD_PAUSE = timedelta(seconds=15)
# The worker task looks for due merchants this often; after a failed sync it tries again
# after min(interval, _RETRY), not at every tick.
_TASK_TICK = timedelta(seconds=5)
_RETRY = timedelta(seconds=60)


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(text: str | None) -> datetime | None:
    """A Salesforce datetime (``2026-12-07T01:43:13.994+0000``) as an aware datetime."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None


@attrs.define
class CatalogIndex:
    """The merchant's products with a SKU and their price-book entries, as last synced."""

    pricebook: str | None = None
    """The merchant's price book (``price_book_name``), None while the org has none."""
    standard: str | None = None
    """The org's standard price book, None if it has none."""
    products: dict[str, tuple[str, str]] = attrs.field(factory=dict)
    """Product2 id -> (StockKeepingUnit, CreatedDate)."""
    entries: dict[str, dict[str, str]] = attrs.field(factory=dict)
    """Product2 id -> {Pricebook2 id: PricebookEntry id} (the two books only)."""
    marks: dict[str, str] = attrs.field(factory=dict)
    """Object -> the latest SystemModstamp seen (where the next refresh starts)."""
    marked_at: dict[str, str] = attrs.field(factory=dict)
    """Object -> when (this machine's clock) its mark was first seen."""
    settled: dict[str, str] = attrs.field(factory=dict)
    """Object -> a SystemModstamp up to which every row was read after it had surely committed
    (a refresh ran at least the overlap after that mark was seen): not re-read again."""
    synced_at: datetime | None = None
    """When the last sync finished (this machine's clock)."""
    full_at: datetime | None = None
    """When the last full load finished."""
    by_sku: dict[str, str] = attrs.field(factory=dict, eq=False)
    """StockKeepingUnit -> the SKU's product (the oldest of its products); derived."""

    def rebuild(self) -> set[str]:
        """Recompute :attr:`by_sku`; returns the SKUs held by more than one product."""
        chosen: dict[str, tuple[str, str, str]] = {}
        counts: dict[str, int] = {}
        for product, (sku, created) in self.products.items():
            counts[sku] = counts.get(sku, 0) + 1
            key = (created, product, sku)
            if sku not in chosen or key < chosen[sku]:
                chosen[sku] = key
        self.by_sku = {sku: key[1] for sku, key in chosen.items()}
        return {sku for sku, n in counts.items() if n > 1}

    def fresh(self, max_age: timedelta, now: datetime | None = None) -> bool:
        """Whether the last sync is recent enough for sales to trust the index."""
        return self.synced_at is not None and (now or _now()) - self.synced_at <= max_age

    def found(self, skus: Iterable[str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        """For ``skus``: SKU -> product id of those in the index, and their entries by book."""
        products = {sku: self.by_sku[sku] for sku in skus if sku in self.by_sku}
        entries = {p: dict(self.entries.get(p, {})) for p in products.values()}
        return products, entries

    def remember(self, sku: str, product: str, entries: Mapping[str, str]) -> None:
        """A product (and entries) the bridge itself just created: known until the next sync."""
        created = _now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"  # Salesforce's shape
        self.products.setdefault(product, (sku, created))
        self.entries.setdefault(product, {}).update(entries)
        self.by_sku.setdefault(sku, product)

    def dumps(self, names: list[Any]) -> str:
        """The index as the JSON kept in the store."""
        return json.dumps(
            {
                "v": 1,
                "names": names,
                "pricebook": self.pricebook,
                "standard": self.standard,
                "products": self.products,
                "entries": self.entries,
                "marks": self.marks,
                "marked_at": self.marked_at,
                "settled": self.settled,
                "synced_at": self.synced_at.isoformat() if self.synced_at else None,
                "full_at": self.full_at.isoformat() if self.full_at else None,
            },
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str, names: list[Any]) -> CatalogIndex | None:
        """The index from its stored JSON; None when unreadable or for other settings."""
        try:
            data = json.loads(text)
            if data.get("v") != 1 or data.get("names") != names:
                return None
            index = cls(
                pricebook=data["pricebook"],
                standard=data["standard"],
                products={k: (v[0], v[1]) for k, v in data["products"].items()},
                entries={k: dict(v) for k, v in data["entries"].items()},
                marks=dict(data["marks"]),
                marked_at=dict(data["marked_at"]),
                settled=dict(data["settled"]),
                synced_at=datetime.fromisoformat(data["synced_at"]) if data["synced_at"] else None,
                full_at=datetime.fromisoformat(data["full_at"]) if data["full_at"] else None,
            )
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("stored Salesforce catalog index unreadable (%s); loading again", exc)
            return None
        index.rebuild()
        return index


@attrs.frozen
class SyncReport:
    """What one catalog sync did."""

    full: bool
    calls: int
    """API calls the sync made (the composite request and every further page)."""
    changed: int
    """Product2 and PricebookEntry rows read."""
    products: int
    """Products with a SKU in the index after the sync."""
    duplicates: tuple[str, ...]
    """SKUs newly found held by more than one product."""


class Catalog:
    """One merchant's catalog index: synced on demand, persisted in the bridge's store, read by
    the lookups (:meth:`fresh_index`)."""

    def __init__(
        self, client: SalesforceClient, config: SalesforceConfig, merchant: MerchantContext,
        *, price_book_name: str,
    ) -> None:  # fmt: skip
        assert config.catalog_interval is not None and config.catalog_max_age_delta is not None
        self._client = client
        self._config = config
        self._persisted = merchant.cache
        self.price_book_name = price_book_name
        self.interval: timedelta = config.catalog_interval
        self.max_age: timedelta = config.catalog_max_age_delta
        self._index: CatalogIndex | None = None
        self._loaded_at: datetime | None = None
        self._distrusted_at: datetime | None = None
        self._failed_at: datetime | None = None
        self._reported: set[str] = set()
        self._lock = threading.Lock()  # one sync at a time
        # Guards the index's dicts: a sale's thread adds to them while a sync copies them.
        self._mutate = threading.Lock()
        self.on_duplicates: Callable[[dict[str, str]], None] | None = None
        """Told SKU -> chosen product when a sync finds SKUs held by several products."""
        self.stats: dict[str, int] = {
            "syncs": 0,
            "full_loads": 0,
            "sync_calls": 0,
            "sync_failures": 0,
            "duplicates": 0,
            "index_hits": 0,
            "index_new": 0,
            "stale_fallbacks": 0,
        }

    def _names(self) -> list[Any]:
        return [self.price_book_name]

    # -- read side (the lookups) --------------------------------------------------------------------

    def fresh_index(self) -> CatalogIndex | None:
        """The index if its last sync is within ``catalog_max_age`` (re-reading the store when
        this process's copy is older: the worker may have synced); None otherwise."""
        now = _now()
        index = self._index
        if self._trusted(index, self.max_age, now):
            return index
        if self._loaded_at is None or now - self._loaded_at >= _RELOAD_PAUSE:
            self._loaded_at = now
            stored = self._load_stored()
            if stored is not None and (index is None or _newer(stored, index)):
                self._index = index = stored
        return index if self._trusted(index, self.max_age, now) else None

    def _trusted(self, index: CatalogIndex | None, age: timedelta, now: datetime) -> bool:
        """Fresh within ``age``, and synced after the last :meth:`distrust`."""
        if index is None or not index.fresh(age, now):
            return False
        since = self._distrusted_at
        return since is None or (index.synced_at is not None and index.synced_at > since)

    def distrust(self) -> None:
        """A cached id turned out deleted: do not use the index until a sync after now (this
        process's or another's, read from the store)."""
        self._distrusted_at = _now()

    def remember(self, sku: str, product: str, entries: Mapping[str, str]) -> None:
        """The bridge created ``product`` for ``sku`` (in a sale's graph)."""
        index = self._index
        if index is not None:
            with self._mutate:
                index.remember(sku, product, entries)

    def learn(
        self, products: Iterable[tuple[str, str, str]], entries: Mapping[str, Mapping[str, str]]
    ) -> dict[str, str]:
        """Products (id, SKU, CreatedDate) and their entries found outside a sync (a sale's
        duplicate check); returns SKU -> the SKU's product now. Kept in memory: the next sync
        saves what it finds."""
        index = self._index
        if index is None:
            return {}
        skus = set()
        with self._mutate:
            for product, sku, created in products:
                index.products[product] = (sku, created)
                index.entries.setdefault(product, {}).update(entries.get(product, {}))
                skus.add(sku)
            index.rebuild()
        self._reported |= skus  # the next sync need not report them again
        return {sku: index.by_sku[sku] for sku in skus if sku in index.by_sku}

    def _load_stored(self) -> CatalogIndex | None:
        if self._persisted is None:
            return None
        text = self._persisted.get(_PERSIST_KEY, _PERSIST_TTL)
        return CatalogIndex.loads(text, self._names()) if text else None

    # -- write side (the worker task, the CLI) ----------------------------------------------------

    def due(self) -> bool:
        """Whether a sync is due (no index, or the last sync is older than the interval, counting
        one another process saved in the store)."""
        now = _now()
        index = self._index
        if self._trusted(index, self.interval, now):
            return False
        if self._failed_at is not None and now - self._failed_at < min(self.interval, _RETRY):
            return False  # the last attempt failed: not every tick against a failing org
        stored = self._load_stored()  # only now: the stored index can be large
        if stored is not None and (index is None or _newer(stored, index)):
            self._index = index = stored
        return not self._trusted(index, self.interval, now)

    def sync(self, *, full: bool = False) -> SyncReport:
        """Load (``full``, or no index, or the last full load older than a day) or refresh the
        index, then save it in the store. Raises the client's errors (nothing is changed)."""
        with self._lock:
            try:
                return self._sync(full)
            except BackendError:
                self.stats["sync_failures"] += 1
                self._failed_at = _now()
                raise

    def _sync(self, full: bool) -> SyncReport:
        base = self._index
        stored = self._load_stored()  # another worker may have synced since
        if stored is not None and (base is None or _newer(stored, base)):
            base = stored
        now = _now()
        if base is None or base.full_at is None or now - base.full_at > FULL_RELOAD_EVERY:
            full = True
        index = CatalogIndex() if full or base is None else attrs.evolve(base)
        if not full:
            with self._mutate:
                index.products = dict(index.products)
                index.entries = {k: dict(v) for k, v in index.entries.items()}
                index.marks = dict(index.marks)
                index.marked_at = dict(index.marked_at)
                index.settled = dict(index.settled)
        # A mark seen at least the overlap ago is settled by this refresh: every transaction
        # stamped before it has committed by now, so this query reads all of them.
        settling = {
            sobject: mark
            for sobject, mark in index.marks.items()
            if (seen := _parse_local(index.marked_at.get(sobject))) is not None
            and now - seen >= _OVERLAP
        }
        queries = self._queries(index, full)
        calls = 1
        results = self._client.composite(
            [
                {"method": "GET", "url": self._path(endpoint) + "?q=" + url_quote(q, safe=""),
                 "referenceId": name}
                for name, (endpoint, q) in queries.items()
            ],
            context="catalog sync",
        )  # fmt: skip
        rows: dict[str, list[dict[str, Any]]] = {}
        for name in queries:
            sub = results.get(name)
            if sub is None or not sub.ok:
                raise error_from(
                    sub.status if sub else 500, sub.body if sub else {}, context=f"catalog {name}"
                )
            body = sub.body if isinstance(sub.body, dict) else {}
            rows[name] = list(body.get("records") or [])
            next_url = body.get("nextRecordsUrl")
            while next_url:
                page = self._client.query_page(next_url=next_url)
                calls += 1
                rows[name].extend(page.records)
                next_url = page.next_url
        before = dict(index.by_sku)
        self._apply(index, rows)
        if not full:
            index.settled.update(settling)
        duplicates = index.rebuild()
        fresh_dupes = sorted(duplicates - self._reported)
        self._reported = duplicates
        index.synced_at = _now()
        if full:
            index.full_at = index.synced_at
        self._index = index
        if self._persisted is not None:
            self._persisted.put(_PERSIST_KEY, index.dumps(self._names()))
        self.stats["syncs"] += 1
        self.stats["full_loads"] += int(full)
        self.stats["sync_calls"] += calls
        self.stats["duplicates"] += len(fresh_dupes)
        if fresh_dupes:
            log.warning(
                "catalog sync: SKU(s) %s held by more than one Product2 (one created by a sale "
                "before the sync saw the merchant's); using the oldest product from now on",
                ", ".join(fresh_dupes[:20]),
            )
        changed = {
            sku: product
            for sku in duplicates
            if (product := index.by_sku.get(sku)) is not None and before.get(sku) != product
        }
        if changed and self.on_duplicates is not None:
            self.on_duplicates(changed)
        count = sum(len(r) for n, r in rows.items() if n != "pb")
        log.info(
            "catalog sync (%s): %d row(s) read in %d call(s); %d product(s) indexed",
            "full" if full else "incremental",
            count,
            calls,
            len(index.by_sku),
        )
        return SyncReport(full, calls, count, len(index.by_sku), tuple(fresh_dupes))

    def _path(self, endpoint: str) -> str:
        return self._client.data_path(f"/{endpoint}", query=True)

    def _queries(self, index: CatalogIndex, full: bool) -> dict[str, tuple[str, str]]:
        books = soql("(Pricebook2.Name = {} OR Pricebook2.IsStandard = true)", self.price_book_name)
        queries = {
            "pb": (
                "query",
                soql(
                    "SELECT Id, Name, IsStandard FROM Pricebook2 "
                    "WHERE Name = {} OR IsStandard = true",
                    self.price_book_name,
                ),
            )
        }
        if full:
            queries["prod"] = (
                "query",
                "SELECT Id, StockKeepingUnit, CreatedDate, SystemModstamp FROM Product2 "
                "WHERE StockKeepingUnit != null",
            )
            queries["pbe"] = (
                "query",
                "SELECT Id, Product2Id, Pricebook2Id, SystemModstamp FROM PricebookEntry "
                f"WHERE {books}",
            )
            return queries
        # queryAll: changed, created and deleted (IsDeleted, in the Recycle Bin) rows alike.
        for name, sobject, fields, where in (
            ("prod", "Product2", "Id, StockKeepingUnit, CreatedDate", ""),
            ("pbe", "PricebookEntry", "Id, Product2Id, Pricebook2Id", f" AND {books}"),
        ):
            since = _stamp(index.marks.get(sobject))
            since = (since - _OVERLAP) if since else datetime(2000, 1, 1, tzinfo=UTC)
            settled = _stamp(index.settled.get(sobject))
            if settled is not None:
                # Its whole second was read once committed (SOQL datetimes are to the second).
                since = max(since, settled.replace(microsecond=0) + timedelta(seconds=1))
            queries[name] = (
                "queryAll",
                soql(
                    f"SELECT {fields}, SystemModstamp, IsDeleted FROM {sobject} "
                    f"WHERE SystemModstamp >= {{}}{where}",
                    since,
                ),
            )
        return queries

    def _apply(self, index: CatalogIndex, rows: dict[str, list[dict[str, Any]]]) -> None:
        books = rows.get("pb", [])
        index.pricebook = next(
            (b["Id"] for b in books
             if b.get("Name") == self.price_book_name and not b.get("IsStandard")),
            None,
        ) or next((b["Id"] for b in books if b.get("Name") == self.price_book_name), None)  # fmt: skip
        index.standard = next((b["Id"] for b in books if b.get("IsStandard")), None)
        for row in rows.get("prod", []):
            product = row["Id"]
            sku = row.get("StockKeepingUnit")
            if row.get("IsDeleted") or not sku:
                index.products.pop(product, None)
                index.entries.pop(product, None)
            else:
                index.products[product] = (sku, row.get("CreatedDate") or "")
            _mark(index, "Product2", row)
        wanted = {b for b in (index.pricebook, index.standard) if b}
        for row in rows.get("pbe", []):
            product, book = row.get("Product2Id"), row.get("Pricebook2Id")
            if product and book:
                by_book = index.entries.setdefault(product, {})
                if row.get("IsDeleted") or book not in wanted:
                    if by_book.get(book) == row["Id"]:
                        del by_book[book]
                else:
                    by_book[book] = row["Id"]
                if not by_book:
                    del index.entries[product]
            _mark(index, "PricebookEntry", row)
        # Entries of products no longer indexed (deleted, or their SKU cleared) are dropped.
        for product in [p for p in index.entries if p not in index.products]:
            del index.entries[product]


def _mark(index: CatalogIndex, sobject: str, row: Mapping[str, Any]) -> None:
    stamp = row.get("SystemModstamp")
    seen = _stamp(index.marks.get(sobject))
    new = _stamp(stamp)
    if new is not None and (seen is None or new > seen):
        index.marks[sobject] = str(stamp)
        index.marked_at[sobject] = _now().isoformat()


def _parse_local(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _newer(a: CatalogIndex, b: CatalogIndex) -> bool:
    return a.synced_at is not None and (b.synced_at is None or a.synced_at > b.synced_at)


# -- the worker task ----------------------------------------------------------------------------


def catalog_merchants(bridge: Any) -> list[str]:
    """Merchants of ``bridge``'s config on the salesforce backend with ``catalog_sync`` set."""
    return [
        merchant_id
        for merchant_id, merchant in bridge.config.merchants.items()
        if merchant.backend == "salesforce"
        and getattr(merchant.settings, "catalog_sync", None) is not None
    ]


def sync_due(bridge: Any, merchant_ids: Iterable[str]) -> dict[str, SyncReport | Exception]:
    """Sync the catalog of each merchant whose index is due (see :meth:`Catalog.due`); a
    merchant's failure is logged and reported, never raised (the others still sync)."""
    done: dict[str, SyncReport | Exception] = {}
    for merchant_id in merchant_ids:
        try:
            catalog = bridge.for_merchant(merchant_id).backend.lookups.catalog
            if catalog is None or not catalog.due():
                continue
            done[merchant_id] = catalog.sync()
        except Exception as exc:  # one merchant's org must not stop the others' syncs
            log.warning(
                "catalog sync of merchant %s failed: %s: %s", merchant_id, type(exc).__name__, exc
            )
            done[merchant_id] = exc
    return done


def run_in_worker(worker: Any, stop: threading.Event) -> None:
    """The worker task (``omsbridge_register_worker_tasks``): keep every opted-in merchant's
    catalog index fresh until ``stop`` (a merchant is synced when its interval has passed,
    counting syncs another worker saved in the shared store)."""
    merchant_ids = catalog_merchants(worker.bridge)
    if merchant_ids:
        log.info("catalog sync for %d merchant(s): %s", len(merchant_ids), ", ".join(merchant_ids))
    while not stop.is_set():
        if merchant_ids:
            sync_due(worker.bridge, merchant_ids)
        stop.wait(_TASK_TICK.total_seconds())
