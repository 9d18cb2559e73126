"""Event listeners: dedupe on the event id, checkpoint only after handling, resume on restart."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from faulty import FEEDS, OMS, Feed, FeedPlugin, config_text

from omsbridge import Bridge, hookimpl
from omsbridge.errors import AuthFailed
from omsbridge.listen import Listener, ListenerSettings
from omsbridge.store import open_store

FAST = ListenerSettings(wait=0.01, handler_attempts=3, backoff_initial=0.001, backoff_max=0.01)


@pytest.fixture(autouse=True)
def fresh():
    FEEDS.clear()
    OMS.clear()
    yield
    FEEDS.clear()
    OMS.clear()


class Pos:
    """The POS platform's plugin: receives imported fulfillment orders."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str]] = []

    @hookimpl
    def omsbridge_fulfillment_order_received(self, merchant_id, fulfillment_order):
        self.received.append(
            (merchant_id, fulfillment_order.fulfillment_order_id, fulfillment_order.status)
        )


@pytest.fixture
def setup(tmp_path, pm, store_section):
    """A listener's world on the store under test (every test here runs on both stores)."""
    pm.register(FeedPlugin(), name="feed-plugin")
    pos = Pos()
    pm.register(pos, name="pos")
    path = tmp_path / "omsbridge.toml"
    path.write_text(config_text({"A": "a"}, backend="feed", store=store_section))
    bridge = Bridge.from_config(path, plugin_manager=pm)
    feed = FEEDS.setdefault("a", Feed())
    yield bridge, feed, pos
    bridge.close()


def test_first_read_stores_now_then_follows(setup):
    bridge, feed, pos = setup
    feed.emit("FO-0", "Allocated")  # before the listener ever ran: not replayed
    listener = Listener(bridge.for_merchant("A"), bridge.store, settings=FAST)
    assert listener.poll() == 0
    assert listener.checkpoint == "1"
    feed.emit("FO-1", "Allocated")
    assert listener.poll() == 1
    assert pos.received == [("A", "FO-1", "Allocated")]
    assert listener.checkpoint == "2"


def test_duplicates_dropped_and_events_of_one_fo_collapsed(setup):
    bridge, feed, pos = setup
    listener = Listener(bridge.for_merchant("A"), bridge.store, settings=FAST)
    listener.poll()
    first = feed.emit("FO-1", "Allocated")
    feed.emit("FO-1", "Fulfilled")
    feed.emit("FO-1", "Allocated", event_id=first.event_id)  # the feed repeats an event
    feed.emit("FO-1", "Allocated", event_id=first.event_id)  # and again, in the next batch
    assert listener.poll() == 2  # one batch of three: two new events
    assert pos.received == [("A", "FO-1", "Fulfilled")]  # collapsed into the current state
    assert listener.poll() == 0  # the duplicate alone
    assert listener.checkpoint == "4"
    assert len(pos.received) == 1


def test_checkpoint_only_after_handling_and_restart_resumes(setup, tmp_path):
    bridge, feed, pos = setup
    calls: list[int] = []

    def crashing(merchant, events):
        calls.append(len(events))
        raise RuntimeError("POS unreachable")

    listener = Listener(
        bridge.for_merchant("A"),
        bridge.store,
        crashing,
        ListenerSettings(wait=0.01, handler_attempts=5, backoff_initial=10),
    )
    listener.poll()
    feed.emit("FO-1", "Allocated")
    # Shut down while the handler keeps failing: the checkpoint does not move.
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,))
    thread.start()
    while not calls:
        time.sleep(0.005)
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert listener.checkpoint == "0"
    # A new process (a new store connection) resumes from the stored checkpoint.
    store = open_store(bridge.config.store)
    resumed = Listener(bridge.for_merchant("A"), store, settings=FAST)
    assert resumed.poll() == 1
    assert pos.received == [("A", "FO-1", "Allocated")]
    store.close()


def test_handler_failing_for_good_buries_the_events(setup):
    bridge, feed, _ = setup

    def broken(merchant, events):
        raise ValueError("cannot map store S-9")

    listener = Listener(bridge.for_merchant("A"), bridge.store, broken, settings=FAST)
    listener.poll()
    feed.emit("FO-1", "Allocated")
    assert listener.poll() == 1
    [dead] = bridge.store.dead_events("A")
    assert (dead.event_id, dead.error.error_class) == ("E-1", "ValueError")
    assert listener.checkpoint == "1"


def test_run_backs_off_on_feed_errors_and_stops(setup):
    bridge, feed, pos = setup
    listener = Listener(bridge.for_merchant("A"), bridge.store, settings=FAST)
    listener.poll()
    feed.fail_next_reads = 2
    feed.emit("FO-1", "Allocated")
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 5
    while not pos.received and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert pos.received == [("A", "FO-1", "Allocated")]


def test_refused_login_buries_no_event_and_handles_them_once_it_works(setup, caplog):
    bridge, feed, _ = setup
    refused = {"on": True}
    handled: list[str] = []

    def needs_login(merchant, events):
        if refused["on"]:
            raise AuthFailed("invalid_grant: authentication failure", code="invalid_grant")
        handled.extend(e.event_id for e in events)

    listener = Listener(bridge.for_merchant("A"), bridge.store, needs_login, settings=FAST)
    listener.poll()
    feed.emit("FO-1", "Allocated")
    caplog.set_level(logging.WARNING, logger="omsbridge")
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 5
    while len([r for r in caplog.records if "LOGIN REFUSED" in r.getMessage()]) < 3:
        assert time.monotonic() < deadline, "the listener did not retry the login"
        time.sleep(0.01)
    assert bridge.store.dead_events("A") == [], "a refused login buried events"
    assert listener.checkpoint != "1", "the checkpoint moved past unhandled events"
    refused["on"] = False
    while not handled and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=2)
    assert handled == ["E-1"] and listener.checkpoint == "1"
    levels = [r.levelname for r in caplog.records if "LOGIN REFUSED" in r.getMessage()]
    assert levels[0] == "ERROR" and set(levels[1:]) == {"WARNING"}


def test_a_long_outage_does_not_overflow_the_backoff(setup):
    """Over a thousand failed reads in a row (hours of outage at real settings) once made
    ``2 ** failures`` too large for a float and killed the listener thread."""
    bridge, feed, pos = setup
    settings = ListenerSettings(wait=0.0, backoff_initial=0.0, backoff_max=0.0)
    listener = Listener(bridge.for_merchant("A"), bridge.store, settings=settings)
    listener.poll()
    feed.fail_next_reads = 1100
    feed.emit("FO-1", "Allocated")
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 20
    while not pos.received and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=2)
    assert pos.received == [("A", "FO-1", "Allocated")]
