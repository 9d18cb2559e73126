"""The worker: export on a schedule, listeners, clean stop on SIGTERM, nothing lost on SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from faulty import FEEDS, OMS, FaultyOMS, Feed, FeedPlugin, config_text, make_sales
from test_export_posspi import posted_transactions, write_config
from test_listen import Pos

from omsbridge import Bridge
from omsbridge.export import ExportSettings, RetryPolicy
from omsbridge.listen import ListenerSettings, PoolSettings
from omsbridge.store import SqliteStore
from omsbridge.worker import Worker, WorkerSettings

server_module = pytest.importorskip("omsbridge_posspi.server")


@pytest.fixture(autouse=True)
def fresh():
    FEEDS.clear()
    OMS.clear()
    yield
    FEEDS.clear()
    OMS.clear()


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_worker_exports_listens_and_stops(tmp_path, pm):
    pm.register(FeedPlugin(), name="feed-plugin")
    pos = Pos()
    pm.register(pos, name="pos")
    path = tmp_path / "omsbridge.toml"
    path.write_text(config_text({"A": "a", "B": "b"}, backend="feed"))
    OMS["a"], OMS["b"] = FaultyOMS(), FaultyOMS(seed=3)
    OMS["b"].rate = 0.3
    feed = FEEDS.setdefault("a", Feed())
    bridge = Bridge.from_config(path, plugin_manager=pm)
    bridge.store.enqueue_many([(m, t) for m in "AB" for t in make_sales(20, m)])
    policy = RetryPolicy(inline_wait_initial=0.001, backoff_initial=0.01, backoff_max=0.05)
    settings = WorkerSettings(
        export_interval=0.1,
        export_settings=ExportSettings(policy=policy),
        listener_settings=ListenerSettings(wait=0.05),
        metrics_file=tmp_path / "metrics.prom",
    )
    worker = Worker(bridge, settings)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(
            lambda: len(worker.listeners) == 2 and all(li.checkpoint for li in worker.listeners)
        )
        feed.emit("FO-1", "Allocated")
        wait_for(lambda: bool(pos.received))
        wait_for(lambda: bridge.store.stats(datetime.now(UTC)).total("done") == 40)
    finally:
        started = time.monotonic()
        worker.stop()
        thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 2
    assert pos.received == [("A", "FO-1", "Allocated")]
    assert all(n == 1 for system in OMS.values() for n in system.creations.values())
    text = (tmp_path / "metrics.prom").read_text()
    assert 'omsbridge_outbox_posted{merchant="A"} 20' in text
    assert 'omsbridge_export_attempts_total{merchant="B",outcome="created"}' in text
    assert 'omsbridge_api_budget_remaining{merchant="A"}' in text
    bridge.close()


@pytest.fixture
def spi(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SPI_KEY", server_module.DEFAULT_API_KEY)
    app = server_module.SpiApp(str(tmp_path / "spi.db"))
    handle = server_module.serve(app)
    yield app, handle.url
    handle.stop()
    app.store.close()


def _start_worker(config) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omsbridge",
            "worker",
            "--config",
            str(config),
            "--interval",
            "0.2",
            "--lease",
            "1",
            "--event-wait",
            "0.5",
            "--listener-lease",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )


def test_worker_process_sigterm_and_sigkill(spi, tmp_path):
    app, url = spi
    app.inject_fault("timeout", count=None, delay=0.01)  # some latency, so a kill lands mid-run
    config = write_config(tmp_path / "c.toml", url, {"A": "key"}, timeout=2)
    store = SqliteStore(tmp_path / "outbox.db")
    sales = make_sales(150, "A")
    store.enqueue_many([("A", t) for t in sales])
    proc = _start_worker(config)
    wait_for(lambda: len(posted_transactions(app)) >= 20, timeout=20)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(posted_transactions(app))
    assert killed_at < 150
    app.seed_online_order("STORE-1")  # events while no worker runs
    head = str(app.store.head())
    proc = _start_worker(config)
    wait_for(lambda: store.stats(datetime.now(UTC)).total("done") == 150, timeout=30)
    wait_for(lambda: store.checkpoint("A", "fulfillment") == head, timeout=10)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert time.monotonic() - started < 5
    assert b"worker stopped" in err
    held = posted_transactions(app)
    assert sorted(held) == sorted(t.transaction_id for t in sales)
    assert store.stats(datetime.now(UTC)).total("pending") == 0
    store.close()


def _get(address, path):
    import httpx

    host, port = address
    return httpx.get(f"http://{host}:{port}{path}", timeout=5)


def test_health_readiness_and_metrics_over_http(tmp_path, pm):
    pm.register(FeedPlugin(), name="feed-plugin")
    path = tmp_path / "omsbridge.toml"
    path.write_text(config_text({"A": "a", "B": "b"}, backend="feed"))
    OMS["a"], OMS["b"] = FaultyOMS(), FaultyOMS(seed=5)
    OMS["b"].rate = 0.3  # some retryable failures: attempts by error class
    feed = FEEDS.setdefault("a", Feed())
    bridge = Bridge.from_config(path, plugin_manager=pm)
    bridge.store.enqueue_many([(m, t) for m in "AB" for t in make_sales(10, m)])
    policy = RetryPolicy(inline_wait_initial=0.001, backoff_initial=0.01, backoff_max=0.05)
    settings = WorkerSettings(
        export_interval=0.1,
        export_settings=ExportSettings(policy=policy),
        listener_settings=ListenerSettings(wait=0.05, backoff_initial=0.05, backoff_max=0.05),
        http_port=0,
    )
    worker = Worker(bridge, settings)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: worker.http_address is not None)
        assert _get(worker.http_address, "/healthz").status_code == 200
        wait_for(lambda: _get(worker.http_address, "/readyz").status_code == 200)
        wait_for(lambda: bridge.store.stats(datetime.now(UTC)).total("done") == 20)
        feed.emit("FO-1", "Allocated")
        wait_for(lambda: "omsbridge_listener_last_event_age_seconds{" in _metrics(worker))
        text = _metrics(worker)
        assert 'omsbridge_outbox_posted{merchant="A"} 10.0' in text
        assert 'omsbridge_post_latency_seconds_count{backend="feed",merchant="A"}' in text
        assert 'outcome="created"' in text and 'error_class="TransientBackendError"' in text
        assert 'omsbridge_listener_connected{merchant="A"} 1.0' in text
        assert 'omsbridge_leases_held{kind="listen"} 2.0' in text
        feed.fail_next_reads = 1000  # the feed is down: alive, but not ready
        wait_for(lambda: _get(worker.http_address, "/readyz").status_code == 503)
        assert "not connected: A" in _get(worker.http_address, "/readyz").text
        assert _get(worker.http_address, "/healthz").status_code == 200
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
    bridge.close()


def _metrics(worker) -> str:
    return _get(worker.http_address, "/metrics").text


def test_listeners_are_leased_one_worker_each_and_taken_over(tmp_path, pm, store_section):
    """Two workers on one store: every feed is read by exactly one of them; when one stops
    without giving its leases back (as if killed), the other takes its feeds over."""
    pm.register(FeedPlugin(), name="feed-plugin")
    pos = Pos()
    pm.register(pos, name="pos")
    merchants = {f"M{i}": f"m{i}" for i in range(6)}
    path = tmp_path / "omsbridge.toml"
    path.write_text(config_text(merchants, backend="feed", store=store_section))
    feeds = {m: FEEDS.setdefault(oms, Feed()) for m, oms in merchants.items()}
    bridges = [Bridge.from_config(path, plugin_manager=pm) for _ in range(2)]
    settings = WorkerSettings(
        export=False,
        listener_settings=ListenerSettings(wait=0.02),
        pool=PoolSettings(threads=2, lease_seconds=1.0, idle_interval=0.05),
        grace_seconds=5,
    )
    workers = [Worker(b, settings, owner=f"w{i}") for i, b in enumerate(bridges)]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: all(len(w.listeners) == 3 for w in workers))
        held = [{li.merchant.merchant_id for li in w.listeners} for w in workers]
        assert not held[0] & held[1] and held[0] | held[1] == set(merchants)
        wait_for(
            lambda: all(
                b.store.checkpoint(m, "fulfillment") for b in bridges[:1] for m in merchants
            )
        )
        for i, feed in enumerate(feeds.values()):
            feed.emit(f"FO-{i}", "Allocated")
        wait_for(lambda: len(pos.received) == 6)
        # w0 dies: its pool stops reading and never gives its leases back.
        workers[0].pool.sync_leases = lambda: None
        workers[0].pool.slots.clear()
        for i, feed in enumerate(feeds.values()):
            feed.emit(f"FO-{i}", "Fulfilled")
        wait_for(lambda: len(workers[1].listeners) == 6, timeout=15)
        wait_for(lambda: len(pos.received) == 12, timeout=15)
    finally:
        for w in workers:
            w.stop()
        for t in threads:
            t.join(timeout=10)
    assert sorted(pos.received) == sorted(
        [(m, f"FO-{i}", s) for i, m in enumerate(merchants) for s in ("Allocated", "Fulfilled")]
    )
    for b in bridges:
        b.close()


def test_stop_ends_within_the_grace_period_even_if_a_handler_hangs(tmp_path, pm, caplog):
    pm.register(FeedPlugin(), name="feed-plugin")
    path = tmp_path / "omsbridge.toml"
    path.write_text(config_text({"A": "a"}, backend="feed"))
    feed = FEEDS.setdefault("a", Feed())
    bridge = Bridge.from_config(path, plugin_manager=pm)
    entered = threading.Event()
    release = threading.Event()

    def hanging(merchant, events):
        entered.set()
        release.wait(30)  # a POS call that never answers

    settings = WorkerSettings(
        export=False, listener_settings=ListenerSettings(wait=0.02), grace_seconds=0.5
    )
    worker = Worker(bridge, settings, handler=hanging)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: worker.listeners and worker.listeners[0].checkpoint)
        feed.emit("FO-1", "Allocated")
        assert entered.wait(10)
        started = time.monotonic()
        worker.stop()
        thread.join(timeout=10)
        assert not thread.is_alive() and time.monotonic() - started < 3
        assert "grace period of 0.5 s over" in caplog.text
        # Not handled to the end: the checkpoint stays before the event, so it is read again.
        assert bridge.store.checkpoint("A", "fulfillment") == "0"
    finally:
        release.set()
    bridge.close()


def test_a_listener_given_back_tells_a_streaming_backend(tmp_path, pm):
    """Above its share a worker gives feeds back; a backend with ``stop_events()`` hears of it
    (a stream held for many merchants can end that merchant's subscription)."""
    from omsbridge.listen import Listener, ListenerPool

    pm.register(FeedPlugin(), name="feed-plugin")
    path = tmp_path / "omsbridge.toml"
    path.write_text(config_text({"A": "a", "B": "b"}, backend="feed"))
    bridge = Bridge.from_config(path, plugin_manager=pm)
    stopped: list[str] = []
    for m in "AB":
        bridge.for_merchant(m).backend.stop_events = lambda m=m: stopped.append(m)
    pool = ListenerPool(
        lambda m: Listener(bridge.for_merchant(m), bridge.store),
        ["A", "B"],
        bridge.store,
        "w1",
        PoolSettings(lease_seconds=30),
    )
    pool.sync_leases()
    assert sorted(pool.slots) == [("A", "fulfillment"), ("B", "fulfillment")]
    bridge.store.acquire_lease("worker:w2", "w2", 30)  # a second worker comes up
    pool.sync_leases()
    assert len(pool.slots) == 1 and len(stopped) == 1
    assert (stopped[0], "fulfillment") not in pool.slots
    assert bridge.store.lease_owners("listen:") == {
        f"listen:{m}:{channel}": "w1" for m, channel in pool.slots
    }
    bridge.close()
