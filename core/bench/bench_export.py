"""Benchmark: the export job against the pos-spi reference server (run by ``nox -s bench``).

Prints figures, never a pass/fail verdict:

* **throughput** — 10,000 queued sales over 20 merchants, exported with 50 ms of added server
  latency (the reference server's latency fault): orders per second, POST requests per order,
  peak memory (RSS and tracemalloc);
* **one merchant** — the same for 500 sales of a single merchant, whose queue is first in,
  first out, so latency bounds it;
* **100,000 queued** — 100,000 queued sales (queued with batched inserts, timed), every one of
  them exported (minutes): peak memory, to compare with the 10,000 run (target: <= 200 MB, flat
  with queue size). ``--big-seconds S`` stops it after S seconds instead (a memory check only;
  the table then says how many it exported).

Every row shows the export process's CPU per exported order (``time.process_time``; the
server's CPU is in its own process and not counted), split into the CPU spent inside the HTTP
client (``DirectClient.request`` and httpx's ``request`` and ``send``: httpcore, h11, socket
calls: ``in httpx``) and the rest, omsbridge's own (``omsbridge``: claims, decode, the backend's request body and answer, the store's commits,
the job). It does not measure the OMS's time or the network beyond loopback. The reference
server keeps connections open (HTTP/1.1 keep-alive), as a production OMS does.

Each scenario runs in its own process (peak RSS is per process); the server runs in another
process on 127.0.0.1, so its memory is not counted.

    python core/bench/bench_export.py                 # all scenarios (a few minutes)
    python core/bench/bench_export.py --quick         # small sizes, a smoke run
    python core/bench/bench_export.py --baseline 389bade   # the first row against that commit
    python core/bench/bench_export.py --baseline none      # without the previous code's rows

``--baseline REF`` (by default :data:`PREVIOUS`, the code before the issue-16 export work, when
this clone has that commit) measures the previous code beside the current in the same run: the first
scenario runs twice, alternately with omsbridge's and the pos-spi backend's sources as of git
commit ``REF`` (extracted with ``git archive``, put first on the child's ``PYTHONPATH``) and
with the current ones, ``--rounds`` times each; the table shows both rows and their median
(the same server code, this bench script, the same machine load).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import attrs
import httpx
from http_cpu import HttpCpu  # core/bench/, beside this script

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "transactions" / "sale-cash.json"
API_KEY = "bench-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(latency_ms: float, db: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The reference server in its own process, with ``latency_ms`` added to every request."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omsbridge",
            "sandbox",
            "pos-spi",
            "--port",
            str(port),
            "--db",
            str(db),
            "--api-key",
            API_KEY,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the reference server did not start")
        time.sleep(0.1)
    if latency_ms:
        httpx.post(
            f"{url}/__admin__/faults",
            json={"kind": "timeout", "count": None, "delay": latency_ms / 1000},
        ).raise_for_status()
    return proc, url


def write_config(folder: Path, url: str, merchants: int) -> Path:
    """A config with ``merchants`` merchants on the server; the store in ``folder``."""
    parts = ['[store]\npath = "outbox.db"\n']
    for n in range(merchants):
        parts.append(
            f'[merchants.M{n:03d}]\nbackend = "pos-spi"\n'
            f'[merchants.M{n:03d}.pos-spi]\nbase_url = "{url}"\ntimeout = 10\n'
            'auth = { type = "api_key", api_key = { env = "BENCH_SPI_KEY" } }\n'
        )
    path = folder / "omsbridge.toml"
    path.write_text("\n".join(parts))
    return path


def queue_sales(config: Path, count: int, merchants: int) -> float:
    """Queue ``count`` sales round-robin over the merchants; returns seconds taken."""
    from omsbridge import Transaction, wire
    from omsbridge.config import load_config
    from omsbridge.store import open_store

    base = wire.loads(EXAMPLE.read_text(), Transaction)
    store = open_store(load_config(config).store)
    started = time.perf_counter()

    def items() -> Any:
        for i in range(count):
            txn_id = f"B-{i:07d}"
            yield (
                f"M{i % merchants:03d}",
                attrs.evolve(base, transaction_id=txn_id, order_number=txn_id),
            )

    store.enqueue_many(items())
    took = time.perf_counter() - started
    store.close()
    return took


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def export_scenario(
    config: Path, *, concurrency: int, seconds: float | None, trace: bool
) -> dict[str, Any]:
    """Run the export job in this process; figures as a dict."""
    import logging

    from omsbridge import Bridge
    from omsbridge.export import ExportJob, ExportSettings
    from omsbridge.store import AttemptOutcome

    logging.disable(logging.WARNING)
    counter = HttpCpu()
    done = 0
    lock = threading.Lock()

    def on_outcome(entry: Any, outcome: AttemptOutcome) -> None:
        nonlocal done
        if outcome in (AttemptOutcome.CREATED, AttemptOutcome.EXISTED):
            with lock:
                done += 1

    rss_before = _rss_mb()
    if trace:
        tracemalloc.start()
    with Bridge.from_config(config) as bridge:
        job = ExportJob(
            bridge,
            settings=ExportSettings(concurrency=concurrency, claim_size=50),
            on_outcome=on_outcome,
        )
        started = time.perf_counter()
        cpu_started = time.process_time()
        times_started = os.times()
        deadline = time.monotonic() + seconds if seconds else None
        job.run(deadline=deadline, drain=deadline is None)
        took = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        kernel = os.times().system - times_started.system
        pending = bridge.store.stats(
            __import__("datetime").datetime.now(__import__("datetime").UTC)
        ).total("pending")
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    return {
        "orders": done,
        "seconds": round(took, 2),
        "orders_per_second": round(done / took, 1) if took else None,
        "cpu_ms_per_order": round(cpu / done * 1000, 3) if done else None,
        "http_cpu_ms_per_order": round(counter.seconds / done * 1000, 3) if done else None,
        "own_cpu_ms_per_order": round((cpu - counter.seconds) / done * 1000, 3) if done else None,
        "requests_per_order": round(counter.count / done, 3) if done else None,
        "kernel_cpu_ms_per_order": round(kernel / done * 1000, 3) if done else None,
        "peak_rss_mb": round(_rss_mb(), 1),
        "rss_before_export_mb": round(rss_before, 1),
        "tracemalloc_peak_mb": round(traced, 1) if traced is not None else None,
        "pending_left": pending,
    }


def _profile_threads(profilers: list[Any]) -> None:
    """cProfile every thread started from now on (the export's pool; ``BENCH_EXPORT_PROFILE``
    names the file the merged stats go to): where the export's CPU goes, queueing excluded."""
    import cProfile

    def start(*_: Any) -> None:
        profiler = cProfile.Profile(time.thread_time)  # CPU, not waits
        profilers.append(profiler)
        profiler.enable()

    threading.setprofile(start)


def _child(args: argparse.Namespace) -> None:
    """One scenario in this process: queue, export, print JSON."""
    config = Path(args.config)
    queued = queue_sales(config, args.orders, args.merchants)
    profile_to = os.environ.get("BENCH_EXPORT_PROFILE")
    profilers: list[Any] = []
    if profile_to:
        _profile_threads(profilers)
    figures = export_scenario(
        config, concurrency=args.concurrency, seconds=args.seconds, trace=args.trace
    )
    if profile_to:
        import pstats

        threading.setprofile(None)  # type: ignore[arg-type]
        stats = pstats.Stats(*profilers)
        stats.dump_stats(profile_to)
    figures["queue_seconds"] = round(queued, 2)
    figures["queued"] = args.orders
    import omsbridge
    import omsbridge_posspi

    # Which sources ran (the baseline's extracted copy or the installed ones).
    figures["code"] = [str(Path(m.__file__ or "").parent) for m in (omsbridge, omsbridge_posspi)]
    print(json.dumps(figures))


PREVIOUS = "0846a66"
"""The commit before the export work of issue 16's last round: the default ``--baseline``."""


def _has_commit(ref: str) -> bool:
    found = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{ref}^{{commit}}"], capture_output=True
    )
    return found.returncode == 0


def _extract(ref: str, into: Path) -> list[Path]:
    """The core and pos-spi sources as of git commit ``ref``, for the child's ``PYTHONPATH``."""
    folders = ["core/src", "plugins/pos_spi/src"]
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, *folders], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise SystemExit(f"--baseline {ref}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return [into / folder for folder in folders]


def _run(name: str, *, orders: int, merchants: int, latency_ms: float, concurrency: int,
         seconds: float | None, trace: bool,
         code: list[Path] | None = None) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        folder = Path(tmp)
        server, url = start_server(latency_ms, folder / "spi.db")
        try:
            config = write_config(folder, url, merchants)
            command = [
                sys.executable, __file__, "--child", "--config", str(config),
                "--orders", str(orders), "--merchants", str(merchants),
                "--concurrency", str(concurrency),
            ]  # fmt: skip
            if seconds:
                command += ["--seconds", str(seconds)]
            if trace:
                command.append("--trace")
            env = {**os.environ, "BENCH_SPI_KEY": API_KEY}
            if code:  # the baseline's sources shadow the installed (editable) ones
                env["PYTHONPATH"] = os.pathsep.join(
                    [*map(str, code), *filter(None, [env.get("PYTHONPATH")])]
                )
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
            figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            server.terminate()
            server.wait(timeout=10)
    figures["scenario"] = name
    return figures


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of the per-field medians of ``rows`` (runs of the same scenario)."""
    import statistics

    merged: dict[str, Any] = {}
    for key, value in rows[0].items():
        values = [row[key] for row in rows]
        if isinstance(value, int | float) and not isinstance(value, bool) and None not in values:
            middle = statistics.median(values)
            merged[key] = int(middle) if middle == int(middle) else round(middle, 3)
        else:
            merged[key] = value
    merged["scenario"] = f"{rows[0]['scenario']} median"
    return merged


def main() -> None:
    """Run the scenarios and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--merchants", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help="Also measure with tracemalloc.")
    parser.add_argument("--big", type=int, default=100_000, help="Queue size of the memory run.")
    parser.add_argument(
        "--big-seconds", type=float, default=None, help="Stop the big run after S seconds."
    )
    parser.add_argument("--single", type=int, default=500, help="Sales of the one-merchant run.")
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run.")
    parser.add_argument(
        "--baseline",
        metavar="REF",
        default=None,
        help=f"Also run the first scenario with commit REF's code (default {PREVIOUS} if this "
        "clone has it; 'none': not).",
    )
    parser.add_argument("--rounds", type=int, default=2, help="Runs of each side with --baseline.")
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    if args.quick:
        args.orders, args.big, args.big_seconds, args.single = 400, 2000, 5.0, 50
    if args.baseline is None:
        args.baseline = PREVIOUS if _has_commit(PREVIOUS) and not args.quick else "none"
        if args.baseline == "none" and not args.quick:
            print(f"(commit {PREVIOUS} is not in this clone: no previous-code rows)")
    if args.baseline == "none":
        args.baseline = None
    common = {"latency_ms": args.latency_ms, "trace": args.trace}
    print(f"export benchmark: pos-spi reference server, {args.latency_ms:g} ms added latency")
    first = f"{args.orders} sales / {args.merchants} merchants"
    throughput = {"orders": args.orders, "merchants": args.merchants,
                  "concurrency": args.concurrency, "seconds": None, **common}  # fmt: skip
    results: list[dict[str, Any]] = []
    if args.baseline:
        with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
            code = _extract(args.baseline, Path(tmp))
            pairs = [
                (_run(f"{first} @{args.baseline}", code=code, **throughput),
                 _run(f"{first} @current", **throughput))
                for _ in range(args.rounds)
            ]  # fmt: skip
        for side in (0, 1):
            rows = [pair[side] for pair in pairs]
            results += rows
            if len(rows) > 1:
                results.append(_median(rows))
    else:
        results.append(_run(first, **throughput))
    results += [
        _run(f"{args.single} sales / 1 merchant", orders=args.single, merchants=1,
             concurrency=1, seconds=None, **common),
        _run(f"{args.big} queued" + (", memory" if args.big_seconds else ""), orders=args.big,
             merchants=args.merchants, concurrency=args.concurrency,
             seconds=args.big_seconds, **common),
    ]  # fmt: skip
    header = (
        f"{'scenario':<44} {'queued in':>9} {'posted':>7} {'s':>7} {'orders/s':>9} "
        f"{'CPU ms/ord':>10} {'in httpx':>8} {'omsbridge':>9} {'req/order':>9} {'peak RSS':>9} "
        f"{'tracemalloc':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        traced = f"{r['tracemalloc_peak_mb']} MB" if r["tracemalloc_peak_mb"] is not None else "-"
        print(
            f"{r['scenario']:<44} {r['queue_seconds']:>8}s {r['orders']:>7} {r['seconds']:>7} "
            f"{r['orders_per_second']:>9} {r['cpu_ms_per_order']:>10} "
            f"{r['http_cpu_ms_per_order']:>8} {r['own_cpu_ms_per_order']:>9} "
            f"{r['requests_per_order']:>9} "
            f"{r['peak_rss_mb']:>6} MB {traced:>11}"
        )
    for r in results:
        if r["pending_left"]:
            print(
                f"{r['scenario']}: exported {r['orders']} of {r['queued']} before its time limit "
                "(a memory check: --big-seconds)"
            )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
