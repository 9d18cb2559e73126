"""Export metrics: queue figures from the store, counters of this process, Prometheus text.

``omsbridge export stats --json`` prints :func:`stats_dict` and ``--prometheus`` writes
:func:`prometheus_text` (node-exporter's textfile collector). The worker keeps its metrics in a
:class:`WorkerMetrics` (``prometheus_client``): the store's queue gauges read at each scrape,
post latency histograms per merchant and backend, attempts by outcome and error class,
listener state and lease ownership; :func:`serve_http` serves them with the health checks.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from omsbridge.store import (
    AttemptOutcome,
    AttemptRecord,
    OutboxEntry,
    PauseKind,
    Store,
    StoreStats,
)

__all__ = [
    "ListenerState",
    "ProcessCounters",
    "Route",
    "WorkerMetrics",
    "prometheus_text",
    "serve_http",
    "serve_metrics",
    "stats_dict",
    "write_textfile",
]

_GAUGES = (
    ("pending", "omsbridge_outbox_pending", "Entries waiting to be posted (queue depth)."),
    ("due", "omsbridge_outbox_due", "Pending entries that may be tried now."),
    ("dead", "omsbridge_outbox_dead", "Dead letters waiting for an operator."),
    ("done", "omsbridge_outbox_posted", "Entries posted and not purged yet."),
    ("retried", "omsbridge_outbox_retried", "Entries that needed more than one attempt."),
    ("attempts_failed", "omsbridge_outbox_failed_attempts", "Failed attempts recorded."),
    ("dead_events", "omsbridge_dead_events", "Events whose handling kept failing."),
)


class ProcessCounters:
    """What this process's export job did since it started (Prometheus counters)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_merchant: Counter[tuple[str, str]] = Counter()

    def __call__(self, entry: OutboxEntry, outcome: AttemptOutcome) -> None:
        """Count one outcome (use as the export job's ``on_outcome``)."""
        with self._lock:
            self.by_merchant[(entry.merchant_id, str(outcome))] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        """A copy of the counts by (merchant, outcome)."""
        with self._lock:
            return dict(self.by_merchant)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def stats_dict(stats: StoreStats, now: datetime) -> dict[str, Any]:
    """The store's queue figures as JSON-ready data: totals and one object per merchant."""
    merchants = []
    for m in stats.merchants:
        merchants.append(
            {
                "merchant_id": m.merchant_id,
                "pending": m.pending,
                "due": m.due,
                "dead": m.dead,
                "posted": m.done,
                "retried": m.retried,
                "failed_attempts": m.attempts_failed,
                "dead_events": m.dead_events,
                "oldest_pending_at": _iso(m.oldest_pending_at),
                "oldest_pending_age_seconds": (
                    round((now - m.oldest_pending_at).total_seconds(), 1)
                    if m.oldest_pending_at
                    else None
                ),
                "paused_until": _iso(m.paused_until),
                "pause": (
                    {"kind": str(m.pause_kind), "reason": m.pause_reason}
                    if m.pause_kind is not None
                    else None
                ),
                "api_budget": (
                    {
                        "remaining": m.budget.remaining,
                        "limit": m.budget.limit,
                        "observed_at": _iso(m.budget.observed_at),
                    }
                    if m.budget
                    else None
                ),
            }
        )
    totals = {
        "pending": stats.total("pending"),
        "due": stats.total("due"),
        "dead": stats.total("dead"),
        "posted": stats.total("done"),
        "retried": stats.total("retried"),
        "failed_attempts": stats.total("attempts_failed"),
        "dead_events": stats.total("dead_events"),
    }
    return {"at": now.isoformat(), "totals": totals, "merchants": merchants}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(
    stats: StoreStats, now: datetime, counters: ProcessCounters | None = None
) -> str:
    """The figures in the Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []
    for field, name, help_text in _GAUGES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for m in stats.merchants:
            lines.append(f'{name}{{merchant="{_label(m.merchant_id)}"}} {getattr(m, field)}')
    name = "omsbridge_outbox_oldest_pending_age_seconds"
    lines += [f"# HELP {name} Age of the oldest pending entry.", f"# TYPE {name} gauge"]
    for m in stats.merchants:
        if m.oldest_pending_at is not None:
            age = (now - m.oldest_pending_at).total_seconds()
            lines.append(f'{name}{{merchant="{_label(m.merchant_id)}"}} {age:.1f}')
    name = "omsbridge_merchant_paused"
    lines += [
        f"# HELP {name} 1 while a rate limit or a refused login pauses the merchant.",
        f"# TYPE {name} gauge",
    ]
    for m in stats.merchants:
        lines.append(
            f'{name}{{merchant="{_label(m.merchant_id)}"}} {int(m.paused_until is not None)}'
        )
    name = "omsbridge_merchant_login_refused"
    lines += [
        f"# HELP {name} 1 from a refused login until a login works again (nothing is posted).",
        f"# TYPE {name} gauge",
    ]
    for m in stats.merchants:
        refused = int(m.pause_kind == PauseKind.AUTH)
        lines.append(f'{name}{{merchant="{_label(m.merchant_id)}"}} {refused}')
    for field, help_text in (("remaining", "API calls left"), ("limit", "API call allowance")):
        name = f"omsbridge_api_budget_{field}"
        lines += [
            f"# HELP {name} {help_text}, as the backend last reported.",
            f"# TYPE {name} gauge",
        ]
        for m in stats.merchants:
            value = getattr(m.budget, field) if m.budget is not None else None
            if value is not None:
                lines.append(f'{name}{{merchant="{_label(m.merchant_id)}"}} {value}')
    if counters is not None:
        name = "omsbridge_export_attempts_total"
        lines += [
            f"# HELP {name} Attempt rounds this process finished, by outcome.",
            f"# TYPE {name} counter",
        ]
        for (merchant_id, outcome), count in sorted(counters.snapshot().items()):
            lines.append(f'{name}{{merchant="{_label(merchant_id)}",outcome="{outcome}"}} {count}')
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a scraper never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def serve_metrics(
    port: int, render: Callable[[], str], host: str = "127.0.0.1"
) -> ThreadingHTTPServer:
    """Serve ``render()`` at ``http://host:port/metrics`` from a daemon thread; ``shutdown()`` ends it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render().encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the worker's own log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server


ListenerState = tuple[str, bool, float | None]
"""One held listener: (merchant id, connected, seconds since its last event or None)."""

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _StoreCollector(Collector):
    """The store's queue figures, read when Prometheus scrapes (every worker shows the same
    shared queue: aggregate with ``max`` across workers, not ``sum``)."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def collect(self) -> Any:
        now = self._clock()
        try:
            stats = self._store.stats(now)
        except Exception:
            return  # the store is down: /readyz says so; the process metrics still show
        for field, name, help_text in _GAUGES:
            family = GaugeMetricFamily(name, help_text, labels=["merchant"])
            for m in stats.merchants:
                family.add_metric([m.merchant_id], float(getattr(m, field)))
            yield family
        age = GaugeMetricFamily(
            "omsbridge_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending entry.",
            labels=["merchant"],
        )
        paused = GaugeMetricFamily(
            "omsbridge_merchant_paused",
            "1 while a rate limit or a refused login pauses the merchant.",
            labels=["merchant"],
        )
        refused = GaugeMetricFamily(
            "omsbridge_merchant_login_refused",
            "1 from a refused login until a login works again (nothing is posted).",
            labels=["merchant"],
        )
        for m in stats.merchants:
            if m.oldest_pending_at is not None:
                age.add_metric([m.merchant_id], (now - m.oldest_pending_at).total_seconds())
            paused.add_metric([m.merchant_id], float(m.paused_until is not None))
            refused.add_metric([m.merchant_id], float(m.pause_kind == PauseKind.AUTH))
        yield from (age, paused, refused)


class WorkerMetrics:
    """One worker's metrics in their own ``prometheus_client`` registry (see the module doc)."""

    def __init__(
        self,
        store: Store,
        *,
        backend_of: Callable[[str], str],
        listeners: Callable[[], list[ListenerState]] = list,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        from datetime import UTC

        self.registry = CollectorRegistry(auto_describe=False)
        self._backend_of = backend_of
        self._listeners = listeners
        self.registry.register(_StoreCollector(store, clock or (lambda: datetime.now(UTC))))
        self.post_latency = Histogram(
            "omsbridge_post_latency_seconds",
            "Time of one post attempt to the merchant's OMS.",
            ["merchant", "backend"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.attempts = PromCounter(
            "omsbridge_export_attempts",
            "Post attempts this process made, by outcome and error class ('' for none).",
            ["merchant", "outcome", "error_class"],
            registry=self.registry,
        )
        self.leases = Gauge(
            "omsbridge_leases_held",
            "Leases this worker holds, by kind (listen: merchants' event feeds).",
            ["kind"],
            registry=self.registry,
        )
        self.registry.register(_ListenerCollector(listeners))

    def on_attempts(self, entry: OutboxEntry, attempts: Sequence[AttemptRecord]) -> None:
        """Count a finished round's attempts (the export job's ``on_attempts``)."""
        backend = self._backend_of(entry.merchant_id)
        for attempt in attempts:
            error_class = attempt.error.error_class if attempt.error is not None else ""
            self.attempts.labels(entry.merchant_id, str(attempt.outcome), error_class).inc()
            if attempt.latency_ms is not None:
                self.post_latency.labels(entry.merchant_id, backend).observe(
                    attempt.latency_ms / 1000
                )

    def text(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)


class _ListenerCollector(Collector):
    def __init__(self, listeners: Callable[[], list[ListenerState]]) -> None:
        self._listeners = listeners

    def collect(self) -> Any:
        connected = GaugeMetricFamily(
            "omsbridge_listener_connected",
            "1 while this worker holds the merchant's listener and its last read worked.",
            labels=["merchant"],
        )
        age = GaugeMetricFamily(
            "omsbridge_listener_last_event_age_seconds",
            "Seconds since the listener last received events (absent: none since it started).",
            labels=["merchant"],
        )
        for merchant_id, ok, last_event_age in self._listeners():
            connected.add_metric([merchant_id], float(ok))
            if last_event_age is not None:
                age.add_metric([merchant_id], last_event_age)
        yield from (connected, age)


Route = Callable[[], tuple[int, str, bytes]]
"""Answers a GET: (status, content type, body)."""


def serve_http(host: str, port: int, routes: dict[str, Route]) -> ThreadingHTTPServer:
    """Serve ``routes`` (path -> answer) at ``http://host:port`` from a daemon thread;
    ``shutdown()`` ends it. ``server_address`` tells the port when ``port`` is 0."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404)
                return
            try:
                status, content_type, body = route()
            except Exception as exc:  # an answer, never a dropped connection
                status, content_type = 500, "text/plain; charset=utf-8"
                body = f"error: {type(exc).__name__}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes and probes every few seconds would drown the worker's own log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    return server
