"""Exactly once: a RecordingHandler's effect is written with the events' "seen" mark and the
checkpoint in one store transaction, so a crash before that transaction ends leaves nothing
and the next reader records the events once; a plain handler's effect is outside the store and
is repeated (at least once). Both stores (every test here runs on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from faulty import FEEDS, OMS, Feed, FeedPlugin, config_text

from omsbridge import Bridge
from omsbridge.listen import LeaseLost, Listener, ListenerSettings, RecordingHandler
from omsbridge.store.base import EventCommit, EventTx

FAST = ListenerSettings(wait=0.01, handler_attempts=2, backoff_initial=0.001, backoff_max=0.01)


class _Killed(BaseException):
    """The process dies here (nothing after it runs; an open transaction is rolled back)."""


@pytest.fixture
def world(tmp_path, pm, store_section):
    FEEDS.clear()
    OMS.clear()
    pm.register(FeedPlugin(), name="feed-plugin")
    path = tmp_path / "omsbridge.toml"
    path.write_text(config_text({"A": "a"}, backend="feed", store=store_section))
    bridge = Bridge.from_config(path, plugin_manager=pm)
    store = bridge.store

    def create(tx: EventTx, commit: EventCommit, fresh: list[str]) -> None:
        tx.execute("CREATE TABLE handled (merchant_id TEXT NOT NULL, event_id TEXT NOT NULL)")

    store.commit_events([EventCommit("setup", "setup", "0", ("table",))], effect=create)
    yield bridge, FEEDS.setdefault("a", Feed())
    bridge.close()
    FEEDS.clear()


def _rows(store: Any) -> list[tuple[str, str]]:
    rows = store._read("SELECT merchant_id, event_id FROM handled ORDER BY event_id")
    return [(r["merchant_id"], r["event_id"]) for r in rows]


class Record(RecordingHandler):
    """Writes a row per event inside the store transaction."""

    def __init__(self) -> None:
        self.prepared = 0

    def prepare(self, merchant: Any, events: Any) -> None:
        self.prepared += 1

    def record(self, tx: EventTx, merchant: Any, events: Any) -> None:
        mark = "%s" if tx.dialect == "postgresql" else "?"
        for event in events:
            tx.execute(
                f"INSERT INTO handled (merchant_id, event_id) VALUES ({mark}, {mark})",
                (merchant.merchant_id, event.event_id),
            )


def _kill_inside_commit(listener: Listener) -> None:
    """The process dies inside the commit transaction, after the effect was written."""
    real = listener.committer

    def dying(commit: EventCommit, effect: Any) -> Any:
        def then_die(tx: EventTx, c: EventCommit, fresh: list[str]) -> None:
            if effect is not None:
                effect(tx, c, fresh)
            raise _Killed

        return real(commit, then_die)

    listener.committer = dying


def _kill_before_commit(listener: Listener) -> None:
    def dying(commit: EventCommit, effect: Any) -> Any:
        raise _Killed

    listener.committer = dying


def test_a_recording_handler_killed_before_its_commit_records_each_event_once(world):
    bridge, feed = world
    merchant = bridge.for_merchant("A")
    first = Listener(merchant, bridge.store, Record(), FAST)
    first.poll()  # subscribed: checkpoint "now"
    feed.emit("FO-1", "Allocated")
    feed.emit("FO-2", "Allocated")
    _kill_inside_commit(first)
    with pytest.raises(_Killed):
        first.poll()
    assert _rows(bridge.store) == []  # rolled back with the seen mark and the checkpoint
    again = Listener(merchant, bridge.store, Record(), FAST)  # the restarted worker
    assert again.poll() == 2
    assert again.poll() == 0
    assert [e for _, e in _rows(bridge.store)] == sorted(e.event_id for e in feed.events)


def test_a_plain_handler_killed_before_its_commit_handles_the_batch_again(world):
    """What exactly-once replaces: the effect outside the store happens twice."""
    bridge, feed = world
    merchant = bridge.for_merchant("A")
    handled: list[str] = []

    def plain(merchant: Any, events: Any) -> None:
        handled.extend(e.event_id for e in events)

    first = Listener(merchant, bridge.store, plain, FAST)
    first.poll()
    feed.emit("FO-1", "Allocated")
    _kill_before_commit(first)
    with pytest.raises(_Killed):
        first.poll()
    Listener(merchant, bridge.store, plain, FAST).poll()
    assert handled == [feed.events[-1].event_id] * 2


def test_two_readers_of_one_batch_the_store_decides_who_records_it(world):
    """Two workers that both read the same events (one stalled past its lease): the first
    commit records them, the second finds them seen and records nothing."""
    bridge, feed = world
    merchant = bridge.for_merchant("A")
    one = Listener(merchant, bridge.store, Record(), FAST)
    one.poll()
    two = Listener(merchant, bridge.store, Record(), FAST)
    feed.emit("FO-1", "Allocated")
    assert one.poll() == 1
    two._loaded, two._checkpoint = True, "1"  # it read from the same checkpoint as `one`
    assert two.poll() == 0
    assert len(_rows(bridge.store)) == 1


def test_a_commit_without_the_lease_writes_nothing(world):
    bridge, feed = world
    store = bridge.store
    merchant = bridge.for_merchant("A")
    listener = Listener(merchant, store, Record(), FAST)
    listener.lease = "listen:A:fulfillment"
    assert store.acquire_lease(listener.lease, "w1", 30)
    listener.committer = lambda c, e: store.commit_events(
        [c], owner="w1", lease_seconds=30, effect=e
    )[0]
    listener.poll()
    store.release_lease(listener.lease, "w1")
    assert store.acquire_lease(listener.lease, "w2", 30)  # another worker took the feed over
    feed.emit("FO-1", "Allocated")
    with pytest.raises(LeaseLost):
        listener.poll()
    assert _rows(store) == []
    assert store.checkpoint("A", "fulfillment") == "0"


def test_many_commits_in_one_transaction_and_one_failing_effect_fails_alone(world):
    from omsbridge.listen import _GroupCommit

    bridge, _ = world
    store = bridge.store
    group = _GroupCommit(store, None, 0.0)
    assert group(EventCommit("A", "c", "1", ("E1",)), None) == ["E1"]
    assert group(EventCommit("A", "c", "2", ("E1", "E2")), None) == ["E2"]

    def boom(tx: EventTx, commit: EventCommit, fresh: list[str]) -> None:
        raise RuntimeError("effect failed")

    from omsbridge.listen import _Pending

    good, bad = (
        _Pending(EventCommit("B", "c", "5", ("E9",)), None),
        _Pending(EventCommit("C", "c", "5", ("E9",)), boom),
    )
    group._run([good, bad])
    assert good.result() == ["E9"]
    with pytest.raises(RuntimeError, match="effect failed"):
        bad.result()
    assert store.checkpoint("B", "c") == "5" and store.checkpoint("C", "c") is None
    assert store.seen_events("C", "c", ["E9"]) == set()


def test_a_repeat_before_the_deferred_commit_is_stored_is_dropped(world):
    """A pool writes plain handlers' commits a moment later, in one transaction for many
    listeners; a feed repeating an event meanwhile must not get it handled twice."""
    bridge, feed = world
    handled: list[str] = []
    deferred: list[EventCommit] = []
    listener = Listener(
        bridge.for_merchant("A"),
        bridge.store,
        lambda merchant, events: handled.extend(e.event_id for e in events),
        FAST,
    )
    listener.poll()
    listener.defer = deferred.append  # never flushed in this test
    first = feed.emit("FO-1", "Allocated")
    assert listener.poll() == 1
    feed.emit("FO-1", "Allocated", event_id=first.event_id)  # the feed repeats it
    assert listener.poll() == 0
    assert handled == [first.event_id]
    assert [c.event_ids for c in deferred] == [(first.event_id,), ()]
    assert bridge.store.seen_events("A", "fulfillment", [first.event_id]) == set()  # not yet
