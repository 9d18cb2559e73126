"""The listener pool's driver: one timer entry per held feed, lease syncs that do only what
changed, a feed that calls back during its read read again in order."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from omsbridge.listen import EventDrivenPool, Listener, ListenerPool, ListenerSettings, PoolSettings
from omsbridge.model import EventBatch, FulfillmentEvent
from omsbridge.store.sqlite import SqliteStore


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


class Source:
    """A watched feed: ``arrive`` queues events and calls the pool back, as a stream does."""

    def __init__(self, merchant_id: str) -> None:
        self.merchant_id = merchant_id
        self.callback: Any = None
        self.pending: list[FulfillmentEvent] = []
        self.reads: list[str] = []
        self.during_read: list[FulfillmentEvent] = []
        self._lock = threading.Lock()
        self._n = 0

    def watch(self, callback: Any) -> bool:
        self.callback = callback
        return True

    def event(self) -> FulfillmentEvent:
        self._n += 1
        return FulfillmentEvent(
            f"{self.merchant_id}-e{self._n}",
            "FO",
            "Allocated",
            f"cp{self._n}",
            occurred_at=datetime.now(UTC),
        )

    def arrive(self, *events: FulfillmentEvent) -> None:
        with self._lock:
            self.pending.extend(events)
        self.callback()

    def events(self, checkpoint: str | None, wait: float = 0.0) -> EventBatch:
        with self._lock:
            self.reads.append(threading.current_thread().name)
            taken, self.pending = self.pending, []
        if self.during_read:
            # Something arrives while this read is in flight: the pool hears of it now.
            late, self.during_read = self.during_read, []
            self.arrive(*late)
        return EventBatch(tuple(taken), taken[-1].checkpoint if taken else (checkpoint or "c0"))


def _pool(tmp_path: Any, sources: list[Source], sweep: float = 60.0) -> tuple[Any, list[Any]]:
    store = SqliteStore(tmp_path / "state.db")
    handled: list[Any] = []
    settings = ListenerSettings(wait=0.0, clock_margin=0.0)
    listeners = [
        Listener(s, store, handler=lambda m, evs: handled.extend(evs), settings=settings)  # type: ignore[arg-type]
        for s in sources
    ]
    return EventDrivenPool(listeners, workers=2, sweep=sweep), handled


def test_a_watched_feed_keeps_one_timer_entry_however_often_it_is_read(tmp_path):
    source = Source("M1")
    pool, handled = _pool(tmp_path, [source])
    pool.start()
    try:
        wait_for(lambda: len(source.reads) >= 1)
        for n in range(1, 31):
            source.arrive(source.event())
            wait_for(lambda n=n: len(handled) == n and not pool.slots[("0", "fulfillment")].busy)
        assert len(source.reads) == 31
        # Its sweep is postponed by every read, not filed again per read (the heap held one
        # entry per read before: 31 here, and one per event on a busy worker).
        assert len(pool._due) == 1
        assert [e.event_id for e in handled] == [f"M1-e{n}" for n in range(1, 31)]
    finally:
        pool.stop()


def test_a_watched_feed_is_still_swept_after_its_last_read(tmp_path):
    source = Source("M1")
    pool, _ = _pool(tmp_path, [source], sweep=0.2)
    pool.start()
    try:
        wait_for(lambda: len(source.reads) >= 1)
        source.arrive(source.event())
        wait_for(lambda: len(source.reads) >= 2)
        # Nothing calls back any more: the sweep alone reads it, again and again.
        wait_for(lambda: len(source.reads) >= 5)
    finally:
        pool.stop()


def test_a_feed_calling_back_during_its_read_is_read_again_in_order(tmp_path):
    source = Source("M1")
    pool, handled = _pool(tmp_path, [source])
    pool.start()
    try:
        wait_for(lambda: len(source.reads) >= 1)
        first, second = source.event(), source.event()
        source.during_read = [second]
        source.arrive(first)
        wait_for(lambda: len(handled) == 2)
        assert [e.event_id for e in handled] == [first.event_id, second.event_id]
        assert len(source.reads) == 3  # the first poll, the read of `first`, then `second`
    finally:
        pool.stop()


class _CountingStore(SqliteStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner_reads: list[str] = []

    def lease_owners(self, prefix: str = "") -> dict[str, str]:
        self.owner_reads.append(prefix)
        return super().lease_owners(prefix)


def test_a_worker_holding_its_share_renews_without_reading_every_lease(tmp_path):
    store = _CountingStore(tmp_path / "state.db")
    sources = {m: Source(m) for m in ("A", "B", "C")}
    settings = ListenerSettings(wait=0.0)
    pool = ListenerPool(
        lambda m: Listener(sources[m], store, settings=settings),  # type: ignore[arg-type]
        list(sources),
        store,
        "w1",
        PoolSettings(lease_seconds=30),
    )
    pool.sync_leases()
    assert sorted(pool.slots) == [("A", "fulfillment"), ("B", "fulfillment"), ("C", "fulfillment")]
    assert store.owner_reads.count("listen:") == 1  # taking free feeds needs to know them
    store.owner_reads.clear()
    pool.sync_leases()
    assert store.owner_reads == ["worker:"]  # its share held: renewed, nothing else read
    assert len(pool.slots) == 3
    # A lease lost meanwhile (it ran out, another worker took it) is still noticed.
    store.release_lease("listen:B:fulfillment", "w1")
    store.acquire_lease("listen:B:fulfillment", "w2", 30)
    pool.sync_leases()
    assert sorted(pool.slots) == [("A", "fulfillment"), ("C", "fulfillment")]
    store.close()
