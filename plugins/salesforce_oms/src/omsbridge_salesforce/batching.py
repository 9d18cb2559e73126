"""Many sales in few composite-graph requests: the Salesforce side of the export job.

The export job hands :meth:`SalesforceBackend.post_batch` up to ``max_batch_size`` queued
transactions. Their sales go out in as few ``/composite/graph`` requests as Salesforce's limits
allow (composite.md §1.4: at most 75 graphs, 500 nodes and 15 different nodes, i.e. distinct
(API version, HTTP method, sObject), per request). Each sale stays **its own graph**, so it
commits or rolls back alone, and each item of the batch succeeds or fails on its own:

* the lookups of the whole batch are resolved first, in one round
  (:meth:`~omsbridge_salesforce.lookups.Lookups.resolve_many`; missing records created);
* a graph Salesforce refused gives its item the error of the node that really failed (not the
  ``PROCESSING_HALTED`` ones), through the client's usual mapping; ``DUPLICATE_VALUE`` on the
  order's external id gives the existing order with ``created=False``; graphs halted because
  more than 14 graphs of the request failed, and graphs that met a stale cached id, are sent
  once more;
* when the whole request fails with a retryable error (5xx, timeout, lost connection) one SOQL
  ``IN`` query on the external-id field tells which of its orders exist now: those are
  ``created=False``, the others get the error. If nothing at all came of the batch the error is
  raised instead, so the export job retries the request in-line. An order is never created twice;
* returns and exchanges (Connect actions, which cannot be graph nodes) are posted one by one,
  in their order, after the sales; one is held back (a retryable error) when a transaction
  queued before it failed retryably, so a return never goes out before its sale.

``max_batch_size`` follows the graphs actually built: it is how many sales of the size seen
lately fill one request (at most 75), so a long queue leaves in requests of close to 500 nodes,
one API call each.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from omsbridge import (
    BackendError,
    Conflict,
    InvalidTransaction,
    Issue,
    PostResult,
    RateLimited,
    Rejected,
    Transaction,
    TransactionKind,
    TransientBackendError,
)
from omsbridge_salesforce.client import GraphResult, SalesforceClient
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.graph import (
    MAX_NODE_KINDS,
    MAX_NODES,
    NUMBER_REF,
    ORDER_REF,
    OrderGraph,
    OrderRefs,
    build_order_graph,
)
from omsbridge_salesforce.lookups import Lookups
from omsbridge_salesforce.soql import soql
from omsbridge_salesforce.txn_ids import case_collision

__all__ = ["MAX_GRAPHS", "BatchPoster", "BatchStats", "node_kinds", "pack"]

log = logging.getLogger(__name__)

MAX_GRAPHS = 75
"""Graphs per composite-graph request Salesforce accepts."""
MAX_GRAPH_FAILURES = 14
"""Failed graphs after which Salesforce halts the rest of the request."""

_BACKEND = "salesforce"
_HALTED = "PROCESSING_HALTED"
_STALE_IDS = frozenset({"INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED"})
_NODE_URL = re.compile(r"/services/data/(v[0-9.]+)/sobjects/([A-Za-z0-9_]+)")
_IN_CHUNK = 200
# Nodes per graph assumed until real graphs were seen: a two-line sale with a little to spare,
# since guessing low splits the first batches into a full request and a nearly empty one.
_FIRST_GUESS = 12.0

Kind = tuple[str, str, str]
Outcome = PostResult | BackendError


def node_kinds(graph: OrderGraph) -> frozenset[Kind]:
    """The (API version, HTTP method, sObject) of every node: Salesforce's "different nodes"."""
    kinds = set()
    for node in graph.nodes:
        match = _NODE_URL.search(str(node.get("url", "")))
        version, sobject = match.groups() if match else ("?", "?")
        kinds.add((version, str(node.get("method", "")).upper(), sobject.lower()))
    return frozenset(kinds)


def pack(
    graphs: Sequence[tuple[int, frozenset[Kind]]],
    *,
    max_graphs: int = MAX_GRAPHS,
    max_nodes: int = MAX_NODES,
    max_kinds: int = MAX_NODE_KINDS,
) -> list[list[int]]:
    """Group graphs, given as (node count, kinds), into as few requests as the limits allow.

    First fit, largest graph first (within a few percent of the fewest requests), then each
    request lists its graphs in queue order and requests go out oldest graph first. Every
    graph must fit a request on its own.
    """
    bins: list[tuple[list[int], list[int], set[Kind]]] = []  # (indexes, [nodes], kinds)
    for index in sorted(range(len(graphs)), key=lambda i: -graphs[i][0]):
        nodes, kinds = graphs[index]
        for members, total, used in bins:
            if (
                len(members) < max_graphs
                and total[0] + nodes <= max_nodes
                and len(used | kinds) <= max_kinds
            ):
                members.append(index)
                total[0] += nodes
                used |= kinds
                break
        else:
            bins.append(([index], [nodes], set(kinds)))
    requests = [sorted(members) for members, _, _ in bins]
    return sorted(requests, key=lambda members: members[0])


class BatchStats:
    """What batches were sent as: requests, graphs, nodes, and nodes per request (histogram)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.graphs = 0
        self.nodes = 0
        self.nodes_per_request: Counter[int] = Counter()

    def record(self, graphs: int, nodes: int) -> None:
        """Count one composite-graph request."""
        with self._lock:
            self.requests += 1
            self.graphs += graphs
            self.nodes += nodes
            self.nodes_per_request[nodes] += 1

    def snapshot(self) -> dict[str, Any]:
        """The figures so far: totals, mean/min/median nodes per request."""
        with self._lock:
            counts = sorted(self.nodes_per_request.elements())
            return {
                "requests": self.requests,
                "graphs": self.graphs,
                "nodes": self.nodes,
                "mean_nodes_per_request": round(self.nodes / self.requests, 1)
                if self.requests
                else None,
                "min_nodes_per_request": counts[0] if counts else None,
                "median_nodes_per_request": counts[len(counts) // 2] if counts else None,
            }


class _SizeEstimate:
    """How many graphs fill a request: a moving mean and variance of graph sizes."""

    def __init__(self, alpha: float = 0.1) -> None:
        self._alpha = alpha
        self._mean: float | None = None
        self._var = 0.0
        self._lock = threading.Lock()

    def observe(self, nodes: int) -> None:
        with self._lock:
            if self._mean is None:
                self._mean = float(nodes)
                return
            delta = nodes - self._mean
            self._mean += self._alpha * delta
            self._var = (1 - self._alpha) * (self._var + self._alpha * delta * delta)

    def batch_size(self) -> int:
        with self._lock:
            mean, var = self._mean or _FIRST_GUESS, self._var
        size = min(MAX_GRAPHS, int(MAX_NODES // mean))
        # Leave room for one standard deviation of the sum, so a batch of mixed sizes rarely
        # spills a few graphs into a second, nearly empty request.
        while size > 1 and size * mean + math.sqrt(size * var) > MAX_NODES:
            size -= 1
        return max(1, size)


@attrs.define
class _Item:
    index: int
    transaction: Transaction
    graph: OrderGraph | None = None
    nodes: int = 0
    kinds: frozenset[Kind] = frozenset()

    @property
    def txn_id(self) -> str:
        return self.transaction.transaction_id


@attrs.define
class _Round:
    """What one round of requests left to settle after it."""

    again: dict[int, tuple[_Item, BackendError]] = attrs.field(factory=dict)  # send once more
    stale: bool = False
    unknown: dict[int, BackendError] = attrs.field(factory=dict)  # whole request failed
    conflicts: dict[int, BackendError] = attrs.field(factory=dict)  # duplicate external id


class BatchPoster:
    """Posts a batch of transactions for :class:`~omsbridge_salesforce.backend.SalesforceBackend`.

    ``apply_hooks`` runs the integrators' graph hooks; ``post_one`` posts a single transaction
    (used for returns and exchanges, which are Connect actions).
    """

    def __init__(
        self,
        *,
        client: SalesforceClient,
        config: SalesforceConfig,
        lookups: Lookups,
        apply_hooks: Callable[[Transaction, OrderGraph], OrderGraph],
        post_one: Callable[[Transaction], PostResult],
        finish_sale: Callable[[Transaction, PostResult], PostResult] | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._lookups = lookups
        self._apply_hooks = apply_hooks
        self._post_one = post_one
        self._finish_sale = finish_sale
        self._estimate = _SizeEstimate()
        self.stats = BatchStats()

    @property
    def max_batch_size(self) -> int:
        """Sales of the size seen lately that fill one composite-graph request (1 to 75)."""
        return self._estimate.batch_size()

    # -- the batch ---------------------------------------------------------------------------

    def post_batch(self, transactions: Sequence[Transaction]) -> list[Outcome]:
        """One outcome per transaction, in order (see the module doc)."""
        outcomes: dict[int, Outcome] = {}
        whole: set[int] = set()  # ids of errors that failed a whole request
        sales = [_Item(i, t) for i, t in enumerate(transactions) if t.kind == TransactionKind.SALE]
        if sales:
            self._post_sales(sales, outcomes, whole)
            self._finish(sales, outcomes)
        for index, transaction in enumerate(transactions):
            if index in outcomes:
                continue
            held = self._held_back(index, outcomes)
            if held is not None:
                outcomes[index] = held
                continue
            try:
                outcomes[index] = self._post_one(transaction)
            except BackendError as error:
                outcomes[index] = error
        ordered = [outcomes[i] for i in range(len(transactions))]
        failed_whole = [o for o in ordered if isinstance(o, BackendError) and id(o) in whole]
        if failed_whole and all(
            isinstance(o, BackendError) and (id(o) in whole or o.code == "HELD_BACK")
            for o in ordered
        ):
            # Nothing came of the batch: let the export job retry it in-line as one request.
            raise failed_whole[0]
        return ordered

    def _finish(self, sales: list[_Item], outcomes: dict[int, Outcome]) -> None:
        """The steps after each posted sale's graph (summary, take-with fulfillment)."""
        if self._finish_sale is None:
            return
        for item in sales:
            done = outcomes.get(item.index)
            if isinstance(done, PostResult):
                try:
                    outcomes[item.index] = self._finish_sale(item.transaction, done)
                except BackendError as error:
                    outcomes[item.index] = error

    @staticmethod
    def _held_back(index: int, outcomes: dict[int, Outcome]) -> BackendError | None:
        earlier = [
            o
            for i, o in sorted(outcomes.items())
            if i < index and isinstance(o, BackendError) and o.retryable
        ]
        if not earlier:
            return None
        limited = next((o for o in earlier if isinstance(o, RateLimited)), None)
        if limited is not None:
            return limited  # the same pause; sending would only meet the same limit
        return TransientBackendError(
            "held back: a transaction queued before this one waits for a retry",
            code="HELD_BACK",
            backend=_BACKEND,
        )

    def _post_sales(
        self, items: list[_Item], outcomes: dict[int, Outcome], whole: set[int]
    ) -> None:
        self._build(items, outcomes)
        ready = [item for item in items if item.index not in outcomes]
        if ready and self._config.check_before_post:
            found = self._existing([item.txn_id for item in ready])
            for item in ready:
                if item.txn_id in found:
                    outcomes[item.index] = _existing_result(item.txn_id, found[item.txn_id])
            ready = [item for item in ready if item.index not in outcomes]
        for item in ready:
            self._estimate.observe(item.nodes)
        settle = self._send(ready, outcomes)
        if settle.again:
            again = [item for item, _ in settle.again.values()]
            if settle.stale:
                # A cached record was deleted in Salesforce: look everything up again, once.
                log.warning("cached Salesforce ids are stale; refreshing lookups")
                self._lookups.clear()
                self._build(again, outcomes)
            last = self._send([item for item in again if item.index not in outcomes], outcomes)
            for index, (_, error) in last.again.items():  # the same again: give up for now
                outcomes.setdefault(index, error)
            settle.unknown.update(last.unknown)
            settle.conflicts.update(last.conflicts)
        self._settle_unknown(items, settle, outcomes, whole)

    def _build(self, items: list[_Item], outcomes: dict[int, Outcome]) -> None:
        """Lookups for all items at once, then each item's graph (or its error)."""
        transactions = [item.transaction for item in items]
        try:
            refs: list[OrderRefs | BackendError] = list(self._lookups.resolve_many(transactions))
        except BackendError as error:
            if error.retryable:
                raise  # nothing was sent: the whole batch is retried
            # Some transaction spoils the round (an unknown gateway...): find out which.
            refs = []
            for transaction in transactions:
                try:
                    refs.append(self._lookups.resolve(transaction))
                except BackendError as own:
                    refs.append(own)
        for item, found in zip(items, refs, strict=True):
            outcomes.pop(item.index, None)
            if isinstance(found, BackendError):
                outcomes[item.index] = found
                continue
            try:
                item.graph = self._graph(item.transaction, found)
            except BackendError as error:
                outcomes[item.index] = error
                continue
            except Exception as exc:  # a bug in one graph must not sink the whole batch
                outcomes[item.index] = Rejected(
                    f"post {item.txn_id}: cannot build the order graph: "
                    f"{type(exc).__name__}: {exc}",
                    code="GRAPH_BUILD_FAILED",
                    backend=_BACKEND,
                )
                continue
            item.nodes, item.kinds = len(item.graph.nodes), node_kinds(item.graph)

    def _graph(self, transaction: Transaction, refs: OrderRefs) -> OrderGraph:
        graph = build_order_graph(transaction, refs, self._config)
        graph = self._apply_hooks(transaction, graph)
        graph.check_limits()
        kinds = node_kinds(graph)
        if len(kinds) > MAX_NODE_KINDS:  # check_limits does not count API versions
            raise InvalidTransaction(
                [
                    Issue(
                        "",
                        f"the order graph uses {len(kinds)} different nodes (API version, "
                        f"method, sObject); Salesforce allows {MAX_NODE_KINDS} per request",
                    )
                ],
                code="GRAPH_TOO_LARGE",
                backend=_BACKEND,
            )
        return graph

    # -- requests ----------------------------------------------------------------------------

    def _send(self, items: list[_Item], outcomes: dict[int, Outcome]) -> _Round:
        settle = _Round()
        if not items:
            return settle
        for members in pack([(item.nodes, item.kinds) for item in items]):
            self._request([items[m] for m in members], outcomes, settle)
        return settle

    def _request(self, items: list[_Item], outcomes: dict[int, Outcome], settle: _Round) -> None:
        by_graph: dict[str, _Item] = {}
        payload = []
        for n, item in enumerate(items):
            assert item.graph is not None
            graph_id = item.graph.graph_id
            if graph_id in by_graph:  # two ids that clean up alike: graphIds must be unique
                graph_id = f"{graph_id[:32]}_{n}"
            by_graph[graph_id] = item
            payload.append({**item.graph.payload(), "graphId": graph_id})
        nodes = sum(item.nodes for item in items)
        context = f"post batch of {len(items)} ({items[0].txn_id}...)"
        try:
            results = self._client.graph(payload, context=context)
        except BackendError as error:
            for item in items:
                settle.unknown[item.index] = error
            return
        finally:
            self.stats.record(len(items), nodes)
        answered: set[str] = set()
        failures = 0
        for result in results:
            answer_for = by_graph.get(result.graph_id)
            if answer_for is None:
                continue
            answered.add(result.graph_id)
            if not result.successful:
                failures += 1
            self._graph_outcome(answer_for, result, failures - 1, outcomes, settle)
        for graph_id, item in by_graph.items():
            if graph_id not in answered:  # no answer for it: as unknown as a timeout
                settle.unknown[item.index] = TransientBackendError(
                    f"post {item.txn_id}: Salesforce did not answer for graph {graph_id}",
                    code="NO_GRAPH_RESULT",
                    backend=_BACKEND,
                )

    def _graph_outcome(
        self,
        item: _Item,
        result: GraphResult,
        failed_before: int,
        outcomes: dict[int, Outcome],
        settle: _Round,
    ) -> None:
        txn_id = item.txn_id
        if result.successful:
            order = result.nodes.get(ORDER_REF)
            number = result.nodes.get(NUMBER_REF)
            order_number = (
                number.body.get("OrderNumber") if number and isinstance(number.body, dict) else None
            )
            outcomes[item.index] = PostResult(
                txn_id, str(order.id if order else ""), order_number, created=True
            )
            return
        if failed_before >= MAX_GRAPH_FAILURES and _all_halted(result):
            # Never processed: the request gave up before this graph.
            settle.again[item.index] = (
                item,
                TransientBackendError(
                    f"post {txn_id}: not processed (more than {MAX_GRAPH_FAILURES} graphs of "
                    "the request failed before it)",
                    code=_HALTED,
                    backend=_BACKEND,
                ),
            )
            return
        assert item.graph is not None
        error = result.error(context=f"post {txn_id}", sources=item.graph.sources)
        failed = result.failed_node()
        if isinstance(error, Conflict) and failed is not None and failed.reference_id == ORDER_REF:
            settle.conflicts[item.index] = error
            return
        if error.code in _STALE_IDS:
            settle.stale = True
            settle.again[item.index] = (item, error)
            return
        outcomes[item.index] = error

    # -- what exists -------------------------------------------------------------------------

    def _settle_unknown(
        self, items: list[_Item], settle: _Round, outcomes: dict[int, Outcome], whole: set[int]
    ) -> None:
        """Orders of failed requests and duplicate ids: one query tells which exist."""
        by_index = {item.index: item for item in items}
        # A rate limit or a refused login means the request was not processed: no query.
        unknown = {i: e for i, e in settle.unknown.items() if isinstance(e, TransientBackendError)}
        ask = sorted(set(unknown) | set(settle.conflicts))
        found: dict[str, tuple[str, str | None]] = {}
        lookup_error: BackendError | None = None
        if ask:
            try:
                found = self._existing([by_index[i].txn_id for i in ask])
            except BackendError as failed:
                lookup_error = failed
        for index, error in settle.unknown.items():
            txn_id = by_index[index].txn_id
            if txn_id in found:
                log.info(
                    "batch post of %s failed after commit; order %s exists",
                    txn_id,
                    found[txn_id][0],
                )
                outcomes[index] = _existing_result(txn_id, found[txn_id])
            else:
                outcomes[index] = error
                whole.add(id(error))
        folded = {stored.casefold(): stored for stored in found}
        for index, conflict in settle.conflicts.items():
            txn_id = by_index[index].txn_id
            twin = folded.get(txn_id.casefold())
            if txn_id in found:
                outcomes[index] = _existing_result(txn_id, found[txn_id])
            elif twin is not None:
                # The duplicate is another transaction whose id differs only in case.
                outcomes[index] = case_collision(
                    txn_id, twin, found[twin][1], self._config.order_external_id_field
                )
            else:
                outcomes[index] = lookup_error or conflict

    def _existing(self, transaction_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """Orders that carry these transaction ids: stored id -> (order id, order number).

        Keys are the ids as stored: SOQL ignores case, so an id differing only in case from
        one asked for may be among them; callers compare exactly (and name such twins)."""
        field = self._config.order_external_id_field
        found: dict[str, tuple[str, str | None]] = {}
        ids = sorted(set(transaction_ids))
        for start in range(0, len(ids), _IN_CHUNK):
            rows = self._client.query(
                soql(
                    f"SELECT Id, OrderNumber, {field} FROM Order WHERE {field} IN {{:in}}",
                    ids[start : start + _IN_CHUNK],
                )
            )
            for row in rows:
                found.setdefault(str(row.get(field)), (row["Id"], row.get("OrderNumber")))
        return found


def _existing_result(txn_id: str, found: tuple[str, str | None]) -> PostResult:
    return PostResult(txn_id, found[0], found[1], created=False)


def _all_halted(result: GraphResult) -> bool:
    for node in result.nodes.values():
        body = node.body if isinstance(node.body, list) else [node.body]
        codes = {e.get("errorCode") for e in body if isinstance(e, dict)}
        if codes != {_HALTED}:
            return False
    return bool(result.nodes)
