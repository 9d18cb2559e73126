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
from omsbridge.store.base import EventCommit


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
    # What claim returns is what the store now holds (the lease included), as a fresh read.
    assert claimed == [store.get(e.entry_id) for e in claimed]
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


# -- outgoing webhooks (schema step 4) -----------------------------------------------------------


def test_webhook_enqueue_is_idempotent_on_the_message_id(make_store):
    from omsbridge.store import WebhookState

    store = make_store()
    assert not store.webhook_subject_seen("A", "FO-1")
    assert store.enqueue_webhook("msg_1", "A", "fulfillment_order.created", "FO-1", '{"a":1}')
    # The same event recorded again (a listener re-handling a batch after a crash): kept once.
    assert not store.enqueue_webhook("msg_1", "A", "fulfillment_order.created", "FO-1", '{"x":2}')
    assert store.webhook_subject_seen("A", "FO-1") and not store.webhook_subject_seen("B", "FO-1")
    message = store.webhook("msg_1")
    assert message.body == '{"a":1}' and message.state == WebhookState.PENDING
    assert message.attempts == 0 and message.created_at.tzinfo is not None
    assert store.webhook("nope") is None


def test_webhook_claims_lease_retry_dead_and_replay(make_store):
    from omsbridge.store import WebhookState

    store, other = make_store(), make_store()
    for n in range(3):
        store.enqueue_webhook(f"msg_{n}", "A", "fulfillment_order.created", f"FO-{n}", "{}")
    store.enqueue_webhook("msg_b", "B", "fulfillment_order.created", "FO-b", "{}")
    claimed = store.claim_webhooks("w1", ["A"], limit=2, lease_seconds=30)
    assert len(claimed) == 2 and all(m.lease_owner == "w1" for m in claimed)
    assert {m.merchant_id for m in claimed} == {"A"}
    # Another worker takes only what is not leased, and only the merchants it asks for.
    rest = other.claim_webhooks("w2", ["A"], limit=5, lease_seconds=30)
    assert len(rest) == 1 and rest[0].message_id not in {m.message_id for m in claimed}
    assert other.claim_webhooks("w2", [], limit=5, lease_seconds=30) == []
    first, second = claimed
    assert not store.webhook_delivered(first.message_id, "w2", 200)  # not the holder
    assert store.webhook_delivered(first.message_id, "w1", 204)
    done = store.webhook(first.message_id)
    assert done.state == WebhookState.DELIVERED and done.attempts == 1
    assert done.last_status == 204 and done.delivered_at is not None
    later = _now() + timedelta(hours=1)
    state = store.webhook_failed(
        second.message_id, "w1", status=500, error="HTTP 500", retry_at=later
    )
    assert state == WebhookState.PENDING
    again = store.webhook(second.message_id)
    assert again.attempts == 1 and again.last_status == 500 and again.next_attempt_at >= later
    assert store.claim_webhooks("w1", ["A"], limit=5, lease_seconds=30) == []  # not due
    # Not counted (a disabled endpoint): the attempts stay; a retry now is due at once.
    other.webhook_failed(
        rest[0].message_id, "w2", status=410, error="gone", retry_at=_now(), count=False
    )
    assert store.webhook(rest[0].message_id).attempts == 0
    [back] = store.claim_webhooks("w1", ["A"], limit=5, lease_seconds=30)
    assert back.message_id == rest[0].message_id
    assert store.webhook_failed(
        back.message_id, "w1", status=None, error="timeout", retry_at=None
    ) == (WebhookState.DEAD)
    assert [m.message_id for m in store.webhooks(state=WebhookState.DEAD)] == [back.message_id]
    assert {m.message_id for m in store.webhooks(merchant_id="A")} == {"msg_0", "msg_1", "msg_2"}
    assert store.webhooks(since=_now() + timedelta(minutes=1)) == []
    assert len(store.webhooks(until=_now() + timedelta(minutes=1), limit=2)) == 2
    # Replay: delivered and dead ones go again, same id and body, attempts from zero.
    assert store.replay_webhooks([first.message_id, back.message_id, second.message_id]) == 2
    replayed = store.webhook(first.message_id)
    assert replayed.state == WebhookState.PENDING and replayed.attempts == 0
    assert replayed.body == first.body
    ids = {m.message_id for m in store.claim_webhooks("w1", ["A"], limit=5, lease_seconds=30)}
    assert ids == {first.message_id, back.message_id}


def test_a_webhook_lease_of_a_dead_sender_runs_out(make_store):
    store = make_store()
    store.enqueue_webhook("msg_1", "A", "fulfillment_order.created", "FO-1", "{}")
    [message] = store.claim_webhooks("killed", ["A"], limit=1, lease_seconds=0.2)
    assert store.claim_webhooks("w2", ["A"], limit=1, lease_seconds=30) == []
    time.sleep(0.3)
    [taken] = store.claim_webhooks("w2", ["A"], limit=1, lease_seconds=30)
    assert taken.message_id == message.message_id and taken.lease_owner == "w2"
    assert not store.webhook_delivered("msg_1", "killed", 200)
    assert store.webhook_delivered("msg_1", "w2", 200)


def test_webhook_endpoints_are_disabled_and_enabled(make_store):
    store = make_store()
    assert store.webhook_endpoint_disabled("A", "https://pos/hook") is None
    store.set_webhook_endpoint("A", "https://pos/hook", "410 Gone")
    store.set_webhook_endpoint("A", "https://pos/hook", "410 Gone again")
    assert store.webhook_endpoint_disabled("A", "https://pos/hook") == "410 Gone again"
    assert store.webhook_endpoint_disabled("A", "https://pos/other") is None
    assert store.disabled_webhook_endpoints() == {("A", "https://pos/hook"): "410 Gone again"}
    store.set_webhook_endpoint("A", "https://pos/hook", None)
    assert store.webhook_endpoint_disabled("A", "https://pos/hook") is None
    assert store.disabled_webhook_endpoints() == {}


def test_webhooks_are_purged_by_state_and_age(make_store):
    from omsbridge.store import WebhookState

    store = make_store()
    for n in range(3):
        store.enqueue_webhook(f"msg_{n}", "A", "fulfillment_order.created", f"FO-{n}", "{}")
    claimed = store.claim_webhooks("w1", ["A"], limit=2, lease_seconds=30)
    store.webhook_delivered(claimed[0].message_id, "w1", 200)
    store.webhook_failed(claimed[1].message_id, "w1", status=500, error="x", retry_at=None)
    past = _now() - timedelta(minutes=1)
    assert store.purge_webhooks(states=[WebhookState.DELIVERED], before=past) == 0
    soon = _now() + timedelta(minutes=1)
    assert store.purge_webhooks(states=[WebhookState.DELIVERED], before=soon) == 1
    assert store.webhook(claimed[0].message_id) is None
    assert (
        store.purge_webhooks(states=[WebhookState.DELIVERED, WebhookState.DEAD], before=soon) == 1
    )
    assert [m.state for m in store.webhooks()] == [WebhookState.PENDING]  # never a pending one


def _grouped_commits() -> list[EventCommit]:
    return [
        EventCommit("M1", "fulfillment", "c1", ("e0", "e1", "e1"), "listen:M1:fulfillment"),
        EventCommit("M2", "fulfillment", "x", ("x1",), "listen:M2:fulfillment"),
        EventCommit("M1", "fulfillment", "c2", ("e1", "e2"), "listen:M1:fulfillment"),
        EventCommit("M3", "fulfillment", "m3", ("e1",)),
        EventCommit("M1", "payments", "p1", ("e1",), "listen:M1:payments"),
    ]


@pytest.mark.parametrize("with_effect", [False, True])
def test_grouped_commits_fence_dedupe_and_keep_the_last_checkpoint(make_store, with_effect):
    # A pool's group of plain commits (no effect) is written in a few statements, a group with
    # an effect one commit after the other: both must give what one at a time gives.
    store, other = make_store(), make_store()
    store.acquire_leases(["listen:M1:fulfillment", "listen:M1:payments"], "w1", 30)
    other.acquire_lease("listen:M2:fulfillment", "w2", 30)
    store.commit_events([EventCommit("M1", "fulfillment", "c0", ("e0",))])
    effects: list[tuple[str, list[str]]] = []

    def effect(tx, commit, fresh):
        effects.append((commit.checkpoint, fresh))

    results = store.commit_events(
        _grouped_commits(),
        owner="w1",
        lease_seconds=30,
        effect=effect if with_effect else None,
    )
    assert results == [["e1"], None, ["e2"], ["e1"], ["e1"]]
    if with_effect:
        assert effects == [("c1", ["e1"]), ("c2", ["e2"]), ("m3", ["e1"]), ("p1", ["e1"])]
    assert store.checkpoint("M1", "fulfillment") == "c2"
    assert store.checkpoint("M1", "payments") == "p1"
    assert store.checkpoint("M3", "fulfillment") == "m3"
    assert store.checkpoint("M2", "fulfillment") is None  # its lease is w2's: nothing written
    assert store.seen_events("M2", "fulfillment", ["x1"]) == set()
    assert store.seen_events("M1", "fulfillment", ["e0", "e1", "e2", "e3"]) == {"e0", "e1", "e2"}
    # Without an owner no lease is held: every fenced commit is refused, the others stored.
    assert store.commit_events(_grouped_commits()[2:4]) == [None, []]


def test_renewing_many_held_leases_still_takes_free_ones_and_spares_others(make_store):
    store, other = make_store(), make_store()
    names = [f"listen:M{i}:fulfillment" for i in range(300)]
    assert store.acquire_leases(names, "w1", 30) == set(names)
    assert store.acquire_leases(names, "w1", 30) == set(names)  # all held: renewed
    other.acquire_lease("listen:X:fulfillment", "w2", 30)
    wanted = [*names, "listen:new:fulfillment", "listen:X:fulfillment"]
    assert store.acquire_leases(wanted, "w1", 30) == {*names, "listen:new:fulfillment"}
    assert store.lease_owners("listen:X")["listen:X:fulfillment"] == "w2"
