"""The store contract: every :class:`~omsbridge.store.Store` implementation behaves the same.

Each test runs on SQLite and on PostgreSQL (the ``store_kind`` fixture); a second store opened
on the same database stands for another worker process.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from faulty import make_sales

from omsbridge.errors import TransientBackendError
from omsbridge.model import PostResult
from omsbridge.store import AttemptOutcome, AttemptRecord, EntryState, ErrorInfo, PauseKind


def _now() -> datetime:
    return datetime.now(UTC)


def _attempt(outcome: AttemptOutcome, error: BaseException | None = None) -> AttemptRecord:
    info = ErrorInfo.from_error(error) if error is not None else None
    return AttemptRecord(_now(), outcome, "export", 12.5, info, "w1")


def test_enqueue_is_idempotent_and_a_done_entry_stays_done(make_store):
    store = make_store()
    [sale] = make_sales(1)
    first = store.enqueue("A", sale, error=TransientBackendError("down", code="X"))
    again = store.enqueue("A", sale, attempt=_attempt(AttemptOutcome.RETRY))
    assert again.entry_id == first.entry_id and again.attempts == 1
    assert first.last_error is not None and first.last_error.code == "X"
    assert first.transaction() == sale
    store.mark_done(first.entry_id, PostResult(sale.transaction_id, "O-1", "N-1"), [])
    done = store.enqueue("A", sale, dead=True)
    assert done.state == EntryState.DONE and done.order_id == "O-1"
    assert store.enqueue_many([("A", sale), ("A", make_sales(2)[1])]) == 1
    assert store.find("A", sale.transaction_id) == store.get(first.entry_id)


def test_claim_is_fifo_and_stops_at_an_entry_not_due(make_store):
    store = make_store()
    sales = make_sales(5)
    store.enqueue_many([("A", t) for t in sales])
    claimed = store.claim("A", "w1", limit=2, lease_seconds=30)
    assert [e.transaction_id for e in claimed] == [t.transaction_id for t in sales[:2]]
    assert all(e.lease_owner == "w1" for e in claimed)
    # Another owner cannot overtake the leased head of the queue.
    assert store.claim("A", "w2", limit=5, lease_seconds=30) == []
    head = claimed[0]
    state = store.mark_failed(
        head.entry_id,
        "w1",
        [_attempt(AttemptOutcome.RETRY, TransientBackendError("down"))],
        retry_at=_now() + timedelta(hours=1),
    )
    assert state == EntryState.PENDING
    store.release([claimed[1].entry_id], "w1")
    # The head is not due: nothing behind it may go first.
    assert store.claim("A", "w2", limit=5, lease_seconds=30) == []
    assert store.next_due("A") is not None and store.next_due("A") > _now() + timedelta(minutes=59)
    assert store.get(head.entry_id).attempts == 1
    assert [a.outcome for a in store.attempts(head.entry_id)] == [AttemptOutcome.RETRY]
    assert store.attempts(head.entry_id)[0].error.error_class == "TransientBackendError"


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_change_the_entry(make_store):
    store = make_store()
    store.enqueue_many([("A", t) for t in make_sales(2)])
    [entry] = store.claim("A", "dead-worker", limit=1, lease_seconds=0.2)
    time.sleep(0.3)
    taken = store.claim("A", "w2", limit=1, lease_seconds=30)
    assert [e.entry_id for e in taken] == [entry.entry_id]
    store.mark_failed(entry.entry_id, "dead-worker", [], retry_at=None)
    assert store.get(entry.entry_id).state == EntryState.PENDING  # not the holder: ignored
    assert store.mark_failed(entry.entry_id, "w2", [], retry_at=None) == EntryState.DEAD
    assert store.requeue_dead("A") == 1
    assert store.get(entry.entry_id).state == EntryState.PENDING


def test_merchant_leases_are_exclusive_until_they_expire(make_store):
    store, other = make_store(), make_store()
    assert store.acquire_merchant("A", "w1", 0.3)
    assert not other.acquire_merchant("A", "w2", 30)
    assert store.acquire_merchant("A", "w1", 0.3)  # renewal
    time.sleep(0.4)
    assert other.acquire_merchant("A", "w2", 30)
    store.release_merchant("A", "w1")  # not the holder: no effect
    assert not store.acquire_merchant("A", "w1", 30)
    other.release_merchant("A", "w2")
    assert store.acquire_merchant("A", "w1", 30)


def test_named_leases_one_holder_then_takeover(make_store):
    store, other = make_store(), make_store()
    assert store.acquire_lease("listen:A:fulfillment", "w1", 0.3)
    assert not other.acquire_lease("listen:A:fulfillment", "w2", 30)
    assert other.acquire_lease("listen:B:fulfillment", "w2", 30)
    assert store.lease_owners("listen:") == {
        "listen:A:fulfillment": "w1",
        "listen:B:fulfillment": "w2",
    }
    time.sleep(0.4)
    assert other.acquire_lease("listen:A:fulfillment", "w2", 30)
    other.release_lease("listen:B:fulfillment", "w2")
    assert store.lease_owners("listen:") == {"listen:A:fulfillment": "w2"}
    assert store.lease_owners("other:") == {}
    store.ping()


def test_pauses_count_refused_logins_and_resume(make_store):
    store = make_store()
    soon = _now() + timedelta(minutes=1)
    assert store.paused_until("A") is None
    store.pause_merchant("A", soon)
    assert store.paused_until("A") == soon
    first = store.pause_merchant("A", soon, kind=PauseKind.AUTH, reason="AuthFailed: no")
    second = store.pause_merchant("A", soon, kind=PauseKind.AUTH, reason="AuthFailed: no")
    assert (first.failures, second.failures) == (1, 2)
    assert store.merchant_pause("A") == second
    stats = store.stats(_now())
    [merchant] = stats.merchants
    assert merchant.pause_kind == PauseKind.AUTH and merchant.paused_until == soon
    assert store.resume_merchant("A") == second
    assert store.merchant_pause("A") is None and store.resume_merchant("B") is None
    store.pause_merchant("A", _now() - timedelta(seconds=1))
    assert store.paused_until("A") is None  # over


def test_checkpoints_seen_and_dead_events(make_store):
    store = make_store()
    assert store.checkpoint("A", "fulfillment") is None
    store.save_checkpoint("A", "fulfillment", "7", ["E-1", "E-2"])
    store.save_checkpoint("A", "fulfillment", "9", ["E-2", "E-3"])
    assert store.checkpoint("A", "fulfillment") == "9"
    assert store.checkpoint("A", "other") is None
    assert store.seen_events("A", "fulfillment", ["E-1", "E-3", "E-4"]) == {"E-1", "E-3"}
    assert store.seen_events("B", "fulfillment", ["E-1"]) == set()
    store.bury_event("A", "fulfillment", "E-5", "{}", ValueError("bad"))
    store.bury_event("A", "fulfillment", "E-5", "{}", ValueError("worse"))
    [dead] = store.dead_events("A")
    assert dead.error.message == "worse" and store.dead_events("B") == []
    assert store.stats(_now()).merchants[0].dead_events == 1


def test_stats_requeue_and_purge(make_store):
    store = make_store()
    sales = make_sales(3)
    store.enqueue_many([("A", t) for t in sales])
    entries = store.entries(merchant_id="A")
    assert [e.transaction_id for e in entries] == [t.transaction_id for t in sales]
    store.mark_done(entries[0].entry_id, PostResult(sales[0].transaction_id, "O"), [
        _attempt(AttemptOutcome.RETRY, TransientBackendError("x")),
        _attempt(AttemptOutcome.CREATED),
    ])  # fmt: skip
    [dead] = store.claim("A", "w", limit=2, lease_seconds=30)[1:]
    store.mark_failed(dead.entry_id, "w", [_attempt(AttemptOutcome.DEAD)], retry_at=None)
    [stats] = store.stats(_now()).merchants
    assert (stats.pending, stats.done, stats.dead, stats.retried) == (1, 1, 1, 1)
    assert stats.attempts_failed == 2 and stats.oldest_pending_at is not None
    assert store.requeue([dead.entry_id]) == 1
    assert store.get(dead.entry_id).attempts == 0
    assert store.purge(states=[EntryState.DONE], before=_now() + timedelta(seconds=5)) == 1
    assert store.get(entries[0].entry_id) is None and store.attempts(entries[0].entry_id) == []
    assert store.merchants_with_work(_now()) == ["A"]


def test_concurrent_claims_never_take_an_entry_twice(make_store):
    """Four stores (connections) claim one merchant's queue at once, as workers would."""
    stores = [make_store() for _ in range(4)]
    stores[0].enqueue_many([("A", t) for t in make_sales(200)])
    taken: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        store = stores[i]
        while True:
            claimed = store.claim("A", f"w{i}", limit=7, lease_seconds=30)
            if not claimed:
                if not store.merchants_with_work(_now()):
                    return
                continue
            for entry in claimed:
                store.mark_done(entry.entry_id, PostResult(entry.transaction_id, "O"), [])
            with lock:
                taken.extend(e.entry_id for e in claimed)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(taken) == 200 and len(set(taken)) == 200


def test_naive_times_are_refused(make_store):
    store = make_store()
    with pytest.raises(ValueError):
        store.pause_merchant("A", datetime(2030, 1, 1))


def test_many_leases_at_once(make_store):
    store, other = make_store(), make_store()
    names = [f"listen:M{i}:fulfillment" for i in range(5)]
    assert store.acquire_leases(names[:3], "w1", 30) == set(names[:3])
    assert other.acquire_leases(names, "w2", 30) == set(names[3:])
    assert store.acquire_leases(names, "w1", 30) == set(names[:3])  # renewed, not taken
    assert store.acquire_leases([], "w1", 30) == set()


def test_backend_cache_is_kept_replaced_and_dropped_per_merchant(make_store):
    # A backend's lookups (e.g. Salesforce record ids) survive a new process, on every store.
    store = make_store()
    before = _now() - timedelta(seconds=5)
    assert store.cached_value("A", "lookups") is None
    store.save_cached_value("A", "lookups", '{"acct": "001"}')
    store.save_cached_value("A", "lookups", '{"acct": "002"}')
    store.save_cached_value("B", "lookups", '{"acct": "009"}')
    value, saved = store.cached_value("A", "lookups")
    assert value == '{"acct": "002"}' and saved.tzinfo is not None and saved >= before
    other = make_store()  # another worker on the same database sees it
    assert other.cached_value("B", "lookups")[0] == '{"acct": "009"}'
    store.drop_cached_value("A", "lookups")
    assert store.cached_value("A", "lookups") is None
    assert other.cached_value("B", "lookups") is not None
