"""Outgoing webhooks, the recording side: the bridge keeps one message per event in the same step
that delivers an imported fulfillment order (before the listener's checkpoint), so a crash
after the import loses nothing and records nothing twice; and the worker runs plugins' tasks
(``omsbridge_register_worker_tasks``, how the pos-spi distribution sends them)."""

from __future__ import annotations

import threading
import time

import pytest
from faulty import FEEDS, OMS, Feed, FeedPlugin, config_text

from omsbridge import Bridge, hookimpl
from omsbridge.listen import Listener, ListenerSettings
from omsbridge.model import FulfillmentAction, FulfillmentUpdate
from omsbridge.store import WebhookState
from omsbridge.worker import Worker, WorkerSettings

FAST = ListenerSettings(wait=0.01, handler_attempts=3, backoff_initial=0.001, backoff_max=0.01)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(autouse=True)
def fresh():
    FEEDS.clear()
    OMS.clear()
    yield
    FEEDS.clear()
    OMS.clear()


@pytest.fixture
def setup(tmp_path, pm, store_section, monkeypatch):
    """One merchant with an event feed and a webhook, on the store under test."""
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    pm.register(FeedPlugin(), name="feed-plugin")
    path = tmp_path / "omsbridge.toml"
    path.write_text(
        config_text({"A": "a"}, backend="feed", store=store_section)
        + '\n[merchants.A.webhook]\nurl = "https://pos.example/hooks"\n'
        'secret = { env = "HOOK_SECRET" }\n'
    )
    bridge = Bridge.from_config(path, plugin_manager=pm)
    feed = FEEDS.setdefault("a", Feed())
    yield bridge, feed, path
    bridge.close()


def test_an_imported_fulfillment_order_is_recorded_before_the_checkpoint(setup):
    bridge, feed, _ = setup
    listener = Listener(bridge.for_merchant("A"), bridge.store, settings=FAST)
    listener.poll()
    feed.emit("FO-1", "Allocated")
    assert listener.poll() == 1
    [message] = bridge.store.webhooks()
    assert message.event_type == "fulfillment_order.created" and message.subject == "FO-1"
    assert message.state == WebhookState.PENDING and '"status":"Allocated"' in message.body
    feed.emit("FO-1", "Fulfilled")
    listener.poll()
    types = sorted(m.event_type for m in bridge.store.webhooks())
    assert types == ["fulfillment_order.created", "fulfillment_order.updated"]


def test_a_crash_between_import_and_checkpoint_records_the_event_once(setup, monkeypatch):
    bridge, feed, path = setup
    listener = Listener(bridge.for_merchant("A"), bridge.store, settings=FAST)
    listener.poll()
    feed.emit("FO-1", "Allocated")

    def killed(*args, **kwargs):
        raise SystemExit("killed after the import, before the checkpoint")

    store = bridge.store
    with monkeypatch.context() as patch, pytest.raises(SystemExit):
        patch.setattr(store, "commit_events", killed)
        listener.poll()
    [kept] = store.webhooks()  # the import's message survives the "crash"
    # The restarted process reads the same events again and handles them again.
    again = Bridge.from_config(path, plugin_manager=bridge.plugin_manager)
    try:
        assert Listener(again.for_merchant("A"), again.store, settings=FAST).poll() == 1
        assert [m.message_id for m in again.store.webhooks()] == [kept.message_id]
    finally:
        again.close()


def test_a_store_that_fails_to_record_makes_the_listener_handle_the_batch_again(setup, monkeypatch):
    bridge, feed, _ = setup
    listener = Listener(bridge.for_merchant("A"), bridge.store, settings=FAST)
    listener.poll()
    feed.emit("FO-1", "Allocated")
    store = bridge.store
    real = store.enqueue_webhook
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 1:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "enqueue_webhook", flaky)
    assert listener.poll() == 1
    assert len(calls) == 2 and len(store.webhooks()) == 1
    assert store.dead_events("A") == []


def test_a_reported_step_is_recorded(setup):
    bridge, _, _ = setup
    merchant = bridge.for_merchant("A")
    update = FulfillmentUpdate("FO-1", FulfillmentAction.PICK)
    from omsbridge.webhook_outbox import record_fulfillment_update

    first = record_fulfillment_update(bridge.store, "A", merchant.config.webhook, update)
    again = record_fulfillment_update(bridge.store, "A", merchant.config.webhook, update)
    assert first == again
    [message] = bridge.store.webhooks()
    assert message.event_type == "fulfillment_order.status_reported"
    assert '"action":"PICK"' in message.body


def test_without_a_webhook_nothing_is_recorded(tmp_path, pm):
    pm.register(FeedPlugin(), name="feed-plugin")
    path = tmp_path / "omsbridge.toml"
    path.write_text(config_text({"A": "a"}, backend="feed"))
    with Bridge.from_config(path, plugin_manager=pm) as bridge:
        feed = FEEDS.setdefault("a", Feed())
        listener = Listener(bridge.for_merchant("A"), bridge.store, settings=FAST)
        listener.poll()
        feed.emit("FO-1", "Allocated")
        assert listener.poll() == 1
        assert bridge.store.webhooks() == []


class Tasks:
    """A plugin adding a background task to the worker (omsbridge_register_worker_tasks)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.seen: list[object] = []

    @hookimpl
    def omsbridge_register_worker_tasks(self, register):
        def run(worker, stop):
            self.seen.append((worker, stop))
            self.started.set()
            stop.wait()

        register("test-task", run)


def test_the_worker_runs_plugins_tasks_until_it_stops(tmp_path, pm):
    tasks = Tasks()
    pm.register(tasks, name="tasks")
    pm.register(FeedPlugin(), name="feed-plugin")
    path = tmp_path / "omsbridge.toml"
    path.write_text(config_text({"A": "a"}, backend="feed"))
    with Bridge.from_config(path, plugin_manager=pm) as bridge:
        worker = Worker(bridge, WorkerSettings(export=False, listen=False))
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            assert tasks.started.wait(10)
            # The worker keeps the thread in its list right after starting it.
            deadline = time.monotonic() + 10
            while not any(t.name == "test-task" for t in worker._threads):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert [t.is_alive() for t in worker._threads if t.name == "test-task"] == [True]
        finally:
            worker.stop()
            thread.join(10)
        assert not thread.is_alive()
        [(seen_worker, stop)] = tasks.seen
        assert seen_worker is worker and stop.is_set()
