"""Fault and crash tests of the outbox and export job against the pos-spi reference server.

The server runs in a thread on 127.0.0.1. Its own fault controls give rate limits, expired
tokens and latency; a small WSGI middleware (:class:`Chaos`) adds a random share of 503s and of
answers held back past the client's timeout *after* the server committed the order.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faulty import make_sales

from omsbridge import Bridge
from omsbridge.export import ExportJob, ExportSettings, RetryPolicy
from omsbridge.outbox import Queued
from omsbridge.store import AttemptOutcome, EntryState, SqliteStore

server_module = pytest.importorskip("omsbridge_posspi.server")
SpiApp, serve = server_module.SpiApp, server_module.serve

FAST = RetryPolicy(
    inline_attempts=3,
    inline_wait_initial=0.005,
    inline_wait_max=0.02,
    backoff_initial=0.05,
    backoff_max=0.3,
    max_attempts=60,
)


class Chaos:
    """WSGI middleware: a share of ``POST /orders`` answers 503 (or a lock error) before the app
    sees it; another share is committed by the app and then answered too late."""

    def __init__(
        self, app: Any, *, error_rate: float, late_rate: float, late_delay: float, seed: int = 1
    ) -> None:
        self.app = app
        self.error_rate = error_rate
        self.late_rate = late_rate
        self.late_delay = late_delay
        self.enabled = True
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.counts = {"503": 0, "late": 0}

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if not (
            self.enabled
            and environ["REQUEST_METHOD"] == "POST"
            and environ["PATH_INFO"] == "/orders"
        ):
            return self.app(environ, start_response)
        with self._lock:
            roll = self._rng.random()
        if roll < self.error_rate:
            self.counts["503"] += 1
            code = "UNABLE_TO_LOCK_ROW" if roll < self.error_rate / 3 else "SERVICE_UNAVAILABLE"
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps({"code": code, "message": "injected by the test"}).encode()]
        if roll < self.error_rate + self.late_rate:
            self.counts["late"] += 1
            captured: list[Any] = []
            body = b"".join(self.app(environ, lambda *a: captured.append(a)))
            time.sleep(self.late_delay)  # committed; the client has given up by now
            start_response(*captured[0])
            return [body]
        return self.app(environ, start_response)


@pytest.fixture
def spi(tmp_path):
    app = SpiApp(str(tmp_path / "spi.db"))
    chaos = Chaos(app, error_rate=0.0, late_rate=0.0, late_delay=0.0)
    handle = serve(chaos)
    yield app, chaos, handle.url
    handle.stop()
    app.store.close()


def write_config(path: Path, url: str, merchants: dict[str, str], timeout: float = 0.4) -> Path:
    """Merchants on the reference server: ``merchant_id -> "key" | "oauth"``."""
    parts = ['[store]\npath = "outbox.db"\n']
    for merchant_id, auth in merchants.items():
        parts.append(f'[merchants.{merchant_id}]\nbackend = "pos-spi"\n')
        parts.append(f'[merchants.{merchant_id}.pos-spi]\nbase_url = "{url}"\ntimeout = {timeout}')
        if auth == "oauth":
            parts.append(
                f'auth = {{ type = "oauth2", token_url = "{url}/oauth/token", client_id = "pos", '
                'client_secret = { env = "TEST_SPI_SECRET" } }\n'
            )
        else:
            parts.append('auth = { type = "api_key", api_key = { env = "TEST_SPI_KEY" } }\n')
    path.write_text("\n".join(parts))
    return path


@pytest.fixture(autouse=True)
def spi_credentials(monkeypatch):
    monkeypatch.setenv("TEST_SPI_KEY", server_module.DEFAULT_API_KEY)
    monkeypatch.setenv("TEST_SPI_SECRET", server_module.DEFAULT_CLIENT_SECRET)


def posted_transactions(app: Any) -> list[str]:
    """Transaction ids of the orders the server holds, one row per order."""
    with app.store._lock:
        rows = app.store._db.execute(
            "SELECT transaction_id FROM orders WHERE transaction_id IS NOT NULL"
        ).fetchall()
    return [row[0] for row in rows]


def test_sync_post_timeout_after_commit_is_queued_then_exported_once(spi, tmp_path):
    app, chaos, url = spi
    bridge = Bridge.from_config(write_config(tmp_path / "c.toml", url, {"M": "key"}))
    [sale] = make_sales(1)
    chaos.late_rate, chaos.late_delay = 1.0, 0.6
    with pytest.raises(Queued) as info:
        bridge.for_merchant("M").post(sale)
    assert info.value.error.code == "TIMEOUT"
    chaos.late_rate = 0.0
    time.sleep(0.3)  # let the late answer finish
    report = ExportJob(bridge, settings=ExportSettings(policy=FAST)).run()
    assert (report.total("created"), report.total("existed")) == (0, 1)
    assert posted_transactions(app) == [sale.transaction_id]
    history = bridge.store.attempts(info.value.entry_id)
    assert [a.outcome for a in history] == [AttemptOutcome.RETRY, AttemptOutcome.EXISTED]
    bridge.close()


def test_exactly_once_under_faults(spi, tmp_path):
    """30 % 503s (some as lock errors), 5 % answers lost after the commit, a rate limit, an
    expired OAuth token: every order ends up in the OMS exactly once."""
    app, chaos, url = spi
    chaos.error_rate, chaos.late_rate, chaos.late_delay = 0.3, 0.05, 0.5
    bridge = Bridge.from_config(write_config(tmp_path / "c.toml", url, {"A": "key", "B": "oauth"}))
    sales = {"A": make_sales(100, "A"), "B": make_sales(100, "B")}
    bridge.store.enqueue_many([(m, t) for m in sales for t in sales[m]])
    app.inject_fault("rate_limit", count=2, retry_after=1, method="POST", path_prefix="/orders")
    outcomes: list[AttemptOutcome] = []

    def on_outcome(entry, outcome):
        outcomes.append(outcome)
        if len(outcomes) == 50:
            app.expire_tokens()  # B's bearer token dies mid-run; the client refreshes it

    job = ExportJob(
        bridge, settings=ExportSettings(claim_size=20, policy=FAST), on_outcome=on_outcome
    )
    report = job.run(drain=True, deadline=time.monotonic() + 40)
    chaos.enabled = False
    held = posted_transactions(app)
    assert sorted(held) == sorted(t.transaction_id for m in sales for t in sales[m])
    assert len(held) == len(set(held)) == 200
    stats = bridge.store.stats(datetime.now(UTC))
    assert (stats.total("pending"), stats.total("dead"), stats.total("done")) == (0, 0, 200)
    assert chaos.counts["503"] > 30 and chaos.counts["late"] > 0
    assert report.total("rate_limited") >= 1
    assert report.total("existed") >= 1  # an answer lost after the commit was re-posted
    bridge.close()


def _start_export(config: Path, lease: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omsbridge",
            "export",
            "run",
            "--config",
            str(config),
            "--drain",
            "--max-time",
            "60",
            "--lease",
            str(lease),
            "--claim-size",
            "10",
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )


def test_crash_test_sigkill_at_random_points(spi, tmp_path):
    """The export job (a subprocess) is SIGKILLed at random points while posting 200 orders,
    restarted, again and again; then the OMS holds each order once and the outbox is empty."""
    app, chaos, url = spi
    chaos.error_rate, chaos.late_rate, chaos.late_delay = 0.1, 0.03, 0.5
    app.inject_fault("timeout", count=None, delay=0.004)  # a little latency: kills land mid-post
    config = write_config(tmp_path / "c.toml", url, {"A": "key", "B": "key"})
    sales = {"A": make_sales(100, "A"), "B": make_sales(100, "B")}
    store = SqliteStore(tmp_path / "outbox.db")
    store.enqueue_many([(m, t) for m in sales for t in sales[m]])
    rng = random.Random(42)
    kills, progress = 0, []
    for _ in range(6):
        proc = _start_export(config, lease=1.0)
        # Kill once it has made some progress (a random amount), so the kill lands mid-post.
        target = len(posted_transactions(app)) + rng.randint(5, 40)
        give_up = time.monotonic() + 15
        while len(posted_transactions(app)) < target and time.monotonic() < give_up:
            if proc.poll() is not None:
                break
            time.sleep(rng.uniform(0.005, 0.03))
        if proc.poll() is not None:
            break  # it finished before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        progress.append(len(posted_transactions(app)))
    final = _start_export(config, lease=1.0)
    _, err = final.communicate(timeout=60)
    assert final.returncode == 0, err.decode()[-2000:]
    chaos.enabled = False
    held = posted_transactions(app)
    assert len(held) == len(set(held)) == 200
    assert set(held) == {t.transaction_id for m in sales for t in sales[m]}
    stats = store.stats(datetime.now(UTC))
    assert (stats.total("pending"), stats.total("dead"), stats.total("done")) == (0, 0, 200)
    assert kills >= 3, f"only {kills} kills landed before the job finished"
    assert any(0 < n < 200 for n in progress), progress  # killed while posting, not before
    done = store.entries(states=[EntryState.DONE], limit=1000)
    assert all(e.order_id for e in done)
    store.close()
