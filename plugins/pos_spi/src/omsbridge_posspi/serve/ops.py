"""Operations of ``omsbridge serve``: request ids, request logs, Prometheus metrics, readiness.

Metrics live in the worker's registry (:class:`omsbridge.export.metrics.WorkerMetrics`: the
outbox gauges read from the store at each scrape) plus serve's own request counter and latency
histogram. Each server process has its own counters; scrape every worker, or read the shared
outbox gauges from any of them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from prometheus_client import Counter, Histogram

from omsbridge.bridge import Bridge
from omsbridge.export.metrics import WorkerMetrics

__all__ = ["ServeMetrics", "log_request", "request_id", "store_ready"]

log = logging.getLogger("omsbridge.serve")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def request_id(given: str | None) -> str:
    """The caller's ``X-Request-Id`` when it is a sane token, else a new one (never echo junk
    into logs)."""
    if given and _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


class ServeMetrics:
    """Counters of this process: requests by route, method and status; latency by route."""

    def __init__(self, bridge: Bridge) -> None:
        self._worker = WorkerMetrics(
            bridge.store,
            backend_of=lambda merchant_id: bridge.config.merchants[merchant_id].backend,
        )
        self.registry = self._worker.registry
        self.requests = Counter(
            "omsbridge_serve_requests",
            "Requests answered by omsbridge serve, by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "omsbridge_serve_request_seconds",
            "Time to answer one request (long polls included), by route.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.queued = Counter(
            "omsbridge_serve_posts_queued",
            "Posts answered 202: kept in the outbox because the OMS could not take them.",
            ["merchant"],
            registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def text(self) -> bytes:
        """Everything in the Prometheus text format."""
        return self._worker.text()


def store_ready(bridge: Bridge) -> Callable[[], str | None]:
    """A readiness check: None when the store answers, else why not."""

    def check() -> str | None:
        try:
            bridge.store.entries(limit=1)
        except Exception as exc:  # any driver error means "not ready"
            return f"the store does not answer: {type(exc).__name__}"
        return None

    return check


def log_request(
    *,
    rid: str,
    method: str,
    route: str,
    path: str,
    status: int,
    started: float,
    client: str | None,
) -> None:
    """One line per request: no headers, no bodies, so no secret reaches the log."""
    log.info(
        "%s %s -> %d in %.1f ms (client %s, request %s)",
        method,
        path,
        status,
        (time.monotonic() - started) * 1000,
        client or "-",
        rid,
        extra={"request_id": rid, "route": route, "status": status, "client": client},
    )
