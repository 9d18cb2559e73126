"""Benchmark: the export job posting to the Salesforce OMS sandbox in batches (``nox -s bench``).

Prints figures, never a pass/fail verdict:

* **10,000 sales over 10 merchants**, exported with 50 ms added to every request (the
  sandbox's latency fault): orders per second, API calls per order (each org's ``/limits``
  DailyApiRequests before and after), composite-graph requests and nodes per request (target:
  >= 450 of 500 when the queue is long), the export's own CPU time per order, peak memory
  (RSS; target <= 200 MB);
* **1,000 sales / 1 merchant**: one first-in-first-out queue, one request at a time;
* **100,000 queued** (one merchant) for memory only: the export runs until its memory is at
  steady state (``--big-seconds``) and stops; peak RSS and RSS sampled along the way, to
  compare with the 10,000 run (target: flat with queue size). The output says how much of the
  queue it exported; ``--big-all`` exports all of it (tens of minutes: the sandbox's cost per
  order grows with its org), which is why the default run is time-bounded.

"CPU/order" is the export process's own CPU (the sandbox runs in other processes), split into
the CPU inside httpx ("in httpx": request and send) and the rest ("omsbridge": claims, decode,
graphs, JSON, the store's commits).

Each merchant has its own sandbox org in its own process on 127.0.0.1: the sandbox's cost per
order grows with the number of orders its org holds (its store scans whole tables for child
records), so one org holding all 10,000 orders would measure the sandbox, not omsbridge. The
queue is filled by another process and each export runs in a process of its own, so peak RSS
is the export's alone.

    python plugins/salesforce_oms/bench/bench_export.py            # all scenarios (~2-3 min)
    python plugins/salesforce_oms/bench/bench_export.py --quick    # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

# The HTTP-client CPU meter shared with core/bench/bench_export.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "core" / "bench"))
from http_cpu import HttpCpu

PASSWORD_ENV = "BENCH_SF_PASSWORD"
SECRET_ENV = "BENCH_SF_SECRET"
WHEN = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_sandbox(latency_ms: int) -> tuple[subprocess.Popen[bytes], str]:
    """The Salesforce sandbox in its own process, ``latency_ms`` added to every request."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omsbridge",
            "sandbox",
            "salesforce",
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
            "--api-budget",
            "10000000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/__sandbox__/info", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the Salesforce sandbox did not start")
        time.sleep(0.1)


def write_config(folder: Path, urls: list[str]) -> Path:
    """A config with one merchant per sandbox org (``M000``...); the store in ``folder``.

    The org profile (som) creates order summaries and take-with fulfillment orders by its own
    flows, and its ``/__sandbox__/info`` advises ``order_summary_creation`` and
    ``take_with_fulfillment`` = "flow": set here, so that a sale is its graph alone (with the
    default "connect" every order would add a Connect call and three queries after its graph).
    """
    from omsbridge_salesforce_sandbox import CLIENT_ID, USERNAME

    parts = ['[store]\npath = "outbox.db"\n']
    for n, url in enumerate(urls):
        parts.append(
            f'[merchants.M{n:03d}]\nbackend = "salesforce"\nlocale = "en_US"\nregion = "US"\n'
            f'currency = "USD"\n\n[merchants.M{n:03d}.salesforce]\nurl_base = "{url}"\n'
            f'allow_insecure_sandbox_url = true\nusername = "{USERNAME}"\n'
            f'password = {{ env = "{PASSWORD_ENV}" }}\nclient_id = "{CLIENT_ID}"\n'
            f'client_secret = {{ env = "{SECRET_ENV}" }}\nread_timeout = 30\n'
            'order_summary_creation = "flow"\ntake_with_fulfillment = "flow"\n'
        )
    path = folder / "omsbridge.toml"
    path.write_text("\n".join(parts))
    return path


def _sale(txn_id: str, n: int) -> Any:
    """A POS sale of 1-3 taxed lines (9-13 graph nodes), cash or card."""
    from omsbridge import CardTender, CashTender, LineItem, TaxLine, Transaction, TransactionKind

    lines = tuple(
        LineItem(
            line_number=k,
            sku=f"SKU-{(n + k) % 40:03d}",
            quantity=Decimal(1 + k % 2),
            unit_price=Decimal("19.99"),
            name=f"Product {(n + k) % 40}",
            taxes=(TaxLine("Sales Tax", Decimal("1.60"), Decimal("0.08")),),
        )
        for k in range(1, 2 + n % 3)
    )
    total = sum((line.total for line in lines), Decimal(0))
    tender = (
        CardTender(total, brand="Visa", last4="4242", auth_code="A1")
        if n % 2
        else CashTender(total)
    )
    return Transaction(
        transaction_id=txn_id,
        kind=TransactionKind.SALE,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=lines,
        total=total,
        tenders=(tender,),
        register_id="R1",
    )


def queue_sales(config: Path, count: int, merchants: int) -> float:
    """Queue ``count`` sales round-robin over the merchants; returns seconds taken."""
    from omsbridge.config import load_config
    from omsbridge.store import open_store

    store = open_store(load_config(config).store)
    started = time.perf_counter()

    def items() -> Iterator[tuple[str, Any]]:
        for i in range(count):
            yield f"M{i % merchants:03d}", _sale(f"B-{i:07d}", i)

    store.enqueue_many(items())
    took = time.perf_counter() - started
    store.close()
    return took


def _api_used(url: str) -> int:
    """DailyApiRequests used so far, from the sandbox's ``/limits`` (itself one call)."""
    from omsbridge_salesforce_sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME

    token = httpx.post(
        f"{url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "username": USERNAME,
            "password": PASSWORD,
        },
        timeout=30,
    ).json()["access_token"]
    body = httpx.get(
        f"{url}/services/data/v62.0/limits",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    daily = body["DailyApiRequests"]
    return int(daily["Max"]) - int(daily["Remaining"])


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def export_scenario(
    config: Path, *, concurrency: int, claim_size: int, seconds: float | None
) -> dict[str, Any]:
    """Run the export job in this process; figures as a dict."""
    from omsbridge import Bridge
    from omsbridge.export import ExportJob, ExportSettings
    from omsbridge.store import AttemptOutcome

    logging.disable(logging.WARNING)
    done = 0
    lock = threading.Lock()
    samples: list[tuple[float, float, int]] = []  # (seconds, RSS MB, orders done)

    def on_outcome(entry: Any, outcome: AttemptOutcome) -> None:
        nonlocal done
        if outcome in (AttemptOutcome.CREATED, AttemptOutcome.EXISTED):
            with lock:
                done += 1

    http_cpu = HttpCpu()
    rss_before = _rss_now_mb()
    with Bridge.from_config(config) as bridge:
        urls = [
            bridge.for_merchant(m).backend.config.url_base.rstrip("/") for m in bridge.merchant_ids
        ]
        api_before = sum(_api_used(url) for url in urls)
        job = ExportJob(
            bridge,
            settings=ExportSettings(concurrency=concurrency, claim_size=claim_size),
            on_outcome=on_outcome,
        )
        stop_sampling = threading.Event()
        started = time.perf_counter()

        def sample() -> None:
            while not stop_sampling.wait(1.0):
                samples.append((time.perf_counter() - started, _rss_now_mb(), done))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        deadline = time.monotonic() + seconds if seconds else None
        # CPU from here: the bench's own /limits reads above (a new httpx client each, which
        # loads the CA bundle) and the config's loading are not the export's.
        cpu_before = _cpu_seconds()
        http_cpu.seconds = 0.0
        job.run(deadline=deadline, drain=deadline is None)
        took = time.perf_counter() - started
        stop_sampling.set()
        sampler.join()
        cpu = _cpu_seconds() - cpu_before
        http = http_cpu.seconds
        api_calls = sum(_api_used(url) for url in urls) - api_before - len(urls)  # not /limits
        batches = [bridge.for_merchant(m).backend.batches.stats for m in bridge.merchant_ids]
        pending = bridge.store.stats(datetime.now(UTC)).total("pending")
    requests = sum(s.requests for s in batches)
    nodes = sum(s.nodes for s in batches)
    per_request = sorted(n for s in batches for n in s.nodes_per_request.elements())
    return {
        "orders": done,
        "seconds": round(took, 2),
        "orders_per_second": round(done / took, 1) if took else None,
        "api_calls": api_calls,
        "api_calls_per_order": round(api_calls / done, 4) if done else None,
        "cpu_ms_per_order": round(cpu * 1000 / done, 3) if done else None,
        "http_cpu_ms_per_order": round(http * 1000 / done, 3) if done else None,
        "own_cpu_ms_per_order": round((cpu - http) * 1000 / done, 3) if done else None,
        "graph_requests": requests,
        "nodes_per_request": round(nodes / requests, 1) if requests else None,
        "nodes_per_request_min": per_request[0] if per_request else None,
        "nodes_per_request_median": per_request[len(per_request) // 2] if per_request else None,
        "graphs_per_request": round(sum(s.graphs for s in batches) / requests, 1)
        if requests
        else None,
        "peak_rss_mb": round(_rss_peak_mb(), 1),
        "rss_before_export_mb": round(rss_before, 1),
        "rss_samples_mb": [round(s[1], 1) for s in samples[:: max(1, len(samples) // 8)]],
        "pending_left": pending,
    }


def _child(args: argparse.Namespace) -> None:
    """One step in this process: ``--queue`` fills the outbox, else the export runs."""
    config = Path(args.config)
    if args.queue:
        print(
            json.dumps(
                {"queue_seconds": round(queue_sales(config, args.orders, args.merchants), 2)}
            )
        )
        return
    figures = export_scenario(
        config, concurrency=args.concurrency, claim_size=args.claim_size, seconds=args.seconds
    )
    print(json.dumps(figures))


def _step(command: list[str], name: str) -> dict[str, Any]:
    from omsbridge_salesforce_sandbox import CLIENT_SECRET, PASSWORD

    env = {**os.environ, PASSWORD_ENV: PASSWORD, SECRET_ENV: CLIENT_SECRET}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def _run(name: str, *, orders: int, merchants: int, latency_ms: int, concurrency: int,
         claim_size: int, seconds: float | None) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-sf-export-") as tmp:
        folder = Path(tmp)
        sandboxes = [start_sandbox(latency_ms) for _ in range(merchants)]
        try:
            config = write_config(folder, [url for _, url in sandboxes])
            base = [
                sys.executable, __file__, "--child", "--config", str(config),
                "--orders", str(orders), "--merchants", str(merchants),
            ]  # fmt: skip
            queued = _step([*base, "--queue"], name)
            command = [*base, "--concurrency", str(concurrency), "--claim-size", str(claim_size)]
            if seconds:
                command += ["--seconds", str(seconds)]
            figures = _step(command, name)
        finally:
            for sandbox, _ in sandboxes:
                sandbox.terminate()
            for sandbox, _ in sandboxes:
                sandbox.wait(timeout=10)
    figures.update(queued, scenario=name, queued=orders)
    return figures


def main() -> None:
    """Run the scenarios and print their figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--queue", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--merchants", type=int, default=10, help="Merchants (orgs), 1st run.")
    parser.add_argument("--single", type=int, default=1000, help="Sales of the 1-merchant run.")
    parser.add_argument("--claim-size", type=int, default=50, help="Entries claimed at a time.")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--big", type=int, default=100_000, help="Queue size of the memory run.")
    parser.add_argument("--big-seconds", type=float, default=30.0, help="Export time of it.")
    parser.add_argument(
        "--big-all", action="store_true", help="Export the whole queue of the big run (long)."
    )
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run.")
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    if args.quick:
        args.orders, args.merchants, args.single, args.big, args.big_seconds = 1000, 4, 200, 5000, 5
    common = {"latency_ms": args.latency_ms, "claim_size": args.claim_size}
    print(
        f"export benchmark: Salesforce OMS sandbox, {args.latency_ms} ms added latency, "
        f"claims of {args.claim_size}"
    )
    results = [
        _run(f"{args.orders} sales / {args.merchants} merchants", orders=args.orders,
             merchants=args.merchants, concurrency=args.merchants, seconds=None, **common),
        _run(f"{args.single} sales / 1 merchant", orders=args.single, merchants=1,
             concurrency=1, seconds=None, **common),
        _run(f"{args.big} queued" + ("" if args.big_all else ", memory"), orders=args.big,
             merchants=1, concurrency=1, seconds=None if args.big_all else args.big_seconds,
             **common),
    ]  # fmt: skip
    header = (
        f"{'scenario':<28} {'queued in':>9} {'posted':>7} {'s':>7} {'orders/s':>9} "
        f"{'API/order':>9} {'requests':>8} {'nodes/req':>9} {'min/med':>8} {'CPU/order':>9} "
        f"{'in httpx':>8} {'omsbridge':>9} {'peak RSS':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        low_med = f"{r['nodes_per_request_min']}/{r['nodes_per_request_median']}"
        print(
            f"{r['scenario']:<28} {r['queue_seconds']:>8}s {r['orders']:>7} {r['seconds']:>7} "
            f"{r['orders_per_second']:>9} {r['api_calls_per_order']:>9} "
            f"{r['graph_requests']:>8} {r['nodes_per_request']:>9} {low_med:>8} "
            f"{r['cpu_ms_per_order']:>6} ms {r['http_cpu_ms_per_order']:>8} "
            f"{r['own_cpu_ms_per_order']:>9} {r['peak_rss_mb']:>6} MB"
        )
    for r in results:
        if r["pending_left"]:
            print(
                f"{r['scenario']}: exported {r['orders']}, {r['pending_left']} left when its "
                "time limit came "
                "(a memory check; --big-all exports the whole queue)"
            )
    print("RSS along each export (MB):")
    for r in results:
        print(f"  {r['scenario']:<28} {r['rss_samples_mb']}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
