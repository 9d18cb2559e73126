"""Benchmark: many workers on one PostgreSQL store (run by ``nox -s bench``). Prints figures.

* **scaling** — 200 merchants on the pos-spi reference server with 50 ms added latency
  (several server processes, so the server is not what is measured), N queued sales
  (``--sales``; the issue's full size is 20,000: ``--full``), exported by 1, 2 and 4
  ``omsbridge worker`` processes on one PostgreSQL: orders/s of each and the ratio to one;
  the same with one worker on SQLite as the baseline;
* **5,000 merchants** — one worker (export and listeners) configured with 5,000 merchants on
  PostgreSQL: its RSS and thread count once every listener is held.

PostgreSQL is started the way the tests start it (Debian's ``postgresql`` package, a throwaway
cluster on a Unix socket).

    python core/bench/bench_scale.py            # 4,000 sales
    python core/bench/bench_scale.py --full     # 20,000 sales (several minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "core" / "tests"))  # the PostgreSQL test server
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_export's server helper

from bench_export import API_KEY, EXAMPLE, start_server  # noqa: E402
from pgserver import PgServer, find_bin_dir  # noqa: E402


def write_config(path: Path, store: str, urls: list[str], merchants: int) -> Path:
    """``merchants`` merchants spread over the servers at ``urls``."""
    parts = [store]
    for n in range(merchants):
        parts.append(
            f'[merchants.M{n:04d}]\nbackend = "pos-spi"\n'
            f'[merchants.M{n:04d}.pos-spi]\nbase_url = "{urls[n % len(urls)]}"\ntimeout = 10\n'
            'auth = { type = "api_key", api_key = { env = "BENCH_SPI_KEY" } }\n'
        )
    path.write_text("\n".join(parts))
    return path


def queue(config: Path, sales: int, merchants: int) -> None:
    """Queue ``sales`` sales round-robin over the merchants."""
    from omsbridge import Transaction, wire
    from omsbridge.config import load_config
    from omsbridge.store import open_store

    base = wire.loads(EXAMPLE.read_text(), Transaction)
    store = open_store(load_config(config).store)
    store.enqueue_many(
        (f"M{i % merchants:04d}", attrs.evolve(base, transaction_id=f"S-{i:07d}",
                                               order_number=f"S-{i:07d}"))
        for i in range(sales)
    )  # fmt: skip
    store.close()


def _done(config: Path) -> int:
    from datetime import UTC, datetime

    from omsbridge.config import load_config
    from omsbridge.store import open_store

    store = open_store(load_config(config).store)
    try:
        return store.stats(datetime.now(UTC)).total("done")
    finally:
        store.close()


def _worker(config: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "omsbridge", "worker", "--config", str(config),
         "--log-level", "ERROR", *extra],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "BENCH_SPI_KEY": API_KEY},
    )  # fmt: skip


def export_run(config: Path, workers: int, sales: int, concurrency: int) -> dict[str, Any]:
    """Start ``workers`` workers (export only) and time them until every sale is posted."""
    procs = [
        _worker(config, "--no-listen", "--concurrency", str(concurrency), "--interval", "0.2")
        for _ in range(workers)
    ]
    cpu_before = _children_cpu()
    started = time.monotonic()
    marks: dict[float, float] = {}  # fraction done -> when first seen
    try:
        while (done := _done(config)) < sales:
            if time.monotonic() - started > 1800:
                raise SystemExit(f"{workers} worker(s): only {done}/{sales} after 30 minutes")
            for fraction in (0.1, 0.9):
                if done >= fraction * sales and fraction not in marks:
                    marks[fraction] = time.monotonic()
            time.sleep(0.25)
        took = time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
    # Steady state: from 10 % to 90 % done (process start-up and the last stragglers aside).
    steady = marks.get(0.9, started + took) - marks.get(0.1, started)
    return {"workers": workers, "sales": sales, "seconds_total": round(took, 1),
            "orders_per_second_total": round(sales / took, 1),
            "orders_per_second": round(0.8 * sales / steady, 1) if steady > 0 else None,
            "worker_cpu_ms_per_order": round((_children_cpu() - cpu_before) * 1000 / sales, 2)}  # fmt: skip


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def many_merchants(pg: PgServer, url: str, folder: Path, merchants: int) -> dict[str, Any]:
    """One worker with ``merchants`` merchants: RSS and threads once its listeners are held."""
    import psycopg

    db = pg.new_database()
    config = write_config(folder / "many.toml", f'[store]\nurl = "{db}"\n', [url], merchants)
    proc = _worker(config, "--interval", "1", "--listener-lease", "30")
    started = time.monotonic()
    try:
        while True:
            try:
                with psycopg.connect(db) as conn:
                    row = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
            except psycopg.errors.UndefinedTable:
                row = None  # the worker has not created the schema yet
            if row and row[0] >= merchants:
                break
            if time.monotonic() - started > 600 or proc.poll() is not None:
                raise SystemExit("the 5,000-merchant worker did not start its listeners")
            time.sleep(1)
        time.sleep(5)  # a few rounds of reads at steady state
        status = _proc_status(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
    return {
        "merchants": merchants,
        "listeners_started_after_seconds": round(time.monotonic() - started - 5, 1),
        "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
        "peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1),
        "threads": int(status["Threads"]),
    }


def main() -> None:
    """Run the scenarios and print their figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=4_000)
    parser.add_argument("--full", action="store_true", help="The issue's 20,000 sales.")
    parser.add_argument("--merchants", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="Merchants per worker at once.")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--servers", type=int, default=4, help="Reference server processes.")
    parser.add_argument("--many", type=int, default=5_000, help="Merchants of the memory run.")
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run.")
    parser.add_argument("--workers", default="1,2,4", help="Worker counts on PostgreSQL.")
    parser.add_argument("--no-sqlite", action="store_true", help="Skip the SQLite baseline.")
    parser.add_argument("--no-many", action="store_true", help="Skip the 5,000-merchant run.")
    args, _ = parser.parse_known_args()  # nox passes every bench the same arguments
    os.environ["BENCH_SPI_KEY"] = API_KEY
    sales = 20_000 if args.full else (400 if args.quick else args.sales)
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    pg = PgServer(bin_dir)
    folder = Path(tempfile.mkdtemp(prefix="omsbridge-bench-scale-"))
    servers = [start_server(args.latency_ms, folder / f"spi-{i}.db") for i in range(args.servers)]
    urls = [url for _, url in servers]
    results: dict[str, Any] = {"latency_ms": args.latency_ms, "merchants": args.merchants,
                               "concurrency_per_worker": args.concurrency}  # fmt: skip
    try:
        sqlite = write_config(folder / "sqlite.toml", '[store]\npath = "outbox.db"\n', urls,
                              args.merchants)  # fmt: skip
        if not args.no_sqlite:
            queue(sqlite, sales, args.merchants)
            results["sqlite_1_worker"] = export_run(sqlite, 1, sales, args.concurrency)
            print(json.dumps({"sqlite_1_worker": results["sqlite_1_worker"]}), flush=True)
        runs = []
        for workers in [int(n) for n in args.workers.split(",")]:
            db = pg.new_database()
            config = write_config(folder / f"pg{workers}.toml", f'[store]\nurl = "{db}"\n',
                                  urls, args.merchants)  # fmt: skip
            queue(config, sales, args.merchants)
            runs.append(export_run(config, workers, sales, args.concurrency))
            print(json.dumps(runs[-1]), flush=True)
        one = runs[0]["orders_per_second"]
        for run in runs:
            run["scaling_vs_1"] = round(run["orders_per_second"] / one, 2)
        results["postgres"] = runs
        if not args.no_many:
            results["many_merchants"] = many_merchants(
                pg, urls[0], folder, 500 if args.quick else args.many
            )
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(10)
        pg.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
