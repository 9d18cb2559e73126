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
from omsbridge.listen import ListenerSettings
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
