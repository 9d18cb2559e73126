"""An in-memory OMS with injected faults, for deterministic export-job tests.

Every fault the export job must survive, chosen per call: a 503 before anything happened, a
timeout *after* the OMS committed the order (the answer was lost), a row-lock error, an
exhausted API budget, a permanent rejection. The OMS counts how many times each transaction
*created* an order, which is what "exactly once" is checked against.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import attrs

from omsbridge import Capability, OrderBackend, PostResult, Transaction, hookimpl, wire
from omsbridge.errors import AuthFailed, BackendError, RateLimited, Rejected, TransientBackendError
from omsbridge.model import (
    EventBatch,
    FulfillmentEvent,
    FulfillmentKind,
    FulfillmentOrder,
    FulfillmentOrderLine,
)
from omsbridge.spi import ApiBudget

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "transactions" / "sale-cash.json"

FAULTS = ("503", "timeout_after_commit", "lock", "rate_limit", "reject")


def make_sales(count: int, prefix: str = "T") -> list[Transaction]:
    """``count`` valid sales with distinct transaction ids ``{prefix}-00001``..."""
    base = wire.structure(json.loads(EXAMPLE.read_text()), Transaction)
    return [
        attrs.evolve(base, transaction_id=f"{prefix}-{i:05d}", order_number=f"{prefix}-{i:05d}")
        for i in range(1, count + 1)
    ]


class FaultyOMS:
    """The OMS state one or more backends post into, and the faults it answers with."""

    def __init__(self, seed: int = 0) -> None:
        self.orders: dict[str, str] = {}
        self.creations: Counter[str] = Counter()
        self.order_log: list[str] = []
        self.calls = 0
        self.requests = 0
        self.script: dict[str, list[str]] = {}
        """Faults per transaction id, consumed one per call."""
        self.rate = 0.0
        self.random_faults: Sequence[str] = ("503", "timeout_after_commit", "lock")
        self.choose: Callable[[Transaction], str | None] | None = None
        self.budget = 1000
        self.refuse_login = False
        """Every call is refused as a bad login (revoked app, expired password) while set."""
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def fault_for(self, txn: Transaction) -> str | None:
        """The fault this call meets, if any."""
        with self._lock:
            self.calls += 1
            scripted = self.script.get(txn.transaction_id)
            if scripted:
                return scripted.pop(0)
            if self.choose is not None:
                return self.choose(txn)
            if self.rate and self._rng.random() < self.rate:
                return self._rng.choice(list(self.random_faults))
            return None

    def commit(self, txn: Transaction) -> PostResult:
        """Create the order unless it exists (idempotent on the transaction id)."""
        with self._lock:
            self.budget -= 1
            existing = self.orders.get(txn.transaction_id)
            if existing is not None:
                return PostResult(txn.transaction_id, existing, created=False)
            order_id = f"O-{len(self.orders) + 1}"
            self.orders[txn.transaction_id] = order_id
            self.creations[txn.transaction_id] += 1
            self.order_log.append(txn.transaction_id)
            return PostResult(txn.transaction_id, order_id, txn.order_number, created=True)

    def post(self, txn: Transaction) -> PostResult:
        """One post with its fault applied."""
        if self.refuse_login:
            with self._lock:
                self.calls += 1
            raise AuthFailed(
                "token request failed: invalid_grant: authentication failure",
                code="invalid_grant",
                status=400,
            )
        fault = self.fault_for(txn)
        if fault == "503":
            raise TransientBackendError("503 Service Unavailable", code="HTTP_503", status=503)
        if fault == "lock":
            raise TransientBackendError(
                "unable to obtain exclusive access to this record", code="UNABLE_TO_LOCK_ROW"
            )
        if fault == "rate_limit":
            raise RateLimited("daily limit", retry_after=0.05, code="REQUEST_LIMIT_EXCEEDED")
        if fault == "rate_limit_long":
            raise RateLimited("daily limit", retry_after=60, code="REQUEST_LIMIT_EXCEEDED")
        if fault == "reject":
            raise Rejected("no such product SKU-X", code="INVALID_SKU", status=422)
        result = self.commit(txn)
        if fault == "timeout_after_commit":
            raise TransientBackendError("no answer within 10 s; outcome unknown", code="TIMEOUT")
        return result


OMS: dict[str, FaultyOMS] = {}
"""The OMS of each name; a test creates them, backends find theirs by ``settings.oms``."""


@attrs.frozen
class FaultySettings:
    """Which in-memory OMS the merchant posts into."""

    oms: str = "default"


class FaultyBackend(OrderBackend):
    """Posts one transaction per request into a :class:`FaultyOMS`."""

    name = "faulty"
    config_class = FaultySettings
    capabilities = frozenset({Capability.POST_SALE, Capability.POST_RETURN})

    def __init__(self, config: FaultySettings, merchant: object) -> None:
        super().__init__(config, merchant)  # type: ignore[arg-type]
        self.oms = OMS.setdefault(config.oms, FaultyOMS())

    def post(self, transaction: Transaction) -> PostResult:
        with self.oms._lock:
            self.oms.requests += 1
        return self.oms.post(transaction)

    def api_budget(self) -> ApiBudget:
        return ApiBudget(self.oms.budget, 1000, datetime.now(UTC))


class BatchingBackend(FaultyBackend):
    """Posts up to 10 transactions per request; each item succeeds or fails on its own."""

    name = "faulty-batch"
    max_batch_size = 10

    def post_batch(self, transactions: Sequence[Transaction]) -> list[PostResult | BackendError]:
        assert len(transactions) <= self.max_batch_size
        with self.oms._lock:
            self.oms.requests += 1
        results: list[PostResult | BackendError] = []
        for transaction in transactions:
            try:
                results.append(self.oms.post(transaction))
            except BackendError as error:
                results.append(error)
        return results


class FaultyPlugin:
    """Registers the faulty backends."""

    @hookimpl
    def omsbridge_register_backends(self, register: Callable[[type[OrderBackend]], None]) -> None:
        register(FaultyBackend)
        register(BatchingBackend)


def config_text(
    merchants: dict[str, str], backend: str = "faulty", store: str | None = None
) -> str:
    """A config file with one merchant per ``merchant_id -> oms name`` (``store``: the
    ``[store]`` table, SQLite by default)."""
    parts = [store or '[store]\npath = "state/outbox.db"\n']
    for merchant_id, oms in merchants.items():
        parts.append(f'[merchants.{merchant_id}]\nbackend = "{backend}"\n')
        parts.append(f'[merchants.{merchant_id}.{backend}]\noms = "{oms}"\n')
    return "\n".join(parts)


class Feed:
    """An event feed: events numbered 1.. (the checkpoint), possibly repeating an event id."""

    def __init__(self) -> None:
        self.events: list[FulfillmentEvent] = []
        self.fos: dict[str, FulfillmentOrder] = {}
        self.reads: list[str | None] = []
        self.fail_next_reads = 0
        self.batch_size = 3

    def emit(self, fo_id: str, status: str, event_id: str | None = None) -> FulfillmentEvent:
        """Append an event (``event_id`` given: a re-delivery of an earlier one)."""
        seq = len(self.events) + 1
        event = FulfillmentEvent(
            event_id=event_id or f"E-{seq}",
            fulfillment_order_id=fo_id,
            new_status=status,
            checkpoint=str(seq),
        )
        self.events.append(event)
        if event_id is not None:
            return event  # a re-delivery says nothing new about the fulfillment order
        line = FulfillmentOrderLine("FL-1", "SKU-A", Decimal(1), Decimal("10.00"))
        self.fos[fo_id] = FulfillmentOrder(
            fo_id, f"ORD-{fo_id}", status, FulfillmentKind.PICKUP, (line,), "USD"
        )
        return event


FEEDS: dict[str, Feed] = {}


class FeedBackend(FaultyBackend):
    """A backend with an event feed and fulfillment orders (for listener tests)."""

    name = "feed"
    capabilities = frozenset(
        {Capability.POST_SALE, Capability.EVENTS, Capability.FULFILLMENT_ORDERS}
    )

    def __init__(self, config: FaultySettings, merchant: object) -> None:
        super().__init__(config, merchant)
        self.feed = FEEDS.setdefault(config.oms, Feed())

    def events(self, checkpoint: str | None, *, wait: float = 0.0) -> EventBatch:
        feed = self.feed
        feed.reads.append(checkpoint)
        if feed.fail_next_reads:
            feed.fail_next_reads -= 1
            raise TransientBackendError("feed unavailable", code="HTTP_503")
        start = len(feed.events) if checkpoint is None else int(checkpoint)
        batch = tuple(feed.events[start : start + feed.batch_size])
        if not batch and wait:
            time.sleep(min(wait, 0.01))
        return EventBatch(batch, batch[-1].checkpoint if batch else str(start))

    def fulfillment_orders(self, *, store_id: str | None = None) -> Sequence[FulfillmentOrder]:
        return tuple(self.feed.fos.values())


class FeedPlugin:
    """Registers the feed backend."""

    @hookimpl
    def omsbridge_register_backends(self, register: Callable[[type[OrderBackend]], None]) -> None:
        register(FeedBackend)
