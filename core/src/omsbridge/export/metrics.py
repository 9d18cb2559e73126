"""Export metrics: queue figures from the store, counters of this process, Prometheus text.

``omsbridge export stats --json`` prints :func:`stats_dict`; the worker can write
:func:`prometheus_text` to a file (node-exporter's textfile collector) or serve it on
127.0.0.1 (``/metrics``).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from omsbridge.store import AttemptOutcome, OutboxEntry, PauseKind, StoreStats

__all__ = ["ProcessCounters", "prometheus_text", "serve_metrics", "stats_dict", "write_textfile"]

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
