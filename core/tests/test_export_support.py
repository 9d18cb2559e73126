"""Retry policy, metrics text, structured logs, the store's leases and the SPI's batch default."""

from __future__ import annotations

import json
import logging
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from faulty import FaultyOMS, make_sales

from omsbridge.errors import RateLimited, Rejected, TransientBackendError
from omsbridge.export import RetryPolicy
from omsbridge.export.metrics import (
    ProcessCounters,
    prometheus_text,
    serve_metrics,
    stats_dict,
)
from omsbridge.logs import ContextFilter, JsonFormatter, merchant_log
from omsbridge.model import PostResult
from omsbridge.spi import ApiBudget, MerchantContext, OrderBackend
from omsbridge.store import AttemptOutcome, AttemptRecord, EntryState, SqliteStore


def test_retry_policy_backoff_grows_caps_and_gives_up():
    policy = RetryPolicy(backoff_initial=1, backoff_max=8, max_attempts=6)
    now = datetime.now(UTC)
    delays = [(policy.retry_at(n, now) - now).total_seconds() for n in range(1, 6)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(8, 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert policy.retry_at(6, now) is None
    assert policy.pause_for(RateLimited("x", retry_after=3)) == 3
    assert policy.pause_for(RateLimited("x")) == policy.rate_limit_pause


def test_inline_retries_only_transient_errors():
    policy = RetryPolicy(inline_attempts=3, inline_wait_initial=0.001, inline_wait_max=0.002)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientBackendError("503")
        return "ok"

    assert policy.call(flaky) == "ok" and len(calls) == 3
    for error in (Rejected("no"), RateLimited("budget", retry_after=1)):
        calls.clear()

        def failing(error=error):
            calls.append(1)
            raise error

        with pytest.raises(type(error)):
            policy.call(failing)
        assert len(calls) == 1


def test_store_leases_expire_and_belong_to_one_owner(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    store.enqueue_many([("A", t) for t in make_sales(3)])
    assert store.acquire_merchant("A", "w1", 0.2)
    assert not store.acquire_merchant("A", "w2", 10)
    first = store.claim("A", "w1", limit=2, lease_seconds=0.2)
    assert [e.lease_owner for e in first] == ["w1", "w1"]
    # The third is free, but the queue is FIFO: w2 cannot jump ahead of w1's leased entries.
    assert store.claim("A", "w2", limit=3, lease_seconds=10) == []
    import time

    time.sleep(0.25)
    assert store.acquire_merchant("A", "w2", 10)
    again = store.claim("A", "w2", limit=3, lease_seconds=10)
    assert [e.entry_id for e in again] == [1, 2, 3]
    # w1 comes back from the dead and reports a failure: w2's view wins, w1's attempt is history.
    attempt = AttemptRecord(datetime.now(UTC), AttemptOutcome.RETRY, "export", error=None)
    state = store.mark_failed(1, "w1", [attempt], retry_at=datetime.now(UTC) + timedelta(hours=1))
    assert state == EntryState.PENDING
    assert store.get(1).lease_owner == "w2" and store.get(1).attempts == 0
    assert len(store.attempts(1)) == 1
    store.release([2, 3], "w2")
    assert store.get(2).lease_owner is None
    store.close()


def test_enqueue_is_idempotent_and_done_entries_stay_done(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    [sale] = make_sales(1)
    first = store.enqueue("A", sale, error=TransientBackendError("503", code="HTTP_503"))
    again = store.enqueue("A", sale, error=Rejected("no", code="X"), dead=True)
    assert first.entry_id == again.entry_id and again.state == EntryState.DEAD
    store.mark_done(first.entry_id, PostResult(sale.transaction_id, "O-1"), [])
    third = store.enqueue("A", sale, error=TransientBackendError("503"))
    assert third.state == EntryState.DONE
    assert store.enqueue_many([("A", sale)]) == 0
    store.close()


def test_stats_json_and_prometheus_text(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    store.enqueue_many([("A", t) for t in make_sales(2)])
    store.enqueue("B", make_sales(1, "B")[0], error=Rejected("no", code="X"), dead=True)
    store.record_budget("A", ApiBudget(4200, 15000, datetime.now(UTC)))
    store.pause_merchant("A", datetime.now(UTC) + timedelta(minutes=5))
    store.bury_event("B", "fulfillment", "E-1", "{}", ValueError("bad"))
    now = datetime.now(UTC)
    data = stats_dict(store.stats(now), now)
    assert data["totals"] == {
        "pending": 2, "due": 2, "dead": 1, "posted": 0, "retried": 0,
        "failed_attempts": 0, "dead_events": 1,
    }  # fmt: skip
    a = next(m for m in data["merchants"] if m["merchant_id"] == "A")
    assert a["api_budget"]["remaining"] == 4200 and a["paused_until"]
    counters = ProcessCounters()
    counters(store.get(1), AttemptOutcome.CREATED)
    text = prometheus_text(store.stats(now), now, counters)
    assert 'omsbridge_outbox_pending{merchant="A"} 2' in text
    assert 'omsbridge_outbox_dead{merchant="B"} 1' in text
    assert 'omsbridge_api_budget_remaining{merchant="A"} 4200' in text
    assert 'omsbridge_merchant_paused{merchant="A"} 1' in text
    assert 'omsbridge_export_attempts_total{merchant="A",outcome="created"} 1' in text
    assert "# TYPE omsbridge_outbox_pending gauge" in text
    server = serve_metrics(0, lambda: text)
    port = server.server_address[1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as answer:
        assert answer.read().decode() == text
    server.shutdown()
    store.close()


def test_log_lines_carry_merchant_and_transaction():
    record = logging.LogRecord(
        "omsbridge.x", logging.INFO, __file__, 1, "posted %s", ("O-1",), None
    )
    ContextFilter().filter(record)
    assert (record.merchant_id, record.transaction_id) == ("-", "-")
    logger = logging.getLogger("omsbridge.test-logs")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        merchant_log(logger, "SHOPNOW").info("posted", extra={"transaction_id": "T-1"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(JsonFormatter().format(seen[0]))
    assert (line["merchant_id"], line["transaction_id"], line["message"]) == (
        "SHOPNOW",
        "T-1",
        "posted",
    )


def test_default_post_batch_posts_each_and_isolates_failures():
    oms = FaultyOMS()
    sales = make_sales(3)
    oms.script[sales[1].transaction_id] = ["reject"]

    class OneByOne(OrderBackend):
        name = "one"
        config_class = object

        def post(self, transaction):
            return oms.post(transaction)

    backend = OneByOne(None, MerchantContext("A"))
    results = backend.post_batch(sales)
    assert isinstance(results[0], PostResult) and isinstance(results[2], PostResult)
    assert isinstance(results[1], Rejected)
    assert backend.max_batch_size == 1 and backend.api_budget() is None
