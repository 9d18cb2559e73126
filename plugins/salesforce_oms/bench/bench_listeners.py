"""Benchmark: listeners of many merchants, each on its own org, over Pub/Sub and CometD.

Fair like production: every merchant has its own org, so an event reaches exactly one
merchant's listener. One server process serves N orgs (each its own sandbox event bus: a Pub/Sub
tenant, or a CometD endpoint under ``/org/<i>``) and publishes FOStatusChangedEvents at
``--rate`` events/s in all, each to one random org. The bench process runs only the listeners:
the Salesforce backend's feeds (Pub/Sub and CometD: every subscription or long poll on one
event loop) driven as ``omsbridge worker`` drives them: a leased
:class:`~omsbridge.listen.ListenerPool` on a SQLite store with the worker's defaults
(``PoolSettings()``: 8 threads, 15 s listener leases renewed every 5 s, checkpoints stored
together every 0.25 s; ``ListenerSettings(wait=5.0)``), EventUuid dedupe, and a handler that
notes the time (the hook; the fulfillment-order fetch is left out so the listener is what is
measured). ``--pools worker local`` adds the lease-less :class:`~omsbridge.listen.
EventDrivenPool` (one process owning every listener) as a second row. The worker also follows
each merchant's payment-failure channel; the bench follows the fulfillment channel only.

Measured in a worker's steady state: events later than a listener's start plus its clock margin
are deduplicated from its memory, earlier ones also ask the store (``ListenerSettings.
clock_margin``, 5 minutes by default, for an org's clock ahead of ours). Server and listeners
share this machine's clock here, so the bench sets a 1 s margin and publishes after it.

Prints, per transport and merchant count: event -> hook p50/p95 (the publish time travels in
the event), listener CPU per event (the bench process's CPU time over the run / events), RSS;
``--breakdown`` adds CPU and wake-ups per event by thread. ``--scheduling batch normal`` runs
each row under the listener threads' ``SCHED_BATCH`` policy (the default, see
:mod:`omsbridge.threads`) and under the OS's default one, side by side; ``--repeat N`` runs
each row N times (runs on a shared machine vary by about ±0.05 ms per event). By default the
emulator shares the machine's CPUs with the listeners; ``--isolate`` gives it a CPU of its own
(as Salesforce is elsewhere in production) and the listeners the others. Figures only,
not a pass/fail test. ``--merchants 1 100 1000`` for the full set (default ``1 100``, short).
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omsbridge.listen import EventDrivenPool, Listener, ListenerPool, ListenerSettings, PoolSettings
from omsbridge.store.sqlite import SqliteStore

FO_CHANNEL = "/event/FOStatusChangedEvent"
_CLOCK_MARGIN = 1.0  # seconds; one clock for server and listeners (see the module doc)
_SCHEDULING = "OMSBRIDGE_THREAD_SCHEDULING"


# -- the server process ---------------------------------------------------------------------


def _serve(
    conn: multiprocessing.connection.Connection,
    orgs: int,
    transport: str,
    cpus: set[int] | None = None,
) -> None:
    if cpus:
        _pin(cpus)
    from datetime import UTC, datetime

    from omsbridge_salesforce_sandbox.clock import Clock
    from omsbridge_salesforce_sandbox.pubsub import PubSubServer
    from omsbridge_salesforce_sandbox.streaming import CometD, EventBus

    clock = Clock()
    buses = [EventBus(clock, 72 * 3600.0, seed=i) for i in range(orgs)]

    class _Options:
        # Salesforce's own timeouts (reference streaming.md: a connect is held up to 110 s,
        # the next one is due within 40 s): shorter polls would add empty round trips per
        # merchant that a production worker does not make.
        long_poll_timeout = 110.0
        reconnect_timeout = 40.0
        pubsub_keepalive = 270.0

    def valid(token: str | None) -> bool:
        return bool(token) and "bench" in str(token)

    stoppers: list[Any] = []
    if transport == "pubsub":
        server = PubSubServer(buses[0], _org(0), valid, _Options(), clock).start()
        for i in range(1, orgs):
            server.add_org(_org(i), buses[i], valid)
        address = server.address
        stoppers.append(server.stop)
    else:
        from werkzeug.serving import make_server
        from werkzeug.wrappers import Request, Response

        def check(header: str | None) -> None:
            if not valid(header):
                raise PermissionError("bad token")

        endpoints = [CometD(bus, _Options(), clock, check) for bus in buses]

        @Request.application  # type: ignore[untyped-decorator]
        def app(request: Request) -> Response:
            _, _, index, _ = request.path.split("/", 3)
            replies = endpoints[int(index)].handle(
                request.get_json(force=True), request.headers.get("Authorization")
            )
            return Response(__import__("json").dumps(replies), content_type="application/json")

        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from omsbridge.local_http import KeepAliveRequestHandler

        class _Handler(KeepAliveRequestHandler):
            # Connections kept open between long polls, as Salesforce's are (werkzeug's own
            # handler closes each one: a TCP connect per long poll on both sides).
            timeout = 60

            def log(self, type: str, message: str, *args: Any) -> None:
                """Quiet."""

        http = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Handler)
        http.daemon_threads = True
        threading.Thread(target=http.serve_forever, daemon=True).start()
        address = f"http://127.0.0.1:{http.server_port}"
        stoppers.append(http.shutdown)
    conn.send(address)
    rng = random.Random(7)
    while True:
        command = conn.recv()
        if command is None:
            break
        rate, count = command
        start = time.perf_counter()
        for k in range(count):
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            org = rng.randrange(orgs)
            buses[org].publish(
                FO_CHANNEL,
                {
                    "EventUuid": str(uuid.uuid4()),
                    "FulfillmentOrderId": f"0a3{org:06d}{k:06d}AAA",
                    "OrderSummaryId": None,
                    # The publish time (epoch seconds) rides in OldStatus: the bench's clock.
                    "OldStatus": repr(time.time()),
                    "NewStatus": "Allocated",
                    "OldStatusCategory": None,
                    "NewStatusCategory": "ACTIVATED",
                    "CreatedDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                    "CreatedById": "005000000000001AAA",
                },
            )
        conn.send("published")
    for stop in stoppers:
        stop()


def _pin(cpus: set[int]) -> None:
    """Keep this process (its threads now and those it starts later) on ``cpus``."""
    for task in Path("/proc/self/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def _split_cpus() -> tuple[set[int], set[int]]:
    """(the listeners' CPUs, the emulator's CPU) for ``--isolate``: the emulator on one."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--isolate needs at least 2 CPUs")
    return set(cpus[:-1]), {cpus[-1]}


def _org(index: int) -> str:
    return f"00D{index:012d}AAA"


# -- the listener process -------------------------------------------------------------------


class _Auth:
    """A merchant's token: its own org (instance URL and tenant)."""

    def __init__(self, index: int, base: str) -> None:
        from omsbridge_salesforce.auth import Token

        self._token = Token(
            access_token=f"bench-{index}",
            instance_url=f"{base}/org/{index}",
            obtained_at=time.monotonic(),
            org_id=_org(index),
        )
        self.instance_url = self._token.instance_url

    def token(self) -> Any:
        return self._token

    def refresh(self, stale: Any = None) -> Any:
        return self._token


class _Backend:
    """The part of SalesforceBackend a listener uses: the feed."""

    def __init__(self, feed: Any) -> None:
        self.feed = feed
        self.capabilities = frozenset()

    def watch_events(self, callback: Any) -> bool:
        self.feed.on_ready = callback
        return True


class _Merchant:
    def __init__(self, merchant_id: str, feed: Any) -> None:
        self.merchant_id = merchant_id
        self.backend = _Backend(feed)

    def events(self, checkpoint: str | None, wait: float = 0.0) -> Any:
        return self.backend.feed.events(checkpoint, wait)


class _Hook:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, merchant: Any, events: Sequence[Any]) -> None:
        now = time.time()
        with self.lock:
            self.latencies.extend(now - float(e.old_status) for e in events)


def _feed(transport: str, index: int, address: str) -> Any:
    if transport == "pubsub":
        from omsbridge_salesforce.streaming.pubsub import PubSubFeed

        return PubSubFeed(
            _Auth(index, "http://127.0.0.1"),  # type: ignore[arg-type]
            address,
            lambda since: [],
            tls=False,
            merchant_id=f"M{index}",
            connect_timeout=30.0,
        )
    from omsbridge_salesforce.streaming.listener import FulfillmentFeed

    return FulfillmentFeed(
        _Auth(index, address),  # type: ignore[arg-type]
        "62.0",
        lambda since: [],
        merchant_id=f"M{index}",
        connect_timeout=30.0,
    )


class _WorkerPool:
    """The worker's listener pool (``omsbridge worker``: leased, on the store) on a thread."""

    def __init__(self, listeners: list[Listener], store: SqliteStore, threads: int) -> None:
        by_id = {listener.merchant.merchant_id: listener for listener in listeners}
        self.pool = ListenerPool(
            lambda merchant_id: by_id[merchant_id],
            list(by_id),
            store,
            "bench-worker",
            PoolSettings(threads=threads),
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.pool.run, args=(self._stop,), name="listen pool", daemon=True
        )

    @property
    def commit_transactions(self) -> int:
        committer = self.pool.committer
        return committer.transactions if committer is not None else 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _run(
    transport: str,
    merchants: int,
    rate: float,
    seconds: float,
    threads: int = 8,
    pool_kind: str = "worker",
    isolate: bool = False,
) -> dict[str, Any]:
    mine, theirs = _split_cpus() if isolate else (None, None)
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, merchants, transport, theirs))
    server.start()
    if mine:
        _pin(mine)
    address = parent.recv()
    hook = _Hook()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "state.db")
        # The worker's listener settings (wait=5.0 ...) but for the clock margin (module doc).
        settings = ListenerSettings(clock_margin=_CLOCK_MARGIN)
        listeners = [
            Listener(
                _Merchant(f"M{i}", _feed(transport, i, address)),  # type: ignore[arg-type]
                store,
                handler=hook,
                settings=settings,
            )
            for i in range(merchants)
        ]
        pool: EventDrivenPool | _WorkerPool = (
            _WorkerPool(listeners, store, threads)
            if pool_kind == "worker"
            else EventDrivenPool(listeners, workers=threads, sweep=30.0)
        )
        started = time.perf_counter()
        pool.start()
        # Every merchant subscribed (its first poll stored a checkpoint) before publishing.
        while not all(listener.checkpoint for listener in listeners):
            if time.perf_counter() - started > 120:
                raise SystemExit(f"{transport}: not every listener subscribed in 120 s")
            time.sleep(0.1)
        time.sleep(0.5 + _CLOCK_MARGIN)  # steady state: past every listener's clock margin
        count = int(rate * seconds)
        live_threads = threading.active_count()
        threads0 = _thread_cpu()
        cpu0 = time.process_time()
        parent.send((rate, count))
        parent.recv()
        deadline = time.perf_counter() + 30
        while len(hook.latencies) < count and time.perf_counter() < deadline:
            time.sleep(0.05)
        cpu = time.process_time() - cpu0
        threads1 = _thread_cpu()
        pool.stop()
        for listener in listeners:
            listener.merchant.backend.feed.close()  # type: ignore[attr-defined]
        store.close()
    parent.send(None)
    server.join(10)
    if server.is_alive():
        server.terminate()
    got = sorted(hook.latencies)
    return {
        "transport": transport,
        "pool": pool_kind,
        "merchants": merchants,
        "events": count,
        "handled": len(got),
        "p50_ms": statistics.median(got) * 1000 if got else float("nan"),
        "p95_ms": got[int(0.95 * (len(got) - 1))] * 1000 if got else float("nan"),
        "cpu_ms_per_event": cpu / max(1, len(got)) * 1000,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "commit_transactions": pool.commit_transactions,
        "threads": _per_event(threads0, threads1, max(1, len(got))),
        "live_threads": live_threads,
        "isolated": isolate,
    }


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each live thread, summed by name family (listen_0.. -> listen),
    and its wake-ups (``switches:<family>``: voluntary context switches, from /proc)."""
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            spent = time.clock_gettime(clock)
        except (OSError, AttributeError):
            continue
        _note(found, thread.name.split("_")[0].split("-")[0].strip(), spent, thread.native_id)
    # Threads Python did not start (gRPC core's own), by their OS name, where /proc tells.
    known = {thread.native_id for thread in threading.enumerate()}
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return found
    tick = os.sysconf("SC_CLK_TCK")
    for task in tasks:
        if int(task.name) in known:
            continue
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        spent = (int(fields[11]) + int(fields[12])) / tick
        _note(found, "native:" + name.rstrip("0123456789_-"), spent, int(task.name))
    return found


def _note(found: dict[str, float], family: str, spent: float, native_id: int | None) -> None:
    """Add a thread's CPU seconds and wake-ups to its family's."""
    found[family] = found.get(family, 0.0) + spent
    switches = _switches(native_id)
    if switches is not None:
        key = "switches:" + family
        found[key] = found.get(key, 0.0) + switches


def _switches(native_id: int | None) -> int | None:
    """A thread's voluntary context switches so far (each one a wait it woke from)."""
    try:
        status = Path(f"/proc/self/task/{native_id}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return None


def _per_event(before: dict[str, float], after: dict[str, float], events: int) -> str:
    parts = []
    wakes = []
    for name in sorted(after, key=lambda n: before.get(n, 0.0) - after[n]):
        if name.startswith("switches:"):
            woke = (after[name] - before.get(name, 0.0)) / events
            if woke >= 0.01:
                wakes.append(f"{name.removeprefix('switches:')} {woke:.2f}")
            continue
        spent = (after[name] - before.get(name, 0.0)) / events * 1000
        if spent >= 0.005:
            parts.append(f"{name} {spent:.3f}")
    return ", ".join(parts) + "; wake-ups per event: " + ", ".join(wakes)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merchants", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--transports", nargs="+", default=["pubsub", "cometd"])
    parser.add_argument("--rate", type=float, default=100.0, help="events/s in all")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8, help="the pool's reading threads")
    parser.add_argument(
        "--pools",
        nargs="+",
        choices=["worker", "local"],
        default=["worker"],
        help="worker: the leased ListenerPool of omsbridge worker; local: EventDrivenPool",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also print CPU and wake-ups (voluntary context switches) per event by thread",
    )
    parser.add_argument(
        "--scheduling",
        nargs="+",
        choices=["batch", "normal"],
        default=["batch"],
        help="the listener threads' policy (omsbridge.threads; normal: "
        "OMSBRIDGE_THREAD_SCHEDULING=normal); both: each row run with each, one after the other",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each row")
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="the emulator on a CPU of its own, the listeners on the others (in production "
        "Salesforce is elsewhere; on a shared core the emulator's work evicts the listeners' "
        "caches and adds to their CPU per event)",
    )
    args = parser.parse_args(argv)
    if args.isolate:
        listeners, emulator = _split_cpus()
        print(f"# the emulator on CPU {sorted(emulator)}, the listeners on {sorted(listeners)}")
    print(
        f"{'transport':<9} {'pool':<6} {'sched':<6} {'merchants':>9} {'events':>7} "
        f"{'handled':>7} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms/event':>12} {'max RSS MB':>10}"
    )
    runs = [
        (m, t, p, s)
        for m in args.merchants
        for t in args.transports
        for p in args.pools
        for _ in range(args.repeat)
        for s in args.scheduling
    ]
    for merchants, transport, pool_kind, scheduling in runs:
        # Each run in a fresh process: threads, loop and RSS of one do not leak into the next.
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_child,
            args=(
                child,
                transport,
                merchants,
                args.rate,
                args.seconds,
                args.threads,
                pool_kind,
                args.isolate,
            ),
        )
        saved = os.environ.get(_SCHEDULING)
        os.environ[_SCHEDULING] = scheduling  # the child inherits it
        try:
            proc.start()
        finally:
            if saved is None:
                os.environ.pop(_SCHEDULING, None)
            else:
                os.environ[_SCHEDULING] = saved
        r = parent.recv()
        proc.join()
        print(
            f"{r['transport']:<9} {r['pool']:<6} {scheduling:<6} {r['merchants']:>9} "
            f"{r['events']:>7} {r['handled']:>7} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
            f"{r['cpu_ms_per_event']:>12.3f} {r['rss_mb']:>10.0f}",
            flush=True,
        )
        if args.breakdown and r.get("threads") is not None:
            print(
                f"    CPU ms/event by thread: {r['threads']}; "
                f"{r['commit_transactions']} commit transactions; "
                f"{r.get('live_threads')} threads",
                flush=True,
            )


def _child(
    conn: multiprocessing.connection.Connection,
    transport: str,
    merchants: int,
    rate: float,
    seconds: float,
    threads: int,
    pool_kind: str,
    isolate: bool = False,
) -> None:
    try:
        conn.send(_run(transport, merchants, rate, seconds, threads, pool_kind, isolate))
    except BaseException as exc:
        conn.send(
            {
                "transport": transport,
                "pool": pool_kind,
                "merchants": merchants,
                "events": 0,
                "handled": 0,
                "p50_ms": float("nan"),
                "p95_ms": float("nan"),
                "cpu_ms_per_event": float("nan"),
                "rss_mb": 0.0,
                "commit_transactions": 0,
                "threads": None,
                "error": repr(exc),
            }
        )
        print(f"{transport} x{merchants} failed: {exc!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
