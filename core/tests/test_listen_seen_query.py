"""A listener asks the store which events it saw only when its own memory cannot tell (and
the pool's hand-off queue hands each slot to one thread).

Events that happened after the listener loaded its checkpoint (plus a clock margin) can only
have been committed by this listener, which remembers them: no store query per batch on a live
feed. Ids committed before, or forgotten since, are still asked of the store and dropped.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omsbridge import listen
from omsbridge.listen import Listener, ListenerSettings
from omsbridge.model import EventBatch, FulfillmentEvent
from omsbridge.store.base import EventCommit
from omsbridge.store.sqlite import SqliteStore


class _Source:
    """A merchant's feed: events numbered 1.. (the checkpoint)."""

    merchant_id = "M"

    def __init__(self) -> None:
        self.sent: list[FulfillmentEvent] = []

    def emit(self, event_id: str, when: datetime | None) -> None:
        seq = len(self.sent) + 1
        self.sent.append(
            FulfillmentEvent(
                event_id=event_id,
                fulfillment_order_id=f"FO-{event_id}",
                new_status="Allocated",
                checkpoint=str(seq),
                occurred_at=when,
            )
        )

    def events(self, checkpoint: str | None, wait: float = 0.0) -> EventBatch:
        start = len(self.sent) if checkpoint is None else int(checkpoint)
        batch = tuple(self.sent[start:])
        return EventBatch(batch, batch[-1].checkpoint if batch else str(start))


class _CountingStore(SqliteStore):
    """The SQLite store, counting seen-events queries."""

    queries = 0

    def seen_events(self, merchant_id: str, channel: str, event_ids: Any) -> set[str]:
        self.queries += 1
        return super().seen_events(merchant_id, channel, event_ids)


@pytest.fixture
def world(tmp_path):
    store = _CountingStore(tmp_path / "state.db")
    source = _Source()
    handled: list[str] = []

    def handler(merchant: Any, events: Any) -> None:
        handled.extend(e.event_id for e in events)

    listener = Listener(source, store, handler, ListenerSettings(wait=0.0))  # type: ignore[arg-type]
    yield store, source, listener, handled
    store.close()


_NOW = datetime.now(UTC)


def _later(minutes: float) -> datetime:
    # An hour on, past the listener's clock margin (minutes): happened after it loaded.
    return _NOW + timedelta(hours=1, minutes=minutes)


def test_live_events_need_no_store_query_and_repeats_still_drop(world):
    store, source, listener, handled = world
    assert listener.poll() == 0  # loads the checkpoint, stores "now"
    source.emit("E1", _later(1))
    source.emit("E2", _later(2))
    assert listener.poll() == 2
    source.emit("E1", _later(1))  # Salesforce re-delivers E1 (same event, same time)
    source.emit("E3", _later(3))
    assert listener.poll() == 1
    assert handled == ["E1", "E2", "E3"]
    assert store.queries == 0
    assert store.seen_events("M", "fulfillment", ["E1", "E2", "E3"]) == {"E1", "E2", "E3"}


def test_ids_committed_before_the_listener_loaded_are_asked_of_the_store(world):
    store, source, listener, handled = world
    before = datetime.now(UTC) - timedelta(minutes=1)
    source.emit("E0", before)
    # Another worker (or this one before a restart) handled E0 and stored its checkpoint.
    store.commit_events([EventCommit("M", "fulfillment", "0", ("E0",), None)])
    source.emit("E0", before)  # the feed repeats it after that checkpoint
    source.emit("E1", None)  # an event without a time: only the store can tell
    assert listener.poll() == 1
    assert handled == ["E1"]
    assert store.queries == 1


def test_forgotten_ids_are_asked_of_the_store_again(world, monkeypatch):
    monkeypatch.setattr(listen, "_RECENT_KEPT", 2)
    store, source, listener, handled = world
    listener.poll()
    for n in (1, 2, 3):
        source.emit(f"E{n}", _later(n))
    assert listener.poll() == 3  # E1 is forgotten (only 2 kept)
    assert store.queries == 0
    source.emit("E1", _later(1))  # a repeat of the forgotten id, with its own time
    assert listener.poll() == 0
    assert store.queries == 1
    source.emit("E4", _later(4))  # later than anything forgotten: memory suffices again
    assert listener.poll() == 1
    assert store.queries == 1
    assert handled == ["E1", "E2", "E3", "E4"]


def test_the_pool_work_queue_hands_each_item_once_and_stops_idle_threads():
    work = listen._WorkQueue()
    got: list[object] = []

    def worker() -> None:
        gate = threading.Lock()
        gate.acquire()
        while (item := work.get(gate)) is not None:
            got.append(item)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    _until(lambda: len(work._idle) == 2)
    work.put("a")  # type: ignore[arg-type]
    _until(lambda: got == ["a"] and len(work._idle) == 2)
    work.put(None)
    work.put(None)
    for thread in threads:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in threads)
    assert got == ["a"]


def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)
