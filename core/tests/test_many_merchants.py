"""One worker configured with 5,000 merchants: every listener held, on a few threads, in
bounded memory (the issue's limits: under 300 MB RSS and 100 threads)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

server_module = pytest.importorskip("omsbridge_posspi.server")

MERCHANTS = 5000


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_one_worker_holds_5000_listeners_in_bounded_memory_and_threads(tmp_path):
    app = server_module.SpiApp()
    handle = server_module.serve(app)
    parts = ['[store]\npath = "outbox.db"\n']
    for n in range(MERCHANTS):
        parts.append(
            f'[merchants.M{n:04d}]\nbackend = "pos-spi"\n[merchants.M{n:04d}.pos-spi]\n'
            f'base_url = "{handle.url}"\n'
            'auth = { type = "api_key", api_key = { env = "TEST_SPI_KEY" } }\n'
        )
    config = tmp_path / "c.toml"
    config.write_text("\n".join(parts))
    proc = subprocess.Popen(
        [sys.executable, "-m", "omsbridge", "worker", "--config", str(config),
         "--log-level", "ERROR", "--listener-threads", "8", "--interval", "1"],
        env={**os.environ, "TEST_SPI_KEY": server_module.DEFAULT_API_KEY},
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    db = tmp_path / "outbox.db"
    try:
        deadline = time.monotonic() + 120
        # Every listener held (its backend built), and feeds being read.
        while (
            _count(db, "SELECT count(*) FROM leases WHERE name LIKE 'listen:%'") < MERCHANTS
            or _count(db, "SELECT count(*) FROM checkpoints") < 500
        ):
            assert proc.poll() is None, "the worker died"
            assert time.monotonic() < deadline, "the worker did not take its listeners"
            time.sleep(0.5)
        status = _status(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        handle.stop()
        app.store.close()
    rss_mb = int(status["VmHWM"].split()[0]) / 1024
    threads = int(status["Threads"])
    print(f"5,000 merchants: peak RSS {rss_mb:.0f} MB, {threads} threads")
    assert rss_mb < 300 and threads < 100
