"""API calls per sale, counted by the sandbox (``DailyApiRequests``): records a sale needs but
the cache lacks are created by the sale's own graph, so a miss costs one lookup query and no
creation call of its own (issue 16)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sf_backend_helpers import customer, line, sale, tax

from omsbridge import BackendError
from omsbridge_salesforce.backend import SalesforceBackend


def _used(server: Any) -> int:
    return int(server.sandbox.usage.used)


def _calls(server: Any, post: Any) -> int:
    before = _used(server)
    post()
    return _used(server) - before


def test_first_sale_of_a_new_merchant_costs_two_calls(
    backend: SalesforceBackend, sf_sandbox: Any
) -> None:
    # One composite of lookup queries, then the sale's graph creating the default account,
    # the price book, the sales channel, the products and their price-book entries.
    first = sale([line(1, "A", taxes=(tax("0.80"),)), line(2, "B")], txn_id="T-1")
    assert _calls(sf_sandbox, lambda: backend.post(first)) == 2
    # Everything created is now cached: the next sale with the same SKUs is one call.
    assert _calls(sf_sandbox, lambda: backend.post(sale([line(1, "B")], txn_id="T-2"))) == 1


def test_a_new_sku_or_customer_costs_one_lookup_and_no_creation_call(
    backend: SalesforceBackend, sf_sandbox: Any
) -> None:
    backend.post(sale([line(1, "A")], txn_id="T-1"))
    new_sku = sale([line(1, "A"), line(2, "NEW-SKU")], txn_id="T-2")
    assert _calls(sf_sandbox, lambda: backend.post(new_sku)) == 2
    assert _calls(sf_sandbox, lambda: backend.post(sale([line(1, "NEW-SKU")], txn_id="T-3"))) == 1
    new_customer = sale([line(1, "A")], txn_id="T-4", customer=customer("new@example.com"))
    assert _calls(sf_sandbox, lambda: backend.post(new_customer)) == 2


def test_records_created_by_a_sale_that_failed_are_not_cached(
    backend: SalesforceBackend, sf_sandbox: Any
) -> None:
    backend.post(sale([line(1, "A")], txn_id="T-1"))
    sf_sandbox.sandbox.add_fault("error", status=503, path="*/composite/graph", count=1)
    with pytest.raises(BackendError):
        backend.post(sale([line(1, "GONE")], txn_id="T-2"))
    assert "GONE" not in set(backend.lookups.cached_skus())
    # The retry looks the SKU up again (it does not exist: the graph rolled back) and creates it.
    result = backend.post(sale([line(1, "GONE")], txn_id="T-2"))
    assert result.created
    products = sf_sandbox.sandbox.store.where("Product2", StockKeepingUnit="GONE")
    assert len(products) == 1


def _context_with_store(path: Any) -> tuple[Any, Any]:
    import attrs
    from sf_backend_helpers import MERCHANT

    from omsbridge.backend_cache import BackendCache
    from omsbridge.store.sqlite import SqliteStore

    store = SqliteStore(path)
    return store, attrs.evolve(MERCHANT, cache=BackendCache(lambda: store, MERCHANT.merchant_id))


def test_lookups_persist_so_a_new_process_starts_warm(sf_sandbox: Any, tmp_path: Any) -> None:
    from sf_backend_helpers import config

    store, context = _context_with_store(tmp_path / "store.db")
    first = SalesforceBackend(config(sf_sandbox.url), context)
    first.post(sale([line(1, "A")], txn_id="T-1", customer=customer("pat@example.com")))
    first.close()
    # A new backend (as in a new `omsbridge post`): the store gives it the ids, one call.
    second = SalesforceBackend(config(sf_sandbox.url), context)
    again = sale([line(1, "A")], txn_id="T-2", customer=customer("pat@example.com"))
    assert _calls(sf_sandbox, lambda: second.post(again)) == 1
    second.close()
    store.close()


def test_stale_ids_are_dropped_from_the_store(sf_sandbox: Any, tmp_path: Any) -> None:
    from sf_backend_helpers import config

    store, context = _context_with_store(tmp_path / "store.db")
    first = SalesforceBackend(config(sf_sandbox.url), context)
    first.post(sale([line(1, "A")], txn_id="T-1"))
    assert store.cached_value(context.merchant_id, "salesforce.lookups") is not None
    # The merchant deletes the sales channel: the stored id is stale.
    [channel] = first.client.query("SELECT Id FROM SalesChannel")
    first.client.request("DELETE", first.client.sobject_path("SalesChannel", channel["Id"]))
    second = SalesforceBackend(config(sf_sandbox.url), context)
    assert second.post(sale([line(1, "A")], txn_id="T-2")).created
    # Refreshed: the store now holds the new channel's id, not the deleted one.
    [fresh] = second.client.query("SELECT Id FROM SalesChannel")
    second.close()
    first.close()
    text = store.cached_value(context.merchant_id, "salesforce.lookups")
    assert text is not None
    assert json.loads(text[0])["channel"] == fresh["Id"] != channel["Id"]
    store.close()


def test_cancel_finds_the_summary_and_its_open_fo_lines_in_one_call(
    demo_backend: SalesforceBackend, sf_sandbox_demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omsbridge import CancelLine

    (fo,) = demo_backend.fulfillment_orders(store_id="store-002")
    detail = demo_backend.get_order(fo.order_id)
    line = detail.lines[0]
    lookups: list[str] = []
    real_query, real_queries = demo_backend.client.query, demo_backend.client.queries
    monkeypatch.setattr(
        demo_backend.client, "query", lambda *a, **k: lookups.append("query") or real_query(*a, **k)
    )
    monkeypatch.setattr(
        demo_backend.client,
        "queries",
        lambda *a, **k: lookups.append("queries") or real_queries(*a, **k),
    )
    demo_backend.cancel_items(
        fo.order_id, [CancelLine(line.line_number, line.quantity_ordered)], reason="Changed Mind"
    )
    # One composite found the summary and the fulfillment-order lines (no query after it) ...
    assert lookups == ["queries"]
    # ... and the quantity on the fulfillment order was cancelled there.
    after = demo_backend.get_order(fo.order_id)
    cancelled = {
        fl.line_id: fl.quantity_cancelled for f in after.fulfillment_orders for fl in f.lines
    }
    assert sum(cancelled.values()) >= line.quantity_ordered
