"""Many workers on one PostgreSQL store, killed and restarted at random while they work.

Four worker processes share 200 merchants on the pos-spi reference server (one app per
merchant). Random workers are SIGKILLed and restarted while sales are exported and fulfillment
events arrive. Afterwards every sale is on its merchant's server exactly once, in queue order,
and every event was handled exactly once: "handled" is the handler's effect, a row in the
store's ``handled_events`` table written in the transaction that marks the event seen (see
worker_proc.py); the table has no unique key, so a second handling would show as a second row.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from faulty import make_sales

from omsbridge.store.postgres import PostgresStore

pytest.importorskip("omsbridge_posspi.server")
from multispi import MultiSpi, write_multi_config

HERE = Path(__file__).parent
MERCHANTS = [f"M{i:03d}" for i in range(200)]
SALES_PER_MERCHANT = 5


def _start(config: Path, log_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "worker_proc.py"), str(config), str(log_dir)],
        stdout=subprocess.DEVNULL,
        stderr=open(log_dir / f"stderr-{time.monotonic_ns()}.log", "wb"),
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )


def _count(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row else 0


def _handled(url: str) -> Counter[tuple[str, str]]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT merchant_id, event_id FROM handled_events").fetchall()
    return Counter((m, e) for m, e in rows)


def test_four_workers_killed_at_random_post_once_in_order_and_handle_events_once(
    pg_server, tmp_path, monkeypatch
):
    from omsbridge_posspi.server import DEFAULT_API_KEY

    monkeypatch.setenv("TEST_SPI_KEY", DEFAULT_API_KEY)
    started = time.monotonic()
    spi = MultiSpi(MERCHANTS, latency=0.01)  # a kill lands in the middle of posts
    url = pg_server.new_database()
    config = write_multi_config(tmp_path / "c.toml", spi, f'[store]\nurl = "{url}"\n')
    store = PostgresStore(url)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE handled_events (pid INTEGER NOT NULL, merchant_id TEXT NOT NULL, "
            "event_id TEXT NOT NULL)"
        )
    monkeypatch.setenv("SCALE_OUT_URL", url)
    sales = {m: make_sales(SALES_PER_MERCHANT, m) for m in MERCHANTS}
    store.enqueue_many([(m, t) for m in MERCHANTS for t in sales[m]])
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    rng = random.Random(13)
    workers = [_start(config, log_dir) for _ in range(4)]
    killed: set[int] = set()
    try:
        # Listeners take "now" as their start: wait until every feed has a checkpoint.
        deadline = time.monotonic() + 40
        while _count(url, "SELECT count(*) FROM checkpoints") < len(MERCHANTS):
            assert time.monotonic() < deadline, "listeners never started"
            time.sleep(0.2)
        for _round in range(6):
            for m in rng.sample(MERCHANTS, 40):
                spi.apps[m].seed_online_order(store_id="STORE-1")  # events while workers die
            victim = rng.randrange(len(workers))
            time.sleep(rng.uniform(0.3, 1.5))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            killed.add(workers[victim].pid)
            workers[victim] = _start(config, log_dir)
        expected_events = {(m, e) for m in MERCHANTS for e in spi.events(m)}
        deadline = started + 85
        while True:
            handled = set(_handled(url))
            posted = sum(len(spi.orders(m)) for m in MERCHANTS)
            total = len(MERCHANTS) * SALES_PER_MERCHANT
            if posted == total and expected_events <= handled:
                break
            assert time.monotonic() < deadline, (
                f"not done in time: {posted}/{total} posted, "
                f"{len(expected_events - handled)} event(s) not handled"
            )
            time.sleep(0.5)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert all(proc.returncode == 0 for proc in workers), [p.returncode for p in workers]
    for m in MERCHANTS:
        # Exactly once, and in queue order: the server created them first to last.
        assert spi.orders(m) == [t.transaction_id for t in sales[m]], m
    counts = _handled(url)
    assert set(counts) == expected_events
    twice = sorted(key for key, n in counts.items() if n > 1)
    print(f"scale-out: {time.monotonic() - started:.1f} s, {len(expected_events)} event(s), "
          f"{len(twice)} handled more than once, {len(killed)} kill(s)")  # fmt: skip
    assert not twice, f"handled more than once: {twice}"
    assert store.stats(datetime.now(UTC)).total("pending") == 0
    store.close()
    spi.stop()
