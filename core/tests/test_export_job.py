"""The outbox and the export job against an in-memory OMS with injected faults (deterministic)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from faulty import OMS, FaultyOMS, FaultyPlugin, config_text, make_sales

from omsbridge import Bridge
from omsbridge.errors import Rejected, TransientBackendError
from omsbridge.export import ExportJob, ExportSettings, RetryPolicy
from omsbridge.outbox import Queued
from omsbridge.store import AttemptOutcome, EntryState, open_store

FAST = RetryPolicy(
    inline_attempts=3,
    inline_wait_initial=0.001,
    inline_wait_max=0.005,
    backoff_initial=0.01,
    backoff_max=0.05,
    max_attempts=40,
    rate_limit_pause=0.05,
)
SETTINGS = ExportSettings(claim_size=20, lease_seconds=30, concurrency=4, policy=FAST)


@pytest.fixture(autouse=True)
def fresh_oms():
    OMS.clear()
    yield
    OMS.clear()


@pytest.fixture
def make_bridge(tmp_path, pm, store_section):
    """Bridges on the store under test: every test here runs on SQLite and on PostgreSQL."""
    pm.register(FaultyPlugin(), name="faulty-plugin")
    made: list[Bridge] = []

    def make(merchants: dict[str, str], backend: str = "faulty") -> Bridge:
        path = tmp_path / "omsbridge.toml"
        path.write_text(config_text(merchants, backend, store_section))
        bridge = Bridge.from_config(path, plugin_manager=pm)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        bridge.close()


def oms(name: str, **options) -> FaultyOMS:
    found = OMS.setdefault(name, FaultyOMS(seed=options.pop("seed", 0)))
    for key, value in options.items():
        setattr(found, key, value)
    return found


def assert_exactly_once(system: FaultyOMS, transactions) -> None:
    ids = {t.transaction_id for t in transactions}
    assert set(system.orders) == ids
    assert all(system.creations[i] == 1 for i in ids), "an order was created twice"


# -- the synchronous post and what the POS is told ----------------------------------------------


def test_post_failure_is_queued_before_the_call_returns(make_bridge):
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    sale = make_sales(1)[0]
    system.script[sale.transaction_id] = ["503"]
    with pytest.raises(Queued) as info:
        bridge.for_merchant("A").post(sale)
    assert isinstance(info.value.__cause__, TransientBackendError)
    assert info.value.retryable is False
    # Another process (a fresh store on the same file) sees it: it was committed.
    other = open_store(bridge.config.store)
    entry = other.get(info.value.entry_id)
    assert entry is not None and entry.state == EntryState.PENDING
    assert entry.transaction() == sale
    assert entry.last_error is not None and entry.last_error.code == "HTTP_503"
    [attempt] = other.attempts(entry.entry_id)
    assert (attempt.source, attempt.outcome) == ("pos", AttemptOutcome.RETRY)
    other.close()
    report = ExportJob(bridge, settings=SETTINGS).run()
    assert report.total("created") == 1
    assert_exactly_once(system, [sale])
    assert bridge.store.get(entry.entry_id).state == EntryState.DONE


def test_timeout_after_commit_is_queued_and_not_created_twice(make_bridge):
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    sale = make_sales(1)[0]
    system.script[sale.transaction_id] = ["timeout_after_commit"]
    with pytest.raises(Queued):
        bridge.for_merchant("A").post(sale)
    report = ExportJob(bridge, settings=SETTINGS).run()
    assert (report.total("created"), report.total("existed")) == (0, 1)
    assert_exactly_once(system, [sale])


def test_permanent_failure_is_raised_and_kept_as_dead_letter(make_bridge):
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    sale = make_sales(1)[0]
    system.script[sale.transaction_id] = ["reject"]
    with pytest.raises(Rejected) as info:
        bridge.for_merchant("A").post(sale)
    assert any("dead letter" in note for note in info.value.__notes__)
    entry = bridge.store.find("A", sale.transaction_id)
    assert entry.state == EntryState.DEAD
    assert (entry.last_error.code, entry.last_error.message) == (
        "INVALID_SKU",
        "no such product SKU-X",
    )
    # The operator fixes the product in the OMS, then replays the dead letter.
    assert bridge.store.requeue([entry.entry_id]) == 1
    ExportJob(bridge, settings=SETTINGS).run()
    assert bridge.store.get(entry.entry_id).state == EntryState.DONE
    assert_exactly_once(system, [sale])


def test_pos_retry_that_succeeds_closes_the_entry(make_bridge):
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    sale = make_sales(1)[0]
    system.script[sale.transaction_id] = ["503"]
    merchant = bridge.for_merchant("A")
    with pytest.raises(Queued) as info:
        merchant.post(sale)
    assert merchant.post(sale).created is True
    assert bridge.store.get(info.value.entry_id).state == EntryState.DONE
    assert ExportJob(bridge, settings=SETTINGS).run().total("posted") == 0
    assert system.calls == 2


def test_successful_post_never_writes_the_outbox(make_bridge):
    bridge = make_bridge({"A": "a"})
    oms("a")
    for sale in make_sales(3):
        assert bridge.for_merchant("A").post(sale).created
    assert bridge.store.stats(datetime.now(UTC)).merchants == ()


# -- the export job -------------------------------------------------------------------------------


def test_export_posts_oldest_first_per_merchant(make_bridge):
    bridge = make_bridge({"A": "a", "B": "b"})
    a, b = oms("a"), oms("b")
    sales_a, sales_b = make_sales(30, "A"), make_sales(25, "B")
    bridge.store.enqueue_many([("A", t) for t in sales_a] + [("B", t) for t in sales_b])
    report = ExportJob(bridge, settings=SETTINGS).run()
    assert report.total("created") == 55
    assert a.order_log == [t.transaction_id for t in sales_a]
    assert b.order_log == [t.transaction_id for t in sales_b]
    assert bridge.store.stats(datetime.now(UTC)).total("pending") == 0


def test_every_order_exactly_once_under_random_faults(make_bridge):
    """30 % of calls fail: 503s, timeouts after the OMS committed, lock errors, budget
    exhaustion; three merchants, 300 transactions."""
    bridge = make_bridge({"A": "a", "B": "b", "C": "c"})
    faults = ("503", "timeout_after_commit", "lock", "rate_limit")
    systems = {
        m: oms(m.lower(), seed=i, rate=0.3, random_faults=faults) for i, m in enumerate("ABC")
    }
    sales = {m: make_sales(100, m) for m in "ABC"}
    bridge.store.enqueue_many([(m, t) for m in "ABC" for t in sales[m]])
    report = ExportJob(bridge, settings=SETTINGS).run(drain=True, deadline=time.monotonic() + 30)
    for m in "ABC":
        assert_exactly_once(systems[m], sales[m])
        assert systems[m].order_log == [t.transaction_id for t in sales[m]]  # still in order
    stats = bridge.store.stats(datetime.now(UTC))
    assert (stats.total("pending"), stats.total("dead"), stats.total("done")) == (0, 0, 300)
    assert report.total("retry") > 0 and report.total("rate_limited") > 0
    assert report.total("existed") > 0  # timeouts after commit were re-posted harmlessly
    assert stats.total("attempts_failed") > 0


def test_retryable_failure_holds_the_merchant_back_and_backs_off(make_bridge):
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    first, second = make_sales(2)
    system.script[first.transaction_id] = ["503"] * 3  # every in-line attempt of this round
    bridge.store.enqueue_many([("A", first), ("A", second)])
    report = ExportJob(bridge, settings=SETTINGS).run()
    assert (report.total("retry"), report.total("created")) == (1, 0)
    assert system.order_log == []  # the second did not overtake the first
    entry = bridge.store.find("A", first.transaction_id)
    assert entry.state == EntryState.PENDING and entry.attempts == 3
    assert entry.next_attempt_at > datetime.now(UTC) - timedelta(seconds=1)
    ExportJob(bridge, settings=SETTINGS).run(drain=True, deadline=time.monotonic() + 5)
    assert system.order_log == [first.transaction_id, second.transaction_id]
    history = bridge.store.attempts(entry.entry_id)
    assert [a.outcome for a in history] == [AttemptOutcome.RETRY] * 3 + [AttemptOutcome.CREATED]
    assert all(a.latency_ms is not None and a.worker for a in history)
    assert history[0].error.code == "HTTP_503"


def test_permanent_failure_goes_to_dead_letters_and_the_queue_moves_on(make_bridge):
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    sales = make_sales(5)
    system.script[sales[1].transaction_id] = ["reject"]
    bridge.store.enqueue_many([("A", t) for t in sales])
    report = ExportJob(bridge, settings=SETTINGS).run()
    assert (report.total("created"), report.total("dead")) == (4, 1)
    [dead] = bridge.store.entries(states=[EntryState.DEAD])
    assert dead.transaction_id == sales[1].transaction_id
    assert dead.last_error.error_class == "Rejected"
    assert bridge.store.requeue_dead() == 1
    ExportJob(bridge, settings=SETTINGS).run()
    assert_exactly_once(system, sales)


def test_too_many_attempts_make_a_dead_letter(make_bridge):
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    [sale] = make_sales(1)
    system.script[sale.transaction_id] = ["lock"] * 100
    bridge.store.enqueue_many([("A", sale)])
    policy = RetryPolicy(
        inline_attempts=2, inline_wait_initial=0.001, backoff_initial=0.01, max_attempts=6
    )
    settings = ExportSettings(policy=policy)
    ExportJob(bridge, settings=settings).run(drain=True, deadline=time.monotonic() + 5)
    entry = bridge.store.find("A", sale.transaction_id)
    assert entry.state == EntryState.DEAD and entry.attempts == 6
    assert entry.last_error.code == "UNABLE_TO_LOCK_ROW"


def test_rate_limit_pauses_only_that_merchant(make_bridge):
    bridge = make_bridge({"A": "a", "B": "b"})
    oms("a", choose=lambda txn: "rate_limit_long")
    b = oms("b")
    sales_a, sales_b = make_sales(5, "A"), make_sales(5, "B")
    bridge.store.enqueue_many([("A", t) for t in sales_a] + [("B", t) for t in sales_b])
    report = ExportJob(bridge, settings=SETTINGS).run(drain=True, deadline=time.monotonic() + 1)
    by_merchant = {m.merchant_id: m for m in report.merchants}
    assert by_merchant["B"].created == 5
    assert by_merchant["A"].rate_limited == 1 and by_merchant["A"].created == 0
    assert by_merchant["A"].paused_until > datetime.now(UTC) + timedelta(seconds=50)
    assert bridge.store.paused_until("A") is not None
    entry = bridge.store.find("A", sales_a[0].transaction_id)
    assert entry.attempts == 0  # a rate limit is not the entry's fault
    assert [a.outcome for a in bridge.store.attempts(entry.entry_id)] == [
        AttemptOutcome.RATE_LIMITED
    ]
    assert_exactly_once(b, sales_b)


def test_crash_after_commit_before_mark_is_posted_again_without_duplicate(make_bridge):
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    sales = make_sales(3)
    bridge.store.enqueue_many([("A", t) for t in sales])
    # A worker claimed them, the OMS committed the first, then the worker was killed.
    claimed = bridge.store.claim("A", "dead-worker", limit=3, lease_seconds=0.2)
    assert len(claimed) == 3
    system.commit(sales[0])
    assert ExportJob(bridge, settings=SETTINGS).run().total("posted") == 0  # still leased
    time.sleep(0.25)
    report = ExportJob(bridge, settings=SETTINGS).run()
    assert (report.total("existed"), report.total("created")) == (1, 2)
    assert_exactly_once(system, sales)


def test_two_workers_share_a_store_without_double_posting(make_bridge):
    bridge = make_bridge({"A": "a", "B": "b", "C": "c"})
    systems = {m: oms(m.lower(), rate=0.2, seed=7) for m in "ABC"}
    sales = {m: make_sales(60, m) for m in "ABC"}
    bridge.store.enqueue_many([(m, t) for m in "ABC" for t in sales[m]])
    stores = [open_store(bridge.config.store) for _ in range(2)]
    jobs = [ExportJob(bridge, s, SETTINGS, owner=f"w{i}") for i, s in enumerate(stores)]
    threads = [
        threading.Thread(target=j.run, kwargs={"drain": True, "deadline": time.monotonic() + 20})
        for j in jobs
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in "ABC":
        assert systems[m].order_log == [t.transaction_id for t in sales[m]]
        assert_exactly_once(systems[m], sales[m])
    for s in stores:
        s.close()


def test_batching_backend_gets_batches_and_items_fail_alone(make_bridge):
    bridge = make_bridge({"A": "a"}, backend="faulty-batch")
    system = oms("a")
    sales = make_sales(25)
    system.script[sales[3].transaction_id] = ["reject"]
    system.script[sales[12].transaction_id] = ["timeout_after_commit"]
    bridge.store.enqueue_many([("A", t) for t in sales])
    report = ExportJob(bridge, settings=SETTINGS).run(drain=True, deadline=time.monotonic() + 5)
    assert report.total("dead") == 1
    assert set(system.orders) == {t.transaction_id for t in sales} - {sales[3].transaction_id}
    assert all(n == 1 for n in system.creations.values())
    # 20 claimed: 2 requests of 10; the timeout holds the queue, then 5 + 1 more.
    assert system.requests <= 5
    stats = bridge.store.stats(datetime.now(UTC))
    assert (stats.total("pending"), stats.total("dead"), stats.total("done")) == (0, 1, 24)
    [merchant] = stats.merchants
    assert merchant.budget is not None and merchant.budget.limit == 1000


def test_stop_gives_claimed_entries_back(make_bridge):
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    bridge.store.enqueue_many([("A", t) for t in make_sales(10)])
    stop = threading.Event()

    def third_post_stops(txn):
        if system.calls == 3:
            stop.set()  # while the third is being posted: it finishes, the rest go back
        return None

    system.choose = third_post_stops
    ExportJob(bridge, settings=SETTINGS).run(stop=stop)
    left = bridge.store.entries(states=[EntryState.PENDING])
    assert len(left) == 7 and all(e.lease_owner is None for e in left)
    # The three the OMS confirmed before the stop are marked done, not given back.
    assert bridge.store.stats(datetime.now(UTC)).total("done") == 3


def test_entries_of_unknown_merchants_are_left_alone(make_bridge):
    bridge = make_bridge({"A": "a"})
    oms("a")
    bridge.store.enqueue_many([("GONE", make_sales(1)[0])])
    report = ExportJob(bridge, settings=SETTINGS).run()
    assert report.merchants[0].skipped == "not in the config"
    assert bridge.store.stats(datetime.now(UTC)).total("pending") == 1


def test_export_tells_observers_and_dead_letters_unsupported_kinds(make_bridge, pm, example):
    from omsbridge import Transaction, hookimpl, wire

    told: list[tuple[str, str]] = []

    class Pos:
        @hookimpl
        def omsbridge_order_posted(self, merchant_id, transaction, result):
            told.append(("posted", transaction.transaction_id))

        @hookimpl
        def omsbridge_post_failed(self, merchant_id, transaction, error):
            told.append((type(error).__name__, transaction.transaction_id))

    pm.register(Pos())
    for backend in ("faulty", "faulty-batch"):
        told.clear()
        OMS.clear()
        bridge = make_bridge({"A": "a"}, backend=backend)
        oms("a")
        exchange = wire.structure(example("exchange"), Transaction)
        [sale] = make_sales(1)
        bridge.store.enqueue_many([("A", exchange), ("A", sale)])
        report = ExportJob(bridge, settings=SETTINGS).run()
        assert (report.total("dead"), report.total("created")) == (1, 1), backend
        dead = bridge.store.find("A", exchange.transaction_id)
        assert dead.last_error.error_class == "Unsupported"
        assert told == [
            ("Unsupported", exchange.transaction_id),
            ("posted", sale.transaction_id),
        ]
        bridge.store.purge(states=list(EntryState), before=datetime.now(UTC) + timedelta(1))
        bridge.close()


def test_a_batch_is_marked_done_in_one_store_transaction(make_bridge, monkeypatch):
    bridge = make_bridge({"A": "a"}, backend="faulty-batch")
    oms("a")
    sales = make_sales(10)
    bridge.store.enqueue_many([("A", t) for t in sales])
    single: list[int] = []
    many: list[int] = []
    real_many = bridge.store.mark_done_many
    monkeypatch.setattr(bridge.store, "mark_done", lambda *a, **k: single.append(1))
    monkeypatch.setattr(
        bridge.store, "mark_done_many", lambda done: many.append(len(done)) or real_many(done)
    )
    report = ExportJob(bridge, settings=SETTINGS).run(drain=True, deadline=time.monotonic() + 5)
    assert report.total("created") == 10
    assert single == [] and many == [10]  # one transaction for the batch of 10
    stats = bridge.store.stats(datetime.now(UTC))
    assert stats.total("done") == 10


def test_orders_posted_one_by_one_are_marked_done_together_after_the_oms_confirmed(
    make_bridge, monkeypatch
):
    # A backend without batches: each order is its own request, but the confirmed ones of a
    # claim are marked in one store transaction, each only after the OMS confirmed it; the
    # confirmed ones before a failure are marked before it is recorded.
    bridge = make_bridge({"A": "a"})
    system = oms("a")
    sales = make_sales(10)
    system.script[sales[6].transaction_id] = ["reject"]
    bridge.store.enqueue_many([("A", t) for t in sales])
    single: list[int] = []
    many: list[list[str]] = []
    real_many = bridge.store.mark_done_many
    monkeypatch.setattr(bridge.store, "mark_done", lambda *a, **k: single.append(1))

    def mark_many(done):
        names = [result.transaction_id for _, result, _ in done]
        assert set(names) <= set(system.orders), "marked done before the OMS confirmed it"
        many.append(names)
        return real_many(done)

    monkeypatch.setattr(bridge.store, "mark_done_many", mark_many)
    report = ExportJob(bridge, settings=SETTINGS).run(drain=True, deadline=time.monotonic() + 5)
    assert (report.total("created"), report.total("dead")) == (9, 1)
    ids = [t.transaction_id for t in sales]
    assert single == [] and many == [ids[:6], ids[7:]]
    assert bridge.store.stats(datetime.now(UTC)).total("done") == 9
