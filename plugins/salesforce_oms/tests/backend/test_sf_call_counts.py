"""API calls per sale, counted by the sandbox (``DailyApiRequests``): records a sale needs but
the cache lacks are created by the sale's own graph, so a miss costs one lookup query and no
creation call of its own; a new customer email alone costs nothing extra (its account query
opens the sale's own ``/composite`` request) (issue 16)."""

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


def _counted(server: Any, post: Any) -> tuple[int, Any]:
    before = _used(server)
    result = post()
    return _used(server) - before, result


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
    # A new customer email alone: the account query rides in the sale's own request.
    new_customer = sale([line(1, "A")], txn_id="T-4", customer=customer("new@example.com"))
    assert _calls(sf_sandbox, lambda: backend.post(new_customer)) == 1
    # A new email and a new SKU together: one lookup composite (both), then the graph.
    both = sale([line(1, "NEW-2")], txn_id="T-5", customer=customer("other@example.com"))
    assert _calls(sf_sandbox, lambda: backend.post(both)) == 2


def _order_account(backend: SalesforceBackend, order_id: str) -> str:
    [row] = backend.client.query(f"SELECT AccountId FROM Order WHERE Id = '{order_id}'")
    return str(row["AccountId"])


def test_a_new_email_without_an_account_goes_to_the_default_account_in_one_call(
    backend: SalesforceBackend, sf_sandbox: Any
) -> None:
    first = backend.post(sale([line(1, "A")], txn_id="T-1"))
    default = _order_account(backend, first.order_id)
    new = sale([line(1, "A")], txn_id="T-2", customer=customer("nobody@example.com"))
    calls, posted = _counted(sf_sandbox, lambda: backend.post(new))
    assert calls == 1
    assert _order_account(backend, posted.order_id) == default
    # The answer is cached: the same customer again is a plain graph, on the same account.
    again = sale([line(1, "A")], txn_id="T-3", customer=customer("Nobody@example.com"))
    calls, posted = _counted(sf_sandbox, lambda: backend.post(again))
    assert calls == 1
    assert _order_account(backend, posted.order_id) == default


def test_a_new_email_of_an_existing_person_account_finds_it_in_the_same_call(
    backend: SalesforceBackend, sf_sandbox: Any
) -> None:
    backend.post(sale([line(1, "A")], txn_id="T-1"))
    created = backend.client.request(
        "POST",
        backend.client.sobject_path("Account"),
        json={"FirstName": "Pat", "LastName": "Doe", "PersonEmail": "pat.doe@example.com"},
    )
    person = created["id"]
    new = sale([line(1, "A")], txn_id="T-2", customer=customer("PAT.DOE@example.com"))
    calls, posted = _counted(sf_sandbox, lambda: backend.post(new))
    assert calls == 1
    assert _order_account(backend, posted.order_id) == person
    # Cached with its Person Account: the next sale of the customer is a plain graph.
    again = sale([line(1, "A")], txn_id="T-3", customer=customer("pat.doe@example.com"))
    calls, posted = _counted(sf_sandbox, lambda: backend.post(again))
    assert calls == 1
    assert _order_account(backend, posted.order_id) == person


def test_the_account_query_falls_back_when_the_default_account_is_gone(
    backend: SalesforceBackend, sf_sandbox: Any
) -> None:
    first = backend.post(sale([line(1, "A")], txn_id="T-1"))
    default = _order_account(backend, first.order_id)
    backend.client.request("DELETE", backend.client.sobject_path("Account", default))
    # The query finds nothing, the request rolls back; the usual lookups recreate the account.
    posted = backend.post(sale([line(1, "A")], txn_id="T-2", customer=customer("x@example.com")))
    assert posted.created
    account = _order_account(backend, posted.order_id)
    assert account != default
    assert len(sf_sandbox.sandbox.store.where("Order", AccountId=account)) == 1


def test_a_repeated_sale_with_a_new_email_answers_the_existing_order(
    backend: SalesforceBackend, sf_sandbox: Any
) -> None:
    first = backend.post(sale([line(1, "A")], txn_id="T-1", customer=customer("a@example.com")))
    # The same transaction id again, its customer's email not cached: the composite meets
    # DUPLICATE_VALUE on the order and the existing order is answered, created=False.
    again = backend.post(sale([line(1, "A")], txn_id="T-1", customer=customer("b@example.com")))
    assert (again.order_id, again.created) == (first.order_id, False)
    assert "b@example.com" not in backend.lookups._emails  # the request rolled back


def test_a_failed_account_query_request_caches_nothing(
    backend: SalesforceBackend, sf_sandbox: Any
) -> None:
    backend.post(sale([line(1, "A")], txn_id="T-1"))
    sf_sandbox.sandbox.add_fault("error", status=503, path="*/composite", count=1)
    with pytest.raises(BackendError):
        backend.post(sale([line(1, "A")], txn_id="T-2", customer=customer("c@example.com")))
    assert "c@example.com" not in backend.lookups._emails
    assert backend.post(sale([line(1, "A")], txn_id="T-2", customer=customer("c@example.com")))


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


def test_the_account_query_request_is_held_to_the_reference() -> None:
    from sf_capture import Capture, plain_backend, plain_org
    from sf_reference import ReferenceCheck

    org = plain_org("som")
    capture = Capture()
    backend = plain_backend(org.url, capture, person_accounts=True)
    try:
        backend.post(sale([line(1, "TEE-BLK-M", "1", "25.00")], txn_id="R-1"))
        shopper = customer("reference@example.com")
        backend.post(sale([line(1, "TEE-BLK-M", "1", "25.00")], txn_id="R-2", customer=shopper))
    finally:
        backend.close()
        org.stop()
    [sent] = [s for s in capture.sent if s.path.endswith("/composite") and s.body.get("allOrNone")]
    assert sent.body["collateSubrequests"] is False
    assert sent.body["compositeRequest"][0]["referenceId"] == "acct"
    assert any(
        sub["body"].get("AccountId") == "@{acct.records[0].Id}"
        for sub in sent.body["compositeRequest"][1:]
        if sub["method"] == "POST" and sub["url"].endswith("/sobjects/Order")
    )
    check = ReferenceCheck(api_version=backend.config.api_version, multi_currency=False)
    check.requests([sent])
    assert check.used, "no sObject field of the request was checked"
    assert not check.problems, "\n".join(dict.fromkeys(check.problems))
