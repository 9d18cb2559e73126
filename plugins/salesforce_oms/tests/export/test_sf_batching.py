"""``SalesforceBackend.post_batch`` against the sandbox: packing, per-graph outcomes, idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pluggy
import pytest
from sf_export_helpers import make_sale, make_sales, merchant, orders_by_external_id, sf_config

from omsbridge import (
    CardTender,
    InvalidTransaction,
    LineItem,
    LineKind,
    OriginalLine,
    PostResult,
    RateLimited,
    TaxLine,
    Transaction,
    TransactionKind,
    TransientBackendError,
)
from omsbridge.plugins import new_plugin_manager
from omsbridge_salesforce import hookspecs
from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce.batching import MAX_GRAPHS, pack
from omsbridge_salesforce.graph import MAX_NODES

BROKEN: set[str] = set()


class _Breaker:
    """Makes the graphs of the transactions in BROKEN fail at Salesforce (a bad picklist)."""

    @pluggy.HookimplMarker("omsbridge")
    def omsbridge_salesforce_order_graph(self, transaction: Transaction, graph: Any) -> None:
        if transaction.transaction_id in BROKEN:
            graph.node("ord")["body"]["Status"] = "Bogus"


@pytest.fixture
def sf(sf_sandbox: Any) -> Iterator[SalesforceBackend]:
    """A backend for merchant SHOP on an empty sandbox org, with the breaking hook."""
    BROKEN.clear()
    pm = new_plugin_manager()
    pm.add_hookspecs(hookspecs)
    pm.register(_Breaker())
    backend = SalesforceBackend(sf_config(sf_sandbox.url), merchant(), plugin_manager=pm)
    yield backend
    backend.close()


def used(server: Any) -> int:
    return int(server.sandbox.usage.used)


def created(results: list[Any]) -> list[bool]:
    return [isinstance(r, PostResult) and r.created for r in results]


# -- packing -----------------------------------------------------------------------------------


def test_pack_fills_requests_up_to_every_limit() -> None:
    kinds = frozenset({("v62.0", "POST", "order"), ("v62.0", "GET", "order")})
    nine = pack([(9, kinds)] * 200)
    assert all(len(r) <= MAX_GRAPHS and 9 * len(r) <= MAX_NODES for r in nine)
    assert [9 * len(r) for r in nine[:-1]] == [495, 495, 495]  # full but for the last one
    assert sorted(i for r in nine for i in r) == list(range(200))
    assert max(len(r) for r in pack([(2, kinds)] * 200)) == MAX_GRAPHS  # 75 graphs, not nodes
    mixed = pack([(n, kinds) for n in (9, 40, 12, 300, 15, 9, 120) * 10])
    sizes = [(9, 40, 12, 300, 15, 9, 120)[i % 7] for r in mixed for i in r]
    assert len(sizes) == 70 and all(
        sum((9, 40, 12, 300, 15, 9, 120)[i % 7] for i in r) <= MAX_NODES for r in mixed
    )
    assert len(mixed) == -(-sum(sizes) // MAX_NODES)  # as few requests as nodes allow
    # 15 different nodes (API version, method, sObject) per request: disjoint kinds split.
    wide = [frozenset(("v62.0", "POST", f"obj{g}_{k}") for k in range(8)) for g in range(4)]
    assert len(pack([(8, k) for k in wide])) == 4


# -- sales in batches ----------------------------------------------------------------------------


def test_cold_then_warm_batches_are_few_full_requests(
    sf: SalesforceBackend, sf_sandbox: Any
) -> None:
    before = used(sf_sandbox)
    first = sf.post_batch(make_sales(40, "C"))
    assert all(created(first))
    assert used(sf_sandbox) - before <= 3  # one lookup round, one creation graph, one post
    size = sf.max_batch_size
    assert 25 <= size <= MAX_GRAPHS
    before, stats = used(sf_sandbox), sf.batches.stats.snapshot()
    batch = [make_sale(f"W-{i:04d}", i) for i in range(size)]
    assert all(created(sf.post_batch(batch)))
    assert used(sf_sandbox) - before == 1  # warm: the whole batch is ONE API call
    nodes = sf.batches.stats.snapshot()["nodes"] - stats["nodes"]
    assert 450 <= nodes <= MAX_NODES
    held = orders_by_external_id(sf_sandbox.url)
    assert len(held) == len(set(held)) == 40 + size


def test_each_graph_commits_or_fails_alone(sf: SalesforceBackend, sf_sandbox: Any) -> None:
    sales = make_sales(10, "G")
    BROKEN.update({"G-0003", "G-0007"})
    huge = make_sale("G-HUGE", 1)
    lines = tuple(  # 260 lines, each with a tax: more than 500 nodes
        LineItem(
            line_number=k, sku="SKU-01", quantity=Decimal(1), unit_price=Decimal(1),
            taxes=(TaxLine("Sales Tax", Decimal("0.08"), Decimal("0.08")),),
        )
        for k in range(1, 261)
    )  # fmt: skip
    total = sum((line.total for line in lines), Decimal(0))
    huge = Transaction(
        transaction_id="G-HUGE", kind=TransactionKind.SALE, created_at=huge.created_at,
        currency="USD", store_id="store-001", lines=lines, total=total,
        tenders=(CardTender(total, brand="Visa", last4="4242"),),
    )  # fmt: skip
    results = sf.post_batch([*sales[:5], huge, *sales[5:]])
    assert isinstance(results[5], InvalidTransaction) and results[5].code == "GRAPH_TOO_LARGE"
    for index in (2, 7):  # G-0003 and G-0007 (the huge one sits at 5)
        error = results[index]
        assert isinstance(error, InvalidTransaction), error
        assert error.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sum(created(results)) == 8
    assert sorted(orders_by_external_id(sf_sandbox.url)) == sorted(
        t.transaction_id for t in sales if t.transaction_id not in BROKEN
    )


def test_more_than_14_failed_graphs_halt_the_rest_which_are_sent_again(
    sf: SalesforceBackend, sf_sandbox: Any
) -> None:
    sales = make_sales(24, "H")
    BROKEN.update(t.transaction_id for t in sales[:16])
    results = sf.post_batch(sales)
    assert all(isinstance(r, InvalidTransaction) for r in results[:16])
    assert all(created(results[16:]))  # halted by Salesforce, then posted in a second request
    assert len(orders_by_external_id(sf_sandbox.url)) == 8


def test_reposting_answers_existing_orders(sf: SalesforceBackend, sf_sandbox: Any) -> None:
    sales = make_sales(12, "D")
    first = sf.post_batch(sales[:8])
    again = sf.post_batch(sales)  # 8 already there (DUPLICATE_VALUE), 4 new
    assert created(again) == [False] * 8 + [True] * 4
    assert [r.order_id for r in again[:8]] == [r.order_id for r in first]
    assert [r.order_number for r in again[:8]] == [r.order_number for r in first]
    assert len(orders_by_external_id(sf_sandbox.url)) == 12


def test_whole_request_503_raises_and_creates_nothing(
    sf: SalesforceBackend, sf_sandbox: Any
) -> None:
    sf.post_batch(make_sales(12, "WARM"))  # every SKU known: no lookups below
    sf_sandbox.sandbox.add_fault("error", status=503, path="*/composite/graph", count=1)
    sales = make_sales(20, "E")
    with pytest.raises(TransientBackendError) as info:
        sf.post_batch(sales)
    assert info.value.code == "SERVER_UNAVAILABLE"
    assert len(orders_by_external_id(sf_sandbox.url)) == 12
    assert all(created(sf.post_batch(sales)))


def test_timeout_after_commit_finds_the_orders_with_one_query(sf_sandbox: Any) -> None:
    backend = SalesforceBackend(sf_config(sf_sandbox.url, read_timeout=0.5), merchant())
    backend.post_batch(make_sales(28, "WARM"))  # every SKU and email known: no lookups below
    sb = sf_sandbox.sandbox
    sb.add_fault("timeout", path="*/composite/graph", after_commit=True, hold_seconds=1.0, count=1)
    sb.add_fault("lock", path="*/composite/graph", count=1)  # the first graph fails, rest commit
    sales = make_sales(20, "F")
    before = used(sf_sandbox)
    results = backend.post_batch(sales)
    assert used(sf_sandbox) - before == 2  # the graph request and one SOQL IN query
    assert isinstance(results[0], TransientBackendError)  # rolled back: retried later
    assert created(results[1:]) == [False] * 19  # committed before the answer was lost
    assert all(isinstance(r, PostResult) and r.order_id for r in results[1:])
    assert len(orders_by_external_id(sf_sandbox.url)) == 28 + 19
    final = backend.post_batch(sales)
    assert created(final) == [True] + [False] * 19
    backend.close()


def test_returns_go_after_their_sale_and_wait_behind_a_failed_one(
    sf: SalesforceBackend, sf_sandbox: Any
) -> None:
    def give_back(txn_id: str, sale: Transaction) -> Transaction:
        line = sale.lines[0]
        returned = LineItem(
            line_number=1, sku=line.sku, quantity=Decimal(1), unit_price=line.unit_price,
            kind=LineKind.RETURN, return_reason="Wrong Size",
            original=OriginalLine(order_id=sale.transaction_id, line_number=1),
        )  # fmt: skip
        total = -returned.total
        return Transaction(
            transaction_id=txn_id, kind=TransactionKind.RETURN, created_at=sale.created_at,
            currency="USD", store_id="store-001", lines=(returned,), total=total,
            tenders=(CardTender(total, brand="Visa", last4="4242"),),
        )  # fmt: skip

    sf.post_batch(make_sales(12, "RW"))  # every SKU known: no lookups below
    [s1, s2] = make_sales(2, "R")
    results = sf.post_batch([s1, give_back("R-RET-1", s1)])
    assert isinstance(results[0], PostResult) and isinstance(results[1], PostResult)
    assert results[1].order_number == results[0].order_number  # returned on the sale's order
    sf_sandbox.sandbox.add_fault("lock", path="*/composite/graph", count=1)
    held = sf.post_batch([s2, give_back("R-RET-2", s2)])
    assert isinstance(held[0], TransientBackendError) and held[0].code == "UNABLE_TO_LOCK_ROW"
    assert isinstance(held[1], TransientBackendError) and held[1].code == "HELD_BACK"
    again = sf.post_batch([s2, give_back("R-RET-2", s2)])
    assert all(isinstance(r, PostResult) and r.created for r in again)


def test_rate_limit_and_api_budget(sf: SalesforceBackend, sf_sandbox: Any) -> None:
    assert sf.api_budget() is None  # nothing heard yet
    sf.post_batch(make_sales(3, "B"))
    budget = sf.api_budget()
    assert budget is not None and budget.limit == 100_000
    assert budget.remaining == 100_000 - used(sf_sandbox)
    sf_sandbox.sandbox.set_api_budget(maximum=used(sf_sandbox))
    with pytest.raises(RateLimited) as info:
        sf.post_batch(make_sales(5, "L"))
    assert info.value.code == "REQUEST_LIMIT_EXCEEDED" and info.value.retry_after
    assert sf.api_budget().remaining == 0  # type: ignore[union-attr]


def test_batch_size_follows_the_graphs_seen(sf: SalesforceBackend) -> None:
    sf.post_batch([make_sale(f"S-{i}", 3 * i) for i in range(30)])  # 1-line sales: 9-10 nodes
    small = sf.max_batch_size
    sf.post_batch([make_sale(f"M-{i}", 3 * i + 1) for i in range(30)])  # 3 lines: 13-14 nodes
    assert 45 <= small <= 55 and sf.max_batch_size < small


def test_stale_cached_ids_are_looked_up_again_once(sf: SalesforceBackend, sf_sandbox: Any) -> None:
    sf.post_batch(make_sales(12, "K"))
    [channel] = sf.client.query("SELECT Id FROM SalesChannel")
    sf.client.request("DELETE", sf.client.sobject_path("SalesChannel", channel["Id"]))
    results = sf.post_batch(make_sales(20, "Z"))  # every graph names the deleted channel
    assert all(created(results))
    assert len(orders_by_external_id(sf_sandbox.url)) == 32
    [fresh] = sf.client.query("SELECT Id FROM SalesChannel")
    assert fresh["Id"] != channel["Id"]
