"""Benchmark: 32 concurrent POS clients posting sales through ``omsbridge serve`` (run by
``nox -s bench``). Prints figures, never a pass/fail verdict.

Two runs of the same sales by the same 32 client threads (each a pos-spi backend, as the POS
would be):

* **direct** — the clients post to the pos-spi reference server itself: the backend called in
  process, as a POS embedding omsbridge would;
* **through serve** — the clients post to the real ``omsbridge serve`` process (gunicorn,
  ``--workers``, gthread), which posts each sale through its bridge (idempotency, outbox
  settle) to the same reference server.

Printed: p50, p90 and p99 of each, what serve adds (the difference of the percentiles, not a
percentile of differences), requests per second, and serve's own CPU seconds per request
(user + system of the gunicorn master and workers, read from /proc). The reference server and
serve run in their own processes on 127.0.0.1; the clients in this one.

It does not measure: the network beyond loopback, TLS, a real OMS's latency (the reference
server answers in a few ms from SQLite, so serve's share looks larger than it would in front
of Salesforce), PostgreSQL as the store (serve's outbox here is SQLite), long polls, or
anything but successful sales; on a shared machine the figures move with the other load.

    python plugins/pos_spi/bench/bench_serve.py                    # 3,200 sales per run
    python plugins/pos_spi/bench/bench_serve.py --sales 640        # a quick run
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx

from omsbridge import Secret
from omsbridge.model import CashTender, Fulfillment, LineItem, Transaction, TransactionKind
from omsbridge.spi import MerchantContext
from omsbridge_posspi import PosSpiBackend, PosSpiConfig, SpiAuth

CLIENTS = 32
SPI_KEY = "bench-spi-key"
POS_KEY = "bench-pos-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in 30 s")


def _sale(transaction_id: str) -> Transaction:
    line = LineItem(
        1, "SKU-BENCH", Decimal(1), Decimal("10.00"), line_id="L1", fulfillment=Fulfillment()
    )
    return Transaction(
        transaction_id=transaction_id,
        kind=TransactionKind.SALE,
        created_at=datetime.now(UTC),
        currency="USD",
        store_id="STORE-1",
        lines=(line,),
        total=line.total,
        tenders=(CashTender(line.total),),
    )


def _backend(url: str, key: str) -> PosSpiBackend:
    auth = SpiAuth(api_key=Secret(key, "bench"))
    return PosSpiBackend(PosSpiConfig(url, auth, timeout=30), MerchantContext("BENCH"))


def _run(url: str, key: str, prefix: str, sales: int) -> tuple[list[float], float]:
    """Post ``sales`` sales from CLIENTS threads; latencies (s) and the wall time."""
    per_client = sales // CLIENTS
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENTS + 1)

    def client(n: int) -> None:
        backend = _backend(url, key)
        mine: list[float] = []
        backend.post(_sale(f"{prefix}-warm-{n}"))  # connection and token set up, not timed
        start.wait()
        try:
            for i in range(per_client):
                began = time.perf_counter()
                result = backend.post(_sale(f"{prefix}-{n}-{i}"))
                mine.append(time.perf_counter() - began)
                assert result.created
        except BaseException as exc:
            errors.append(exc)
        finally:
            backend.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    if errors:
        raise SystemExit(f"{len(errors)} client(s) failed: {errors[0]!r}")
    return latencies, wall


def _cpu_seconds(root: int) -> float:
    """User + system CPU of a process and its children (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid == root or ppid == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    """Run both phases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sales", type=int, default=3200, help="Sales per run (split over 32 clients)."
    )
    parser.add_argument("--workers", type=int, default=2, help="serve's worker processes.")
    parser.add_argument("--threads", type=int, default=16, help="Threads per serve worker.")
    args = parser.parse_args()
    omsbridge = [sys.executable, "-m", "omsbridge"]
    env = {**os.environ, "BENCH_SPI_KEY": SPI_KEY, "BENCH_POS_KEY": POS_KEY}
    spi_port, serve_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "omsbridge.toml"
        config.write_text(
            f"""
[store]
path = "outbox.db"
[merchants.BENCH]
backend = "pos-spi"
[merchants.BENCH.pos-spi]
base_url = "http://127.0.0.1:{spi_port}"
timeout = 30
auth = {{ type = "api_key", api_key = {{ env = "BENCH_SPI_KEY" }} }}
[serve]
workers = {args.workers}
threads = {args.threads}
[serve.clients.pos]
api_key = {{ env = "BENCH_POS_KEY" }}
merchants = ["BENCH"]
""",
            encoding="utf-8",
        )
        spi = _start(
            [
                *omsbridge,
                "sandbox",
                "pos-spi",
                "--port",
                str(spi_port),
                "--api-key",
                SPI_KEY,
                "--state",
                str(Path(tmp) / "spi.db"),
            ],
            env,
        )
        serve = _start(
            [
                *omsbridge,
                "serve",
                "--config",
                str(config),
                "--port",
                str(serve_port),
                "--log-level",
                "WARNING",
            ],
            env,
        )
        try:
            _wait(f"http://127.0.0.1:{spi_port}/health")
            _wait(f"http://127.0.0.1:{serve_port}/readyz")
            direct, direct_wall = _run(f"http://127.0.0.1:{spi_port}", SPI_KEY, "D", args.sales)
            cpu_before = _cpu_seconds(serve.pid)
            served, served_wall = _run(
                f"http://127.0.0.1:{serve_port}/merchants/BENCH", POS_KEY, "S", args.sales
            )
            cpu = _cpu_seconds(serve.pid) - cpu_before
        finally:
            for process in (serve, spi):
                process.terminate()
                process.wait(timeout=30)
    rows: list[tuple[str, Callable[[list[float]], float]]] = [
        ("p50 ms", lambda v: _pct(v, 50)),
        ("p90 ms", lambda v: _pct(v, 90)),
        ("p99 ms", lambda v: _pct(v, 99)),
    ]
    print(
        f"\n{CLIENTS} POS clients, {len(served)} sales per run, serve: {args.workers} workers x {args.threads} threads"
    )
    print(f"{'':10}{'direct':>12}{'via serve':>12}{'added':>12}")
    for name, fn in rows:
        d, s = fn(direct), fn(served)
        print(f"{name:10}{d:12.1f}{s:12.1f}{s - d:12.1f}")
    print(f"{'req/s':10}{len(direct) / direct_wall:12.0f}{len(served) / served_wall:12.0f}")
    print(
        f"serve CPU: {cpu:.2f} s for {len(served)} requests = {cpu / len(served) * 1000:.2f} ms per request"
    )


if __name__ == "__main__":
    main()
