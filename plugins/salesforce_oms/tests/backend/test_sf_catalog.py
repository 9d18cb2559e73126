"""Catalog sync (``catalog_sync``): with a fresh index of the merchant's Product2 SKUs and
price-book entries, a sale of a set-up merchant costs one API call whatever its SKUs; a stale
index falls back to the lookups; a duplicate SKU is found by the next sync (issue 16)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import click
import pytest
from click.testing import CliRunner
from sf_backend_helpers import MERCHANT, config, customer, line, sale

from omsbridge import InvalidTransaction
from omsbridge_salesforce import catalog as catalog_module
from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce.catalog import Catalog, catalog_merchants, run_in_worker, sync_due


def _calls(server: Any, post: Any) -> tuple[int, Any]:
    before = int(server.sandbox.usage.used)
    result = post()
    return int(server.sandbox.usage.used) - before, result


def _store(tmp_path: Path) -> tuple[Any, Any]:
    from omsbridge.backend_cache import BackendCache
    from omsbridge.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "store.db")
    return store, attrs.evolve(MERCHANT, cache=BackendCache(lambda: store, MERCHANT.merchant_id))


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    store, context = _store(tmp_path)
    yield store, context
    store.close()


@pytest.fixture
def synced(sf_sandbox: Any, stored: tuple[Any, Any]) -> Iterator[SalesforceBackend]:
    """A set-up merchant (its first sale made the price book, channel, account, delivery
    method) with ``catalog_sync = "5m"``, its index loaded."""
    backend = SalesforceBackend(config(sf_sandbox.url, catalog_sync="5m"), stored[1])
    backend.post(sale([line(1, "A")], txn_id="SETUP-1", customer=customer("known@example.com")))
    assert backend.lookups.catalog is not None
    backend.lookups.catalog.sync()
    yield backend
    backend.close()


def _merchant_product(backend: SalesforceBackend, sku: str, *, entry: bool = True) -> str:
    """A product the merchant made in Salesforce (standard price, and its POS book's)."""
    client = backend.client
    product = client.create("Product2", {"Name": f"Merchant {sku}", "StockKeepingUnit": sku,
                                         "IsActive": True})  # fmt: skip
    standard = backend.lookups._standard
    if isinstance(standard, str):
        client.create("PricebookEntry", {"Pricebook2Id": standard, "Product2Id": product,
                                         "UnitPrice": 10, "IsActive": True})  # fmt: skip
    if entry:
        client.create("PricebookEntry", {"Pricebook2Id": backend.lookups._pricebook,
                                         "Product2Id": product, "UnitPrice": 10,
                                         "IsActive": True})  # fmt: skip
    return product


def _products(backend: SalesforceBackend, sku: str) -> list[str]:
    rows = backend.client.query(f"SELECT Id FROM Product2 WHERE StockKeepingUnit = '{sku}'")
    return [r["Id"] for r in rows]


def _ordered_product(backend: SalesforceBackend, order_id: str) -> str:
    rows = backend.client.query(
        f"SELECT Product2Id FROM OrderItem WHERE OrderId = '{order_id}' AND Type = 'Order Product'"
    )
    return str(rows[0]["Product2Id"])


def test_a_sku_of_the_merchant_in_the_index_costs_one_call(
    synced: SalesforceBackend, sf_sandbox: Any
) -> None:
    made = _merchant_product(synced, "M-1")
    assert synced.lookups.catalog is not None
    report = synced.lookups.catalog.sync()
    assert not report.full and report.calls == 1
    calls, posted = _calls(sf_sandbox, lambda: synced.post(sale([line(1, "M-1")], txn_id="T-1")))
    assert calls == 1
    assert _ordered_product(synced, posted.order_id) == made
    assert _products(synced, "M-1") == [made]  # nothing created


def test_a_sku_absent_from_a_fresh_index_is_created_by_the_sales_own_graph(
    synced: SalesforceBackend, sf_sandbox: Any
) -> None:
    calls, posted = _calls(
        sf_sandbox, lambda: synced.post(sale([line(1, "A"), line(2, "NEW-1")], txn_id="T-1"))
    )
    assert calls == 1
    [created] = _products(synced, "NEW-1")
    assert _ordered_product(synced, posted.order_id) in {created, *_products(synced, "A")}
    # Cached now: the same SKU again is a plain graph.
    calls, _ = _calls(sf_sandbox, lambda: synced.post(sale([line(1, "NEW-1")], txn_id="T-2")))
    assert calls == 1 and _products(synced, "NEW-1") == [created]


def test_a_merchant_product_without_a_pos_price_gets_its_entry_in_the_graph(
    synced: SalesforceBackend, sf_sandbox: Any
) -> None:
    made = _merchant_product(synced, "M-2", entry=False)
    assert synced.lookups.catalog is not None
    synced.lookups.catalog.sync()
    calls, posted = _calls(sf_sandbox, lambda: synced.post(sale([line(1, "M-2")], txn_id="T-1")))
    assert calls == 1
    assert _ordered_product(synced, posted.order_id) == made
    assert _products(synced, "M-2") == [made]


def test_a_new_customer_and_a_new_sku_together_cost_one_call(
    synced: SalesforceBackend, sf_sandbox: Any
) -> None:
    made = _merchant_product(synced, "M-3")
    assert synced.lookups.catalog is not None
    synced.lookups.catalog.sync()
    both = sale(
        [line(1, "NEW-2"), line(2, "M-3")], txn_id="T-1", customer=customer("new@example.com")
    )
    calls, posted = _calls(sf_sandbox, lambda: synced.post(both))
    assert calls == 1
    assert len(_products(synced, "NEW-2")) == 1 and _products(synced, "M-3") == [made]
    [order] = synced.client.query(f"SELECT AccountId FROM Order WHERE Id = '{posted.order_id}'")
    assert order["AccountId"]


def test_without_catalog_sync_a_new_sku_costs_a_lookup(
    sf_sandbox: Any, stored: tuple[Any, Any]
) -> None:
    # The figure the index removes: the same sale as above without it.
    backend = SalesforceBackend(config(sf_sandbox.url), stored[1])
    backend.post(sale([line(1, "A")], txn_id="SETUP-1"))
    calls, _ = _calls(sf_sandbox, lambda: backend.post(sale([line(1, "NEW-1")], txn_id="T-1")))
    backend.close()
    assert calls == 2


def test_a_stale_index_falls_back_to_the_lookup(
    synced: SalesforceBackend, sf_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _merchant_product(synced, "M-4")  # after the sync: the index does not hold it
    later = datetime.now(UTC) + timedelta(minutes=16)  # max age: 3 x 5 min
    monkeypatch.setattr(catalog_module, "_now", lambda: later)
    catalog = synced.lookups.catalog
    assert catalog is not None and catalog.fresh_index() is None
    fallbacks = catalog.stats["stale_fallbacks"]
    calls, posted = _calls(sf_sandbox, lambda: synced.post(sale([line(1, "M-4")], txn_id="T-1")))
    assert calls == 2  # the lookup query found the merchant's product; no duplicate
    assert _products(synced, "M-4") == [made]
    assert _ordered_product(synced, posted.order_id) == made
    assert catalog.stats["stale_fallbacks"] == fallbacks + 1
    assert catalog.due()


def test_a_product_made_after_the_sync_is_a_duplicate_the_next_sync_resolves(
    synced: SalesforceBackend, sf_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The window: the merchant creates the product after the sync, a sale sells it before
    # the next one. The index says "new", so the sale creates a second product. Here the
    # sale has no room for the duplicate check (a request holds 25 subrequests): the next
    # sync finds it.
    from omsbridge_salesforce import backend as backend_module

    monkeypatch.setattr(backend_module, "MAX_SUBREQUESTS", 3)
    made = _merchant_product(synced, "M-5")
    calls, _ = _calls(sf_sandbox, lambda: synced.post(sale([line(1, "M-5")], txn_id="T-1")))
    assert calls == 1
    assert len(_products(synced, "M-5")) == 2
    catalog = synced.lookups.catalog
    assert catalog is not None
    report = catalog.sync()
    assert report.duplicates == ("M-5",) and catalog.stats["duplicates"] == 1
    # From then on the merchant's (older) product is sold, still in one call.
    calls, posted = _calls(sf_sandbox, lambda: synced.post(sale([line(1, "M-5")], txn_id="T-2")))
    assert calls == 1
    assert _ordered_product(synced, posted.order_id) == made
    assert catalog.sync().duplicates == ()  # reported once


def test_the_refresh_sees_deleted_products_and_cleared_skus(synced: SalesforceBackend) -> None:
    gone = _merchant_product(synced, "M-6")
    renamed = _merchant_product(synced, "M-7")
    catalog = synced.lookups.catalog
    assert catalog is not None
    catalog.sync()
    index = catalog.fresh_index()
    assert index is not None and {"M-6", "M-7"} <= set(index.by_sku)
    synced.client.request("DELETE", synced.client.sobject_path("Product2", gone))
    synced.client.update("Product2", renamed, {"StockKeepingUnit": None})
    report = catalog.sync()
    assert not report.full and report.calls == 1
    index = catalog.fresh_index()
    assert index is not None
    assert "M-6" not in index.by_sku and "M-7" not in index.by_sku
    assert gone not in index.entries and "A" in index.by_sku


@pytest.mark.sf_sandbox(query_page_size=200)
def test_a_full_load_pages_with_next_records_url(sf_sandbox: Any, stored: tuple[Any, Any]) -> None:
    backend = SalesforceBackend(config(sf_sandbox.url, catalog_sync="5m"), stored[1])
    backend.post(sale([line(1, "A")], txn_id="SETUP-1"))
    for n in range(0, 450, 25):
        backend.client.composite(
            [
                {
                    "method": "POST",
                    "url": backend.client.sobject_path("Product2"),
                    "referenceId": f"p{k}",
                    "body": {"Name": f"P{k}", "StockKeepingUnit": f"BULK-{k}"},
                }
                for k in range(n, n + 25)
            ]
        )
    catalog = backend.lookups.catalog
    assert catalog is not None
    report = catalog.sync()
    # 452 products (A, the delivery product, 450) at 200 a page: 3 pages; the entries (4)
    # fit the composite's own page. One composite + 2 further pages.
    assert report.full and report.products == 452 and report.calls == 3
    backend.close()


def test_a_new_process_reads_the_index_from_the_store(
    synced: SalesforceBackend, sf_sandbox: Any, stored: tuple[Any, Any]
) -> None:
    again = SalesforceBackend(config(sf_sandbox.url, catalog_sync="5m"), stored[1])
    try:
        calls, _ = _calls(sf_sandbox, lambda: again.post(sale([line(1, "NEW-9")], txn_id="T-1")))
        assert calls == 1  # lookups and the index from the store: no query at all
        assert again.lookups.catalog is not None and not again.lookups.catalog.due()
    finally:
        again.close()


def test_a_deleted_cached_id_distrusts_the_index_until_the_next_sync(
    synced: SalesforceBackend,
) -> None:
    catalog = synced.lookups.catalog
    assert catalog is not None and catalog.fresh_index() is not None
    synced.lookups.clear()
    assert catalog.fresh_index() is None and catalog.due()
    catalog.sync()
    assert catalog.fresh_index() is not None


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "path", "fragment"),
    [
        ({"catalog_sync": "5 minutes"}, "catalog_sync", "a duration from 30s to 24h"),
        ({"catalog_sync": "10s"}, "catalog_sync", "a duration from 30s to 24h"),
        ({"catalog_sync": "2d"}, "catalog_sync", "a duration from 30s to 24h"),
        ({"catalog_sync": 300}, "catalog_sync", "a duration"),
        ({"catalog_max_age": "1h"}, "catalog_max_age", "needs catalog_sync"),
        ({"catalog_sync": "5m", "catalog_max_age": "1m"}, "catalog_max_age", "at least"),
        ({"catalog_sync": "5m", "catalog_max_age": "9d"}, "catalog_max_age", "up to 7d"),
    ],
)
def test_bad_catalog_settings_are_refused_with_their_path(
    settings: dict[str, Any], path: str, fragment: str
) -> None:
    with pytest.raises(InvalidTransaction) as raised:
        config(**settings)
    issues = {issue.path: issue.message for issue in raised.value.issues}
    assert path in issues and fragment in issues[path]


def test_catalog_settings_give_the_interval_and_max_age() -> None:
    assert config().catalog_interval is None and config().catalog_max_age_delta is None
    assert config(catalog_sync="90s").catalog_max_age_delta == timedelta(seconds=270)
    chosen = config(catalog_sync="5m", catalog_max_age="1h")
    assert chosen.catalog_interval == timedelta(minutes=5)
    assert chosen.catalog_max_age_delta == timedelta(hours=1)


# -- the CLI and the worker task ----------------------------------------------------------------


def _config_file(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch, extra: str) -> Path:
    monkeypatch.setenv("SF_PASSWORD", "sandbox-password")
    monkeypatch.setenv("SF_SECRET", "sandbox-consumer-secret")
    path = tmp_path / "omsbridge.toml"
    path.write_text(f"""
[store]
path = "{tmp_path / "bridge.db"}"

[merchants.SHOPNOW]
backend = "salesforce"
locale = "en_US"
region = "US"

[merchants.SHOPNOW.salesforce]
url_base = "{url}"
allow_insecure_sandbox_url = true
username = "integration@omsbridge.sandbox"
password = {{ env = "SF_PASSWORD" }}
client_id = "3MVG9omsbridgeSandboxConsumerKey"
client_secret = {{ env = "SF_SECRET" }}
{extra}
""")
    return path


def _cli() -> click.Group:
    from omsbridge_salesforce.cli import salesforce

    group = click.Group("omsbridge")
    group.add_command(salesforce)
    return group


def test_cli_catalog_sync_loads_then_refreshes(
    sf_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config_file(tmp_path, sf_sandbox.url, monkeypatch, 'catalog_sync = "5m"')
    args = ["salesforce", "catalog-sync", "--config", str(path), "--merchant", "SHOPNOW"]
    first = CliRunner().invoke(_cli(), [*args, "--json"])
    assert first.exit_code == 0, first.output
    body = json.loads(first.output)
    assert body["full"] is True and body["api_calls"] == 1 and body["products"] == 0
    second = CliRunner().invoke(_cli(), args)
    assert second.exit_code == 0, second.output
    assert "refreshed" in second.output and "in 1 API call(s)" in second.output


def test_cli_catalog_sync_names_the_setting_when_it_is_off(
    sf_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config_file(tmp_path, sf_sandbox.url, monkeypatch, "")
    result = CliRunner().invoke(
        _cli(),
        ["salesforce", "catalog-sync", "--config", str(path), "--merchant", "SHOPNOW", "--json"],
    )
    assert result.exit_code == 1
    assert "merchants.SHOPNOW.salesforce.catalog_sync" in result.output


def test_the_worker_task_syncs_merchants_that_opted_in(
    sf_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from omsbridge.bridge import Bridge
    from omsbridge.plugins import get_plugin_manager, worker_tasks

    assert ("salesforce-catalog", run_in_worker) in worker_tasks(get_plugin_manager())
    path = _config_file(tmp_path, sf_sandbox.url, monkeypatch, 'catalog_sync = "5m"')
    with Bridge.from_config(path) as bridge:
        assert catalog_merchants(bridge) == ["SHOPNOW"]
        first = sync_due(bridge, ["SHOPNOW"])
        assert set(first) == {"SHOPNOW"} and not isinstance(first["SHOPNOW"], Exception)
        assert sync_due(bridge, ["SHOPNOW"]) == {}  # not due again within the interval
        stop = threading.Event()

        class _Worker:
            pass

        worker = _Worker()
        worker.bridge = bridge  # type: ignore[attr-defined]
        monkeypatch.setattr(catalog_module, "_TASK_TICK", timedelta(seconds=0.05))
        later = datetime.now(UTC) + timedelta(minutes=6)
        monkeypatch.setattr(catalog_module, "_now", lambda: later)
        catalog = bridge.for_merchant("SHOPNOW").backend.lookups.catalog
        assert isinstance(catalog, Catalog)
        syncs = catalog.stats["syncs"]
        thread = threading.Thread(target=run_in_worker, args=(worker, stop))
        thread.start()
        try:
            for _ in range(100):
                if catalog.stats["syncs"] > syncs:
                    break
                stop.wait(0.05)
        finally:
            stop.set()
            thread.join(5)
        assert catalog.stats["syncs"] == syncs + 1  # due once the interval passed
        assert not thread.is_alive()


def test_the_sale_that_duplicates_a_sku_finds_it_in_its_own_answer(
    synced: SalesforceBackend, sf_sandbox: Any
) -> None:
    # Queries after the nodes, in the same /composite request, see the product just created
    # beside the merchant's: no sync needed to correct it, no extra call.
    made = _merchant_product(synced, "M-8")
    catalog = synced.lookups.catalog
    assert catalog is not None
    calls, _ = _calls(sf_sandbox, lambda: synced.post(sale([line(1, "M-8")], txn_id="T-1")))
    assert calls == 1 and len(_products(synced, "M-8")) == 2
    assert catalog.stats["duplicates"] == 1
    calls, posted = _calls(sf_sandbox, lambda: synced.post(sale([line(1, "M-8")], txn_id="T-2")))
    assert calls == 1
    assert _ordered_product(synced, posted.order_id) == made
    assert catalog.sync().duplicates == ()  # already reported by the sale


def test_a_new_sku_without_a_twin_is_not_reported(
    synced: SalesforceBackend, sf_sandbox: Any
) -> None:
    catalog = synced.lookups.catalog
    assert catalog is not None
    both = sale([line(1, "NEW-5")], txn_id="T-1", customer=customer("new5@example.com"))
    calls, _ = _calls(sf_sandbox, lambda: synced.post(both))
    assert calls == 1 and catalog.stats["duplicates"] == 0
    assert catalog.sync().duplicates == ()


def test_a_refresh_re_reads_the_overlap_only_until_it_is_settled(
    synced: SalesforceBackend, sf_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows stamped just before the last change are re-read (a transaction may commit after a
    # later one) until a refresh runs the overlap after that change was seen; then not again.
    for n in range(3):
        _merchant_product(synced, f"M-O{n}")
    sf_sandbox.sandbox.clock.advance(60)  # the org's clock: the last product a minute later
    _merchant_product(synced, "M-LAST")
    catalog = synced.lookups.catalog
    assert catalog is not None
    assert catalog.sync().changed >= 12  # 4 products, 8 entries
    assert catalog.sync().changed >= 12  # within the overlap: re-read
    later = datetime.now(UTC) + timedelta(minutes=6)  # on both clocks
    monkeypatch.setattr(catalog_module, "_now", lambda: later)
    sf_sandbox.sandbox.clock.advance(360)
    assert catalog.sync().changed >= 12  # this one settles the mark
    quiet = catalog.sync()
    assert quiet.changed == 0 and quiet.calls == 1  # nothing re-read once settled
    _merchant_product(synced, "M-NEXT")  # a change after the settled second is read
    assert catalog.sync().changed == 3
    index = catalog.fresh_index()
    assert index is not None and {"M-O0", "M-O1", "M-O2"} <= set(index.by_sku)


def test_a_sync_by_another_process_lifts_the_distrust(
    synced: SalesforceBackend,
    sf_sandbox: Any,
    stored: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalog_module, "_RELOAD_PAUSE", timedelta(0))
    catalog = synced.lookups.catalog
    assert catalog is not None
    synced.lookups.clear()
    assert catalog.fresh_index() is None
    worker = SalesforceBackend(config(sf_sandbox.url, catalog_sync="5m"), stored[1])
    try:
        assert worker.lookups.catalog is not None
        worker.lookups.catalog.sync()  # the worker's process, saved in the shared store
    finally:
        worker.close()
    assert catalog.fresh_index() is not None  # read from the store


def test_a_failed_sync_is_reported_and_retried_after_a_pause(
    synced: SalesforceBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omsbridge import TransientBackendError

    catalog = synced.lookups.catalog
    assert catalog is not None

    class _Bridge:
        def for_merchant(self, merchant_id: str) -> Any:
            class _Merchant:
                backend = synced

            return _Merchant()

    def down(*args: Any, **kwargs: Any) -> Any:
        raise TransientBackendError("Salesforce unavailable", backend="salesforce")

    index = catalog.fresh_index()
    later = datetime.now(UTC) + timedelta(minutes=6)
    monkeypatch.setattr(catalog_module, "_now", lambda: later)
    monkeypatch.setattr(synced.client, "composite", down)
    done = sync_due(_Bridge(), ["SHOPNOW"])
    assert isinstance(done["SHOPNOW"], TransientBackendError)
    assert catalog.stats["sync_failures"] == 1 and catalog._index is index  # unchanged
    assert sync_due(_Bridge(), ["SHOPNOW"]) == {}  # not at every tick
    much_later = later + timedelta(seconds=61)
    monkeypatch.setattr(catalog_module, "_now", lambda: much_later)
    assert catalog.due()


def test_an_entry_the_merchant_added_after_the_sync_is_found_by_the_retry(
    synced: SalesforceBackend, sf_sandbox: Any
) -> None:
    # The index says the merchant's product has no entry in the POS book; the merchant adds
    # one before the next sync: creating it again fails (DUPLICATE_VALUE, one entry per
    # product and book), and the retry looks the SKU up instead of trusting the index.
    made = _merchant_product(synced, "M-10", entry=False)
    catalog = synced.lookups.catalog
    assert catalog is not None
    catalog.sync()
    synced.client.create("PricebookEntry", {"Pricebook2Id": synced.lookups._pricebook,
                                            "Product2Id": made, "UnitPrice": 10,
                                            "IsActive": True})  # fmt: skip
    calls, posted = _calls(sf_sandbox, lambda: synced.post(sale([line(1, "M-10")], txn_id="T-1")))
    assert calls == 3  # the failed request, the lookup, the graph
    assert _ordered_product(synced, posted.order_id) == made
    assert catalog.fresh_index() is None  # behind: distrusted until its next sync
    catalog.sync()
    assert catalog.fresh_index() is not None
