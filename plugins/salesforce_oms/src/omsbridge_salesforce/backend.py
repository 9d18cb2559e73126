"""``SalesforceBackend``: the omsbridge SPI over Salesforce Order Management.

A sale is one composite graph (one API call for a warm merchant), idempotent on the transaction
id through a unique external-id field on Order. Returns and exchanges go through the Connect
actions on the original order summary; cancels through cancel-item / submit-cancel. Reads
aggregate order summaries, item summaries, payments, fulfillment orders and shipments.
Fulfillment events come from ``/event/FOStatusChangedEvent`` over Pub/Sub (gRPC) or CometD (with replay, and a
catch-up query when the stored replay id is past retention): see
:mod:`omsbridge_salesforce.streaming`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from omsbridge import (
    BackendError,
    CancelLine,
    CancelResult,
    Capability,
    Conflict,
    EventBatch,
    FulfillmentOrder,
    FulfillmentUpdate,
    InvalidTransaction,
    MerchantContext,
    OrderBackend,
    OrderDetail,
    OrderPage,
    OrderQuery,
    PostResult,
    Rejected,
    Transaction,
    TransactionKind,
    TransientBackendError,
    wire,
)
from omsbridge.checked import is_checked
from omsbridge.spi import ApiBudget
from omsbridge_salesforce.aftersale import SaleSteps
from omsbridge_salesforce.batching import BatchPoster
from omsbridge_salesforce.changes import OrderChanges
from omsbridge_salesforce.client import MAX_SUBREQUESTS, GraphResult, SalesforceClient
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.graph import (
    NUMBER_REF,
    ORDER_REF,
    OrderGraph,
    OrderRefs,
    build_order_graph,
)
from omsbridge_salesforce.importing import FulfillmentImport
from omsbridge_salesforce.lookups import (
    ACCOUNT_QUERY_REF,
    INLINE_PREFIX,
    AccountQuery,
    Inline,
    Lookups,
)
from omsbridge_salesforce.reading import (
    fulfillment_order_query,
    hit,
    order_detail,
    order_id_of,
    pos_order_number,
)
from omsbridge_salesforce.search import encode_cursor, search_soql
from omsbridge_salesforce.shipping import SHIPMENT_FIELDS
from omsbridge_salesforce.soql import soql
from omsbridge_salesforce.txn_ids import case_collision, exact_row, twin_row

if TYPE_CHECKING:
    # The event feeds load when first used (grpc, protobuf and fastavro for Pub/Sub: a
    # third of a second that posting an order, e.g. ``omsbridge post``, never needs).
    from omsbridge_salesforce.streaming import FulfillmentFeed
    from omsbridge_salesforce.streaming.pubsub import PubSubFeed

__all__ = ["SalesforceBackend"]

log = logging.getLogger(__name__)

GRAPH_HOOK = "omsbridge_salesforce_order_graph"
_STALE_IDS = frozenset({"INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED"})


class SalesforceBackend(OrderBackend):
    """Salesforce Order Management, as the seed's connector integrates it."""

    name = "salesforce"
    config_class = SalesforceConfig
    description = "Salesforce Order Management (composite graph orders, Connect actions, SOQL)"
    capabilities = frozenset(
        {
            Capability.POST_SALE,
            Capability.POST_RETURN,
            Capability.POST_EXCHANGE,
            Capability.CANCEL_ORDER,
            Capability.CANCEL_ITEMS,
            Capability.SEARCH_ORDERS,
            Capability.GET_ORDER,
            Capability.FULFILLMENT_ORDERS,
            Capability.UPDATE_FULFILLMENT,
            Capability.EVENTS,
            Capability.MULTI_CURRENCY,
        }
    )

    def __init__(
        self,
        config: SalesforceConfig,
        merchant: MerchantContext,
        *,
        client: SalesforceClient | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        super().__init__(config, merchant)
        self.config: SalesforceConfig = config
        if not config.multi_currency:
            # A single-currency org: no CurrencyIsoCode is sent, every order is in the org's one
            # currency, so the bridge lets this merchant post in its `currency` only.
            self.capabilities = self.capabilities - {Capability.MULTI_CURRENCY}  # type: ignore[misc]
        self.client = client or SalesforceClient(config)
        self.lookups = Lookups(self.client, config, merchant)
        self.changes = OrderChanges(self.client, config)
        self.imports = FulfillmentImport(self.client, config, currency=merchant.currency)
        self.sale_steps = SaleSteps(self.client, config, self.lookups)
        self.payment_failure_count = 0
        """ProcessExceptionEvents recorded (the payment-failure metric)."""
        self._payment_feed: FulfillmentFeed | PubSubFeed | None = None
        self._feed: FulfillmentFeed | PubSubFeed | None = None
        self._feed_lock = threading.Lock()
        self._pm = plugin_manager or merchant.plugin_manager

    def __repr__(self) -> str:
        return f"<SalesforceBackend {self.merchant.merchant_id} {self.config.url_base}>"

    @property
    def feed(self) -> FulfillmentFeed | PubSubFeed:
        """The fulfillment-event feed (opened on first use), on the configured transport."""
        with self._feed_lock:  # listeners and the export may ask from different threads
            if self._feed is None:
                self._feed = self._open_feed()
            return self._feed

    def _open_feed(self) -> FulfillmentFeed | PubSubFeed:
        from omsbridge_salesforce.streaming import FulfillmentFeed
        from omsbridge_salesforce.streaming.pubsub import PubSubFeed

        config = self.config
        if config.transport == "pubsub":
            return PubSubFeed(
                self.client.auth,
                config.pubsub_endpoint,
                self.imports.catch_up_events,
                tls=config.pubsub_tls,
                root_certificates=config.pubsub_root_certificates,
                merchant_id=self.merchant.merchant_id,
                statuses=config.statuses_to_process,
                batch_size=config.pubsub_batch_size,
                stall_timeout=config.stall_timeout,
                connect_timeout=config.connect_timeout,
            )
        else:
            return FulfillmentFeed(
                self.client.auth,
                config.api_version,
                self.imports.catch_up_events,
                merchant_id=self.merchant.merchant_id,
                statuses=config.statuses_to_process,
                connect_timeout=config.connect_timeout,
                stall_timeout=config.stall_timeout,
            )

    def close(self) -> None:
        """End the event subscriptions and close the HTTP connections."""
        if self._feed is not None:
            self._feed.close()
        if self._payment_feed is not None:
            self._payment_feed.close()
        self.client.close()

    # -- post ---------------------------------------------------------------------------------

    def post(self, transaction: Transaction) -> PostResult:
        """Post a sale (one composite graph), a return (Connect actions on the original order)
        or an exchange (both). Idempotent on ``transaction_id``."""
        if not is_checked(transaction):  # omsbridge decoded it just now: already checked
            _recheck(transaction)
        if transaction.kind == TransactionKind.SALE:
            return self._post_sale(transaction)
        plans = self.changes.plan_returns(transaction)
        if transaction.kind == TransactionKind.RETURN:
            results = [self.changes.execute_return(plan) for plan in plans]
            # The return folds into its original order: that is the order get_order shows
            # it on (PostResult.order_id's one meaning), not the change order.
            return PostResult(
                transaction_id=transaction.transaction_id,
                order_id=order_id_of(plans[0].summary),
                order_number=pos_order_number(plans[0].summary),
                created=any(created for _, created in results),
            )
        # Exchange: everything is checked (returns planned, graph built) before any write.
        credit = sum((plan.value for plan in plans), Decimal(0))
        txn_id = transaction.transaction_id
        found = self.changes.tagged_orders([txn_id], exact=False)
        self.changes.refuse_case_twins([txn_id], found)  # before the returns are written
        row = found.get(txn_id)
        graph = None if row else self._graph(transaction, exchange_credit=credit)
        for plan in plans:
            self.changes.execute_return(plan)
        if row:
            return self.finish_sale(
                transaction,
                PostResult(
                    transaction.transaction_id, row["Id"], row.get("OrderNumber"), created=False
                ),
            )
        return self._post_sale(transaction, graph=graph, exchange_credit=credit)

    def build_graph(
        self, transaction: Transaction, *, exchange_credit: Decimal = Decimal(0)
    ) -> OrderGraph:
        """The graph a sale would be posted as, after the integrators' hooks (no order is sent;
        lookups may create missing reference records)."""
        return self._graph(transaction, exchange_credit=exchange_credit)

    def _graph(
        self, transaction: Transaction, *, exchange_credit: Decimal, refs: OrderRefs | None = None
    ) -> OrderGraph:
        if refs is None:
            refs = self.lookups.resolve(transaction)
        graph = build_order_graph(transaction, refs, self.config, exchange_credit=exchange_credit)
        if self._hook_impls():  # build_order_graph checked the limits; a hook may add nodes
            graph = self._apply_hooks(transaction, graph)
            graph.check_limits()
        return graph

    def _inline_graph(
        self, transaction: Transaction, *, exchange_credit: Decimal
    ) -> tuple[OrderGraph, Inline | None]:
        """The sale's graph with the lookup records it lacks created by its first nodes (one
        API call less than creating them first). When those nodes would break a graph limit
        (15 node kinds), they are created in a call of their own, as before."""
        refs, inline = self.lookups.resolve_inline(transaction)
        if inline is None:  # everything was known: these are the ids resolve() would give
            return self._graph(transaction, exchange_credit=exchange_credit, refs=refs), None
        try:
            graph = build_order_graph(
                transaction, refs, self.config, exchange_credit=exchange_credit
            )
            graph.nodes[0:0] = inline.nodes
            graph = self._apply_hooks(transaction, graph)
            graph.check_limits()
        except InvalidTransaction as exc:
            inline.abandon()
            if exc.code != "GRAPH_TOO_LARGE":
                raise
            return self._graph(transaction, exchange_credit=exchange_credit), None
        except BaseException:
            inline.abandon()
            raise
        return graph, inline

    def _account_query_graph(
        self, transaction: Transaction, *, exchange_credit: Decimal
    ) -> tuple[OrderGraph | None, AccountQuery | None]:
        """The sale's graph pointing at its account through a query sent in the same
        ``/composite`` request, when a new customer email is all the lookups lack (see
        :meth:`Lookups.account_query`); ``(None, None)`` otherwise, or when the graph has more
        nodes than a composite request holds beside the query."""
        found = self.lookups.account_query(transaction)
        if found is None:
            return None, None
        refs, account = found
        try:
            graph = build_order_graph(
                transaction, refs, self.config, exchange_credit=exchange_credit
            )
            if account.inline is not None:  # SKUs new to a fresh catalog index: created first
                graph.nodes[0:0] = account.inline.nodes
            graph = self._apply_hooks(transaction, graph)
            graph.check_limits()
        except BaseException as exc:
            if account.inline is None:
                raise
            account.inline.abandon()
            if isinstance(exc, InvalidTransaction) and exc.code == "GRAPH_TOO_LARGE":
                return None, None  # too large with the creation nodes: the usual lookups
            raise
        if len(graph.nodes) + 1 > MAX_SUBREQUESTS:
            if account.inline is not None:
                account.inline.abandon()
            return None, None
        return graph, account

    def _hook_impls(self) -> list[Any]:
        pm = self._pm
        if pm is None:
            from omsbridge.plugins import get_plugin_manager

            pm = get_plugin_manager()
        caller = getattr(pm.hook, GRAPH_HOOK, None)
        return list(reversed(caller.get_hookimpls())) if caller is not None else []

    def _apply_hooks(self, transaction: Transaction, graph: OrderGraph) -> OrderGraph:
        for impl in self._hook_impls():
            args = {
                "merchant_id": self.merchant.merchant_id,
                "transaction": transaction,
                "graph": graph,
            }
            try:
                returned = impl.function(**{k: args[k] for k in impl.argnames if k in args})
            except Exception as exc:
                raise Rejected(
                    f"the order-graph hook of plugin {impl.plugin_name!r} failed: "
                    f"{type(exc).__name__}: {exc}",
                    code="GRAPH_HOOK_FAILED",
                    backend=self.name,
                ) from exc
            if isinstance(returned, OrderGraph):
                graph = returned
        return graph

    def finish_sale(self, transaction: Transaction, result: PostResult) -> PostResult:
        """Run the steps after a sale's graph (the OrderSummary through Connect, the take-with
        fulfillment order; see :mod:`omsbridge_salesforce.aftersale`) that are still missing.
        Safe to repeat: a retry of the transaction finds what exists."""
        if self.sale_steps.needed(transaction):
            self.sale_steps.complete(transaction, result.order_id, fresh=result.created)
        if transaction.order_number and result.order_number != transaction.order_number:
            # The order number get_order shows: the POS's (kept in OrderReferenceNumber).
            result = attrs.evolve(result, order_number=transaction.order_number)
        return result

    def _post_sale(
        self,
        transaction: Transaction,
        *,
        graph: OrderGraph | None = None,
        exchange_credit: Decimal = Decimal(0),
    ) -> PostResult:
        result = self._post_graph(transaction, graph=graph, exchange_credit=exchange_credit)
        return self.finish_sale(transaction, result)

    def _post_graph(
        self,
        transaction: Transaction,
        *,
        graph: OrderGraph | None = None,
        exchange_credit: Decimal = Decimal(0),
    ) -> PostResult:
        txn_id = transaction.transaction_id
        if self.config.check_before_post:
            found = self._find_order(txn_id)
            if found is not None:
                return PostResult(txn_id, found[0], found[1], created=False)
        retried = False
        by_query = True  # a customer email the cache lacks is resolved in the sale's request
        while True:
            inline: Inline | None = None
            account: AccountQuery | None = None
            if graph is None and by_query:
                graph, account = self._account_query_graph(
                    transaction, exchange_credit=exchange_credit
                )
                inline = account.inline if account is not None else None
            if graph is None:
                graph, inline = self._inline_graph(transaction, exchange_credit=exchange_credit)
            # SKUs created because a fresh catalog index lacks them: queries after the nodes
            # (same request, when it has room) tell whether the merchant made one meanwhile.
            check = (
                self.lookups.duplicate_check(inline.new_skus)
                if inline is not None and inline.new_skus
                else {}
            )
            before = {ACCOUNT_QUERY_REF: account.soql} if account is not None else {}
            if len(before) + len(graph.nodes) + len(check) > MAX_SUBREQUESTS:
                check = {}
            rows: dict[str, list[dict[str, Any]]] = {}
            try:
                if before or check:
                    result, rows = self.client.graph_as_composite(
                        graph.graph_id,
                        graph.nodes,
                        before=before,
                        after=check,
                        context=f"post {txn_id}",
                    )
                else:
                    (result,) = self.client.graph([graph.payload()], context=f"post {txn_id}")
            except BaseException as exc:
                if inline is not None:
                    inline.abandon()
                if not isinstance(exc, TransientBackendError):
                    raise
                # A timeout may hide a commit: if the order exists, this post succeeded.
                found = self._find_order_quietly(txn_id)
                if found is not None:
                    log.info("post of %s timed out after commit; order %s exists", txn_id, found[0])
                    return PostResult(txn_id, found[0], found[1], created=False)
                raise
            if account is not None:
                if result.successful:
                    account.answered(rows[ACCOUNT_QUERY_REF])
                elif not _duplicate_order(result):
                    if inline is not None:
                        inline.abandon()
                    # Nothing was written. The query found no account (the default account
                    # was deleted, or is a Person Account) or the sale itself failed: the
                    # usual lookups settle which, and the graph then says why.
                    by_query, graph = False, None
                    continue
            if inline is not None:
                if result.successful:
                    inline.done({r: str(n.id) for r, n in result.nodes.items() if n.id})
                    if check:  # after done(): what it finds overrides what done() cached
                        self.lookups.checked(inline.new_skus, rows)
                else:
                    inline.abandon()
            if result.successful:
                number = result.nodes.get(NUMBER_REF)
                order_number = (
                    number.body.get("OrderNumber")
                    if number and isinstance(number.body, dict)
                    else None
                )
                return PostResult(
                    txn_id, str(result.nodes[ORDER_REF].id), order_number, created=True
                )
            error = result.error(context=f"post {txn_id}", sources=graph.sources)
            failed = result.failed_node()
            if (
                isinstance(error, Conflict)
                and failed is not None
                and failed.reference_id == ORDER_REF
            ):
                found = self._find_order(txn_id, refuse_twin=True)
                if found is not None:
                    return PostResult(txn_id, found[0], found[1], created=False)
            if error.code in _STALE_IDS and not retried:
                # A cached record was deleted in Salesforce: look everything up again, once.
                log.warning("cached Salesforce ids are stale (%s); refreshing lookups", error.code)
                self.lookups.clear()
                retried, graph = True, None
                continue
            if (
                isinstance(error, Conflict)
                and failed is not None
                and failed.reference_id.startswith(INLINE_PREFIX)
                and not retried
            ):
                # Another writer created the same lookup record meanwhile: it is findable now.
                log.info("lookup creation raced with another writer; looking up again")
                if self.lookups.catalog is not None:
                    # The index said it was missing: it is behind, so until its next sync
                    # SKUs are looked up (else the retry would create the same record again).
                    self.lookups.catalog.distrust()
                retried, graph = True, None
                continue
            raise error

    def _find_order(
        self, transaction_id: str, *, refuse_twin: bool = False
    ) -> tuple[str, str | None] | None:
        """The order of this transaction id, case included (SOQL ignores case, so an order
        of an id differing only in case comes back too and is not this one). With
        ``refuse_twin`` (after DUPLICATE_VALUE) such a twin raises the case-collision error."""
        field = self.config.order_external_id_field
        rows = self.client.query(
            soql(
                f"SELECT Id, OrderNumber, {field} FROM Order WHERE {field} = {{}} LIMIT 10",
                transaction_id,
            )
        )
        row = exact_row(rows, field, transaction_id)
        if row is not None:
            return (row["Id"], row.get("OrderNumber"))
        twin = twin_row(rows, field, transaction_id) if refuse_twin else None
        if twin is not None:
            raise case_collision(transaction_id, twin[field], twin.get("OrderNumber"), field)
        return None

    def _find_order_quietly(self, transaction_id: str) -> tuple[str, str | None] | None:
        try:
            return self._find_order(transaction_id)
        except BackendError:
            return None

    # -- batches (the export job; see omsbridge_salesforce.batching) --------------------------

    @cached_property
    def batches(self) -> BatchPoster:
        """Packs batches of sales into composite-graph requests; ``.stats`` counts them."""
        return BatchPoster(
            client=self.client,
            config=self.config,
            lookups=self.lookups,
            apply_hooks=self._apply_hooks,
            post_one=self.post,
            finish_sale=self.finish_sale,
        )

    @property
    def max_batch_size(self) -> int:  # type: ignore[override]
        """Sales of the size seen lately that fill one composite-graph request (1 to 75)."""
        return self.batches.max_batch_size

    def post_batch(self, transactions: Sequence[Transaction]) -> list[PostResult | BackendError]:
        """Post many transactions: sales as graphs packed into few composite-graph requests,
        each succeeding or failing on its own; returns and exchanges one by one, in order."""
        return self.batches.post_batch(transactions)

    def api_budget(self) -> ApiBudget | None:
        """The org's daily API requests left, from the last ``Sforce-Limit-Info`` header."""
        usage = self.client.api_usage
        if usage is None:
            return None
        used, limit = usage
        return ApiBudget(remaining=max(limit - used, 0), limit=limit, observed_at=datetime.now(UTC))

    # -- cancels ------------------------------------------------------------------------------

    def cancel_order(self, order_id: str, *, reason: str) -> CancelResult:
        """Cancel all open quantity (fulfillment-order lines first), then mark the summary."""
        return self.changes.cancel_order(order_id, reason)

    def cancel_items(
        self, order_id: str, lines: Sequence[CancelLine], *, reason: str
    ) -> CancelResult:
        """Cancel quantities of lines (by LineNumber)."""
        return self.changes.cancel_items(order_id, lines, reason)

    # -- reads --------------------------------------------------------------------------------

    def search_orders(self, query: OrderQuery) -> OrderPage:
        """Search order summaries (order number, names, email, customer id, dates), newest first."""
        text, size, _ = search_soql(self.config, query)
        page = self.client.query_page(text)
        rows = page.records
        more = len(rows) > size
        rows = rows[:size]
        cursor = encode_cursor(query, rows[-1]) if more and rows else None
        currency = self.merchant.currency
        return OrderPage(
            hits=tuple(hit(r, currency, self.config) for r in rows), next_cursor=cursor
        )

    def get_order(self, order_id: str) -> OrderDetail:
        """One order with lines, payments, refunds, fulfillment orders, shipments and change
        orders (2 calls)."""
        summary = self.changes.summary(order_id)
        sid = summary["Id"]
        found = self.client.queries(
            {
                "pay": soql(
                    "SELECT Id, Method, Type, CapturedAmount, RefundedAmount, BalanceAmount, "
                    "PaymentMethodId FROM OrderPaymentSummary WHERE OrderSummaryId = {}",
                    sid,
                ),
                "ref": soql(
                    "SELECT Id, Amount, Status, GatewayRefNumber, OrderPaymentSummaryId "
                    "FROM Refund WHERE OrderPaymentSummary.OrderSummaryId = {}",
                    sid,
                ),
                # Change orders (cancels and returns) and which kind each is: the totals.
                "chg": soql(
                    "SELECT Id, GrandTotalAmount FROM Order WHERE RelatedOrderId = {}",
                    summary.get("OriginalOrderId") or sid,
                ),
                "why": soql(
                    "SELECT ChangeOrderItem.OrderId, ChangeType FROM OrderItemSummaryChange "
                    "WHERE OrderSummaryId = {}",
                    sid,
                ),
                "fo": fulfillment_order_query(self.config, [soql("OrderSummaryId = {}", sid)]),
                "ship": soql(
                    f"SELECT {SHIPMENT_FIELDS} FROM Shipment WHERE OrderSummaryId = {{}}", sid
                ),
            }
        )
        return order_detail(
            self.config,
            summary,
            payments=found["pay"],
            refunds=found["ref"],
            fulfillment_orders=found["fo"],
            shipments=found["ship"],
            change_orders=found["chg"],
            changes=found["why"],
            currency=self.merchant.currency,
        )

    def fulfillment_orders(self, *, store_id: str | None = None) -> Sequence[FulfillmentOrder]:
        """Importable fulfillment orders (open, in ``statuses_to_process``, matching
        ``filter_query``), for one store through the configured ORDER_STORE_ID Location field;
        lines carry their share of taxes and adjustments."""
        return self.imports.for_store(store_id)

    def fulfillment_orders_by_id(self, ids: Sequence[str]) -> Sequence[FulfillmentOrder]:
        """The named fulfillment orders that are importable (what the event listener fetches
        for a batch of events: one query, however many orders are open)."""
        return self.imports.by_ids(ids)

    def update_fulfillment(self, update: FulfillmentUpdate) -> None:
        """PATCH the fulfillment order's Status (mapped through ``fulfillment_statuses``);
        CANCEL cancels its lines (cancel-item) and sets ``status_canceled_value``; SHIPPED adds
        a Shipment with the tracking; RECEIVED (ship to store) marks the inbound Shipment
        delivered and records received quantities (see docs/salesforce.md)."""
        self.changes.update_fulfillment(update)

    def watch_events(self, callback: Callable[[], None]) -> bool:
        """Have the event feed call ``callback`` whenever something arrives (events, a
        keepalive, a failure), so a :class:`~omsbridge.listen.ListenerPool` polls this
        merchant only then. Both transports support it."""
        self.feed.on_ready = callback
        return True

    @property
    def payment_feed(self) -> FulfillmentFeed | PubSubFeed:
        """The ``/event/ProcessExceptionEvent`` feed (opened on first use), on the same
        transport as fulfillment events."""
        if self._payment_feed is None:
            from omsbridge_salesforce.streaming import FulfillmentFeed
            from omsbridge_salesforce.streaming.payment_failures import (
                PE_CHANNEL,
                failure_from_message,
                failure_from_record,
            )
            from omsbridge_salesforce.streaming.pubsub import PubSubFeed

            config = self.config
            if config.transport == "pubsub":
                self._payment_feed = PubSubFeed(
                    self.client.auth,
                    config.pubsub_endpoint,
                    lambda since: [],  # no query replaces a lost failure event: warned below
                    tls=config.pubsub_tls,
                    root_certificates=config.pubsub_root_certificates,
                    merchant_id=self.merchant.merchant_id,
                    topic=PE_CHANNEL,
                    batch_size=config.pubsub_batch_size,
                    stall_timeout=config.stall_timeout,
                    connect_timeout=config.connect_timeout,
                    parse=failure_from_record,
                )
            else:
                self._payment_feed = FulfillmentFeed(
                    self.client.auth,
                    config.api_version,
                    lambda since: [],
                    merchant_id=self.merchant.merchant_id,
                    channel=PE_CHANNEL,
                    connect_timeout=config.connect_timeout,
                    stall_timeout=config.stall_timeout,
                    parse=failure_from_message,
                )
        return self._payment_feed

    event_channels = ("payment-failures",)
    """Feeds besides the fulfillment events that ``omsbridge worker`` follows (leased)."""

    def event_source(self, channel: str, store: Any, plugin_manager: Any) -> tuple[Any, Any]:
        """The source and handler of an extra channel (``event_channels``) for the worker:
        ``payment-failures`` -> ProcessExceptionEvents recorded on their outbox entries."""
        if channel != "payment-failures":
            raise ValueError(f"unknown event channel {channel!r}; expected payment-failures")
        from omsbridge_salesforce.streaming.payment_failures import (
            PaymentFailureSource,
            RecordPaymentFailures,
        )

        return PaymentFailureSource(self), RecordPaymentFailures(store, plugin_manager)

    def payment_failures(self, checkpoint: str | None, *, wait: float = 0.0) -> EventBatch:
        """ProcessExceptionEvents after ``checkpoint`` as
        :class:`~omsbridge_salesforce.streaming.payment_failures.PaymentFailure` (read by a core
        Listener through ``PaymentFailureSource``)."""
        return self.payment_feed.events(checkpoint, wait)

    def event_metrics(self) -> dict[str, Any]:
        """The event feed's figures: transport, connected, last event age (s), reconnects,
        stalls (the watchdog's reconnects), events and keepalives received."""
        return {
            "transport": self.config.transport,
            "catch_ups": self.feed.catch_ups,
            "payment_failures": self.payment_failure_count,
            **self.feed.metrics.snapshot(),
        }

    def events(self, checkpoint: str | None, *, wait: float = 0.0) -> EventBatch:
        """FOStatusChangedEvent after ``checkpoint`` (a replay id; None: from now), waiting up
        to ``wait`` seconds; only new statuses in ``statuses_to_process`` are returned."""
        return self.feed.events(checkpoint, wait)


def _recheck(transaction: Transaction) -> None:
    """Run the model's own checks again before anything is sent.

    A transaction built around its constructor (read by another tool, or changed after it was
    built) may break the model's rules, and Salesforce would accept much of it (a negative
    quantity is a valid OrderItem): refuse it here, naming the field, with nothing written.
    """
    try:
        wire.structure(wire.unstructure(transaction), Transaction)
    except InvalidTransaction as exc:
        raise InvalidTransaction(
            list(exc.issues), code=exc.code or "INVALID_TRANSACTION", backend="salesforce"
        ) from None


def _duplicate_order(result: GraphResult) -> bool:
    """Whether the post failed only because the order exists (DUPLICATE_VALUE on its node)."""
    failed = result.failed_node()
    if failed is None or failed.reference_id != ORDER_REF:
        return False
    return isinstance(result.error(), Conflict)
