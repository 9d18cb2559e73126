"""The backend against the local Salesforce OMS sandbox: every flow, faults, expired tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sf_backend_helpers import (
    MERCHANT,
    WHEN,
    D,
    cash,
    config,
    customer,
    delivery,
    line,
    online,
    pickup_later,
    promo,
    return_txn,
    sale,
    tax,
)

from omsbridge import (
    AuthFailed,
    CancelLine,
    CardTender,
    Conflict,
    FulfillmentAction,
    FulfillmentKind,
    FulfillmentUpdate,
    InvalidTransaction,
    LineItem,
    LineKind,
    NotFound,
    OrderQuery,
    OriginalLine,
    RateLimited,
    Rejected,
    Transaction,
    TransactionKind,
    TransientBackendError,
)
from omsbridge_salesforce.backend import SalesforceBackend


def used(server: Any) -> int:
    return int(server.sandbox.usage.used)


def order_count(server: Any) -> int:
    return len(server.sandbox.store.where("Order", RelatedOrderId=None))


# -- sales -------------------------------------------------------------------------------------


def test_cold_then_warm_merchant_api_calls(backend: SalesforceBackend, sf_sandbox: Any) -> None:
    before = used(sf_sandbox)
    first = backend.post(sale([line(1, "A", taxes=(tax("0.80"),)), line(2, "B")], txn_id="T-1"))
    assert first.created and first.order_number
    assert used(sf_sandbox) - before <= 5  # lookups (1) + creations (1) + the order (1)
    before = used(sf_sandbox)
    backend.post(sale([line(1, "A"), line(2, "B")], txn_id="T-2"))
    assert used(sf_sandbox) - before == 1  # warm: exactly one composite graph


def test_sale_becomes_an_activated_order_with_summary(backend: SalesforceBackend) -> None:
    t = sale([line(1, "A", "2", "10.00", taxes=(tax("1.60"),))], customer=customer())
    result = backend.post(t)
    detail = backend.get_order(result.order_id)
    assert detail.order_number == result.order_number
    assert detail.total == t.total == D("21.60")
    assert detail.transaction_id == "T-1"
    (only,) = detail.lines
    assert (only.line_number, only.sku, only.quantity_ordered) == (1, "A", D(2))
    assert only.external_line_id == "T-1-1"
    assert only.quantity_fulfilled == D(2)  # take-with: handed over at the register
    assert detail.payments[0].amount == D("21.60") and detail.payments[0].last4 == "4242"
    # the same order by number and by transaction id
    assert backend.get_order(result.order_number or "").order_id == detail.order_id
    assert backend.get_order("T-1").order_id == detail.order_id


def test_repost_is_idempotent(backend: SalesforceBackend, sf_sandbox: Any) -> None:
    t = sale([line(1, "A")])
    first = backend.post(t)
    again = backend.post(t)
    assert not again.created
    assert (again.order_id, again.order_number) == (first.order_id, first.order_number)
    assert order_count(sf_sandbox) == 1


def test_timeout_after_commit_is_found_on_retry(sf_sandbox: Any) -> None:
    b = SalesforceBackend(config(sf_sandbox.url, read_timeout=0.5), MERCHANT)
    b.post(sale([line(1, "A")], txn_id="WARM"))  # warm the lookups
    sf_sandbox.sandbox.add_fault(
        "timeout", path="*/composite/graph", after_commit=True, hold_seconds=1.0, count=1
    )
    result = b.post(sale([line(1, "A")], txn_id="T-TIMEOUT"))
    assert not result.created  # the order was committed before the client gave up
    assert order_count(sf_sandbox) == 2
    assert b.post(sale([line(1, "A")], txn_id="T-TIMEOUT")).order_id == result.order_id


def test_timeout_before_commit_is_transient(sf_sandbox: Any) -> None:
    b = SalesforceBackend(config(sf_sandbox.url, read_timeout=0.5), MERCHANT)
    b.post(sale([line(1, "A")], txn_id="WARM"))
    sf_sandbox.sandbox.add_fault("timeout", path="*/composite/graph", hold_seconds=1.0, count=1)
    with pytest.raises(TransientBackendError):
        b.post(sale([line(1, "A")], txn_id="T-LOST"))
    assert b.post(sale([line(1, "A")], txn_id="T-LOST")).created


def test_expired_token_is_renewed(backend: SalesforceBackend, sf_sandbox: Any) -> None:
    sf_sandbox.sandbox.set_token_lifetime(60)
    backend.post(sale([line(1, "A")], txn_id="T-1"))
    sf_sandbox.sandbox.clock.advance(120)
    assert backend.post(sale([line(1, "A")], txn_id="T-2")).created
    assert backend.client.auth.token_requests == 2


def test_faults_map_into_the_taxonomy(backend: SalesforceBackend, sf_sandbox: Any) -> None:
    backend.post(sale([line(1, "A")], txn_id="WARM"))
    sb = sf_sandbox.sandbox
    sb.add_fault("error", status=503, path="*/composite/graph", count=1)
    with pytest.raises(TransientBackendError) as info:
        backend.post(sale([line(1, "A")], txn_id="T-503"))
    assert info.value.code == "SERVER_UNAVAILABLE"
    sb.add_fault("lock", path="*/composite/graph", count=1)
    with pytest.raises(TransientBackendError) as info:
        backend.post(sale([line(1, "A")], txn_id="T-LOCK"))
    assert info.value.code == "UNABLE_TO_LOCK_ROW"
    sb.set_api_budget(maximum=used(sf_sandbox))
    with pytest.raises(RateLimited) as limited:
        backend.post(sale([line(1, "A")], txn_id="T-LIMIT"))
    assert limited.value.code == "REQUEST_LIMIT_EXCEEDED" and limited.value.retry_after


def test_wrong_credentials(sf_sandbox: Any) -> None:
    from omsbridge import Secret

    b = SalesforceBackend(config(sf_sandbox.url, password=Secret("wrong", "t")), MERCHANT)
    with pytest.raises(AuthFailed) as info:
        b.post(sale([line(1, "A")]))
    assert "wrong" not in str(info.value)


def test_mixed_cart_split_tender_delivery_and_promotion(demo_backend: SalesforceBackend) -> None:
    lines = [
        line(1, "TEE-BLK-M", "1", "25.00", taxes=(tax("2.00"),)),
        line(2, "SNK-RUN-42", "1", "120.00", fulfillment=online()),
        line(3, "TOTE-CNV", "2", "30.00", fulfillment=pickup_later()),
    ]
    probe = sale(
        lines,
        customer=customer("amanda.freeman@example.com"),
        adjustments=(promo("-10.00"),),
        charges=(delivery("7.95", online()),),
    )
    t = sale(
        list(probe.lines),
        customer=probe.customer,
        adjustments=probe.adjustments,
        charges=probe.charges,
        txn_id="MIX-1",
        tenders=[cash(D("50.00")), CardTender(probe.total - D(50), brand="Visa", last4="1111")],
    )
    result = demo_backend.post(t)
    detail = demo_backend.get_order(result.order_id)
    assert detail.total == t.total
    methods = {line.line_number: line.fulfillment_method for line in detail.lines}
    assert methods == {1: "IN_STORE-DEFAULT", 2: "ONLINE-DEFAULT", 3: "IN_STORE-PICKUP_LATER"}
    assert sorted(p.amount for p in detail.payments) == sorted([D("50.00"), t.total - D(50)])
    assert detail.customer is not None and detail.customer.last_name == "Freeman"
    assert detail.return_by == WHEN.date() + timedelta(days=14)


def test_unknown_gateway_is_a_clear_rejection(sf_sandbox: Any) -> None:
    b = SalesforceBackend(config(sf_sandbox.url, cash_payment_gateway_name="NoSuch"), MERCHANT)
    with pytest.raises(Rejected) as info:
        b.post(sale([line(1, "A")], tenders=[cash(D("10.00"))]))
    assert info.value.code == "PAYMENT_GATEWAY_NOT_FOUND"


def test_graph_hook_edits_the_order(sf_sandbox: Any) -> None:
    import pluggy

    from omsbridge.plugins import new_plugin_manager
    from omsbridge_salesforce import hookspecs

    class SiPlugin:
        @pluggy.HookimplMarker("omsbridge")
        def omsbridge_salesforce_order_graph(
            self, merchant_id: str, transaction: Any, graph: Any
        ) -> None:
            graph.node("ord")["body"]["Description"] = f"edited for {merchant_id}"

    pm = new_plugin_manager()
    pm.add_hookspecs(hookspecs)
    pm.register(SiPlugin())
    b = SalesforceBackend(config(sf_sandbox.url), MERCHANT, plugin_manager=pm)
    result = b.post(sale([line(1, "A")]))
    order = sf_sandbox.sandbox.store.get("Order", result.order_id)
    assert order["Description"] == "edited for SHOPNOW20140910"

    class Broken:
        @pluggy.HookimplMarker("omsbridge")
        def omsbridge_salesforce_order_graph(self, graph: Any) -> None:
            raise KeyError("oops")

    pm.register(Broken())
    with pytest.raises(Rejected) as info:
        b.post(sale([line(1, "A")], txn_id="T-2"))
    assert info.value.code == "GRAPH_HOOK_FAILED"


# -- returns and exchanges ------------------------------------------------------------------------


def test_return_keeps_the_original_line_and_refunds(backend: SalesforceBackend) -> None:
    bought = backend.post(
        sale([line(1, "A", "2", "10.00", line_id="L-A"), line(2, "B")], txn_id="T-1")
    )
    ret = return_txn("R-1", "T-1", [(1, "A", "1", "10.00")], line_ids={1: "L-A"})
    result = backend.post(ret)
    assert result.created and result.order_number == bought.order_number
    detail = backend.get_order(bought.order_id)
    assert detail.line(1).quantity_returned == D(1)
    assert detail.line(1).external_line_id == "L-A"
    assert [p.amount for p in detail.payments if p.method == "Refund"] == [D("-10.00")]
    again = backend.post(ret)  # idempotent
    assert not again.created and again.order_id == result.order_id
    assert backend.get_order(bought.order_id).line(1).quantity_returned == D(1)


def test_return_by_line_number_and_quantity_checks(backend: SalesforceBackend) -> None:
    bought = backend.post(sale([line(1, "A", "1", "10.00")]))
    # Business rules refusing a return are Rejected (the contract suite's error table).
    with pytest.raises(Rejected) as info:
        backend.post(return_txn("R-2", bought.order_id, [(1, "A", "2", "10.00")]))
    assert info.value.code == "RETURN_NOT_POSSIBLE"
    assert info.value.message.startswith("lines[0].quantity:")
    with pytest.raises(Rejected) as info:
        backend.post(return_txn("R-3", bought.order_id, [(7, "A", "1", "10.00")]))
    assert info.value.message.startswith("lines[0].original:")
    with pytest.raises(Rejected) as info:
        backend.post(return_txn("R-4", "NO-SUCH-ORDER", [(1, "A", "1", "10.00")]))
    assert info.value.code == "ORIGINAL_ORDER_NOT_FOUND"


def test_return_window(sf_sandbox: Any) -> None:
    b = SalesforceBackend(config(sf_sandbox.url, return_window_days=14), MERCHANT)
    b.post(sale([line(1, "A")], txn_id="T-1"))
    late = return_txn("R-LATE", "T-1", [(1, "A", "1", "10.00")], when=WHEN + timedelta(days=15))
    with pytest.raises(Rejected) as info:
        b.post(late)
    assert info.value.code == "RETURN_WINDOW_EXPIRED"
    in_time = return_txn("R-OK", "T-1", [(1, "A", "1", "10.00")], when=WHEN + timedelta(days=14))
    assert b.post(in_time).created


def test_unreferenced_return_is_rejected(backend: SalesforceBackend) -> None:
    item = LineItem(
        line_number=1,
        sku="A",
        quantity=D(1),
        unit_price=D("10.00"),
        kind=LineKind.RETURN,
        return_reason="No receipt",
    )
    t = Transaction(
        transaction_id="R-NR",
        kind=TransactionKind.RETURN,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=(item,),
        total=D("-10.00"),
        tenders=(cash(D("-10.00")),),
    )
    with pytest.raises(Rejected) as info:
        backend.post(t)
    assert info.value.code == "UNREFERENCED_RETURN"


def test_exchange(backend: SalesforceBackend, sf_sandbox: Any) -> None:
    backend.post(sale([line(1, "A", "1", "25.00")], txn_id="T-1"))
    returned = LineItem(
        line_number=1,
        sku="A",
        quantity=D(1),
        unit_price=D("25.00"),
        kind=LineKind.RETURN,
        return_reason="Wrong Size",
        original=OriginalLine(order_id="T-1", line_number=1),
    )
    t = Transaction(
        transaction_id="EX-1",
        kind=TransactionKind.EXCHANGE,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=(returned, line(2, "B", "1", "40.00")),
        total=D("15.00"),
        tenders=(CardTender(D("15.00"), brand="Visa", last4="4242"),),
    )
    result = backend.post(t)
    assert result.created
    assert backend.get_order("T-1").line(1).quantity_returned == D(1)
    new = backend.get_order(result.order_id)
    assert new.total == D("40.00")
    assert sorted(p.amount for p in new.payments) == [D("15.00"), D("25.00")]
    assert not backend.post(t).created


# -- cancels ------------------------------------------------------------------------------------


def test_cancel_order_and_items(backend: SalesforceBackend) -> None:
    t = sale(
        [
            line(1, "A", "3", "10.00", fulfillment=pickup_later()),
            line(2, "B", "1", "5.00", fulfillment=pickup_later()),
        ],
        customer=customer(),
    )
    posted = backend.post(t)
    partial = backend.cancel_items(posted.order_id, [CancelLine(1, D(1))], reason="Changed mind")
    assert partial.cancelled == (CancelLine(1, D(1)),)
    with pytest.raises(Rejected) as info:
        backend.cancel_items(posted.order_id, [CancelLine(1, D(5))], reason="x")
    assert info.value.code == "CANCEL_NOT_POSSIBLE"
    assert info.value.message.startswith("lines[0].quantity:")
    with pytest.raises(NotFound):
        backend.cancel_items(posted.order_id, [CancelLine(9, D(1))], reason="x")
    result = backend.cancel_order(posted.order_id, reason="No show")
    assert {(c.line_number, c.quantity) for c in result.cancelled} == {(1, D(2)), (2, D(1))}
    assert result.status == "Cancelled"
    detail = backend.get_order(posted.order_id)
    assert detail.backend_status == "Cancelled" and detail.status == "CANCELLED"
    assert [line.quantity_cancelled for line in detail.lines] == [D(3), D(1)]
    refunds = sum((p.amount for p in detail.payments if p.method == "Refund"), D(0))
    assert refunds == -t.total
    with pytest.raises(Conflict):
        backend.cancel_order(posted.order_id, reason="again")


def test_cancel_unknown_order(backend: SalesforceBackend) -> None:
    with pytest.raises(NotFound):
        backend.cancel_order("00009999", reason="x")


# -- search --------------------------------------------------------------------------------------


def test_search_pages_and_escapes(backend: SalesforceBackend) -> None:
    for n in range(5):
        backend.post(
            sale([line(1, "A")], txn_id=f"S-{n}", customer=customer("o'brien@example.com"))
        )
    backend.post(sale([line(1, "A")], txn_id="OTHER", customer=customer("x@example.com")))
    seen: list[str] = []
    page = backend.search_orders(OrderQuery(email="o'brien@example.com", page_size=2))
    while True:
        seen += [h.order_number for h in page.hits]
        assert all(h.email == "o'brien@example.com" for h in page.hits)
        if page.next_cursor is None:
            break
        page = backend.search_orders(OrderQuery(cursor=page.next_cursor))
    assert len(seen) == len(set(seen)) == 5
    assert backend.search_orders(OrderQuery(last_name="O'Brien")).hits  # the order Name
    assert not backend.search_orders(OrderQuery(last_name="%' OR Name LIKE '")).hits
    assert not backend.search_orders(OrderQuery(first_name="_at")).hits  # '_' is literal
    hit = backend.search_orders(OrderQuery(order_number=seen[0])).hits[0]
    assert (hit.order_number, hit.item_count, hit.total) == (seen[0], 1, D("10.00"))
    with pytest.raises(InvalidTransaction):
        backend.search_orders(OrderQuery(cursor="not-a-cursor"))


def test_search_by_dates(backend: SalesforceBackend) -> None:
    backend.post(sale([line(1, "A")], txn_id="OLD", when=WHEN - timedelta(days=30)))
    backend.post(sale([line(1, "A")], txn_id="NEW"))
    page = backend.search_orders(OrderQuery(placed_from=WHEN - timedelta(days=1)))
    assert len(page.hits) == 1


# -- fulfillment ----------------------------------------------------------------------------------


def test_bopis_fulfillment_orders_and_updates(demo_backend: SalesforceBackend) -> None:
    store1 = demo_backend.fulfillment_orders(store_id="store-001")
    assert store1 and all(fo.store_id == "store-001" for fo in store1)
    fo = store1[0]
    assert fo.kind == FulfillmentKind.PICKUP and fo.lines and fo.lines[0].sku
    demo_backend.update_fulfillment(
        FulfillmentUpdate(fo.fulfillment_order_id, FulfillmentAction.PACK)
    )
    (after,) = [
        f
        for f in demo_backend.fulfillment_orders(store_id="store-001")
        if f.fulfillment_order_id == fo.fulfillment_order_id
    ]
    assert after.status == "Pickpack"
    demo_backend.update_fulfillment(
        FulfillmentUpdate(fo.fulfillment_order_id, FulfillmentAction.CANCEL, reason="No show")
    )
    assert fo.fulfillment_order_id not in {
        f.fulfillment_order_id for f in demo_backend.fulfillment_orders(store_id="store-001")
    }
    detail = demo_backend.get_order(fo.order_id)
    assert detail.fulfillment_orders and detail.fulfillment_orders[0].status == "Cancelled"


def test_partial_fulfillment_cancel(demo_backend: SalesforceBackend) -> None:
    (fo,) = demo_backend.fulfillment_orders(store_id="store-002")
    first = fo.lines[0]
    from omsbridge import FulfillmentLine

    demo_backend.update_fulfillment(
        FulfillmentUpdate(
            fo.fulfillment_order_id,
            FulfillmentAction.CANCEL,
            lines=(FulfillmentLine(first.line_id, first.quantity),),
            reason="Damaged",
        )
    )
    detail = demo_backend.get_order(fo.order_id)
    assert detail.fulfillment_orders[0].lines[0].quantity_cancelled == first.quantity


def test_shipped_with_tracking_creates_a_shipment(demo_backend: SalesforceBackend) -> None:
    (fo,) = demo_backend.fulfillment_orders(store_id="store-002")
    demo_backend.update_fulfillment(
        FulfillmentUpdate(
            fo.fulfillment_order_id,
            FulfillmentAction.SHIPPED,
            carrier="UPS",
            tracking_number="1Z999",
        )
    )
    detail = demo_backend.get_order(fo.order_id)
    assert [(s.carrier, s.tracking_number) for s in detail.shipments] == [("UPS", "1Z999")]


def test_events_are_offered(backend: SalesforceBackend) -> None:
    from omsbridge import Capability

    # FOStatusChangedEvent over CometD (issue 6; the flows are tested in tests/omni).
    assert Capability.EVENTS in backend.capabilities
    assert backend.events(None, wait=0).events == ()


def test_concurrent_cold_posts_create_reference_records_once(
    backend: SalesforceBackend, sf_sandbox: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda n: backend.post(sale([line(1, "A"), line(2, "B")], txn_id=f"C-{n}")),
                range(16),
            )
        )
    assert all(r.created for r in results)
    store = sf_sandbox.sandbox.store
    assert len(store.where("Pricebook2", Name="SHOPNOW20140910-en_US-US")) == 1
    assert len(store.where("Account", Name="SHOPNOW20140910-en_US-US")) == 1
    assert len(store.where("SalesChannel", SalesChannelName="SHOPNOW20140910-en_US-US-POS")) == 1
    assert len(store.where("Product2", StockKeepingUnit="A")) == 1
    assert backend.client.auth.token_requests == 1


@pytest.mark.parametrize("flow", ["client_credentials", "jwt_bearer"])
def test_other_auth_flows_against_the_sandbox(sf_sandbox: Any, flow: str) -> None:
    from omsbridge import Secret

    creds = sf_sandbox.sandbox.credentials
    if flow == "jwt_bearer":
        cfg = config(
            sf_sandbox.url,
            auth_flow=flow,
            password=None,
            client_secret=None,
            private_key=Secret(creds["jwt_private_key_pem"], "t"),
        )
    else:
        cfg = config(sf_sandbox.url, auth_flow=flow, username=None, password=None)
    b = SalesforceBackend(cfg, MERCHANT)
    assert b.post(sale([line(1, "A")])).created
