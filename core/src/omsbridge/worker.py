"""The worker: one process running the export job on a schedule and the event listeners.

Many workers may share one store (PostgreSQL): merchants are exported by whoever holds their
lease, and every merchant's listeners are leased too (:class:`~omsbridge.listen.ListenerPool`,
one lease per merchant and channel), so exactly one worker reads a merchant's feed and another
takes it over when that worker dies. A worker drives all its listeners on a few threads, not one
per merchant: the fulfillment feed of every merchant whose backend has events, and each extra
channel a backend class names in ``event_channels`` (the Salesforce backend: its
``payment-failures``), whose source and handler come from ``backend.event_source(channel,
store, plugin_manager)``.

It stops cleanly on SIGTERM or SIGINT: the export job finishes the post in flight and gives back
what it had claimed, the listeners finish their read and give their leases back; whatever has not
ended within the grace period is left to run out (its leases expire, nothing is lost). After a
SIGKILL nothing is lost either: claimed entries come back when their lease runs out, listeners
resume from the stored checkpoint.

With ``http_port`` set it serves ``/healthz`` (the process runs), ``/readyz`` (the store answers
and every held listener's last read worked) and ``/metrics`` (Prometheus).
"""

from __future__ import annotations

import functools
import logging
import random
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import attrs

from omsbridge.bridge import Bridge
from omsbridge.export import ExportJob, ExportSettings
from omsbridge.export.metrics import (
    ListenerState,
    ProcessCounters,
    WorkerMetrics,
    prometheus_text,
    serve_http,
    write_textfile,
)
from omsbridge.listen import (
    EventHandler,
    Listener,
    ListenerPool,
    ListenerSettings,
    PoolSettings,
    RecordingHandler,
)
from omsbridge.plugins import worker_tasks
from omsbridge.spi import Capability
from omsbridge.store import Store

__all__ = ["Worker", "WorkerSettings"]

logger = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"


@attrs.frozen
class WorkerSettings:
    """What the worker runs and how often."""

    export: bool = True
    listen: bool = True
    export_interval: float = 5.0
    """Longest pause between export runs (a run starts sooner when an entry falls due)."""
    export_settings: ExportSettings = attrs.field(factory=ExportSettings)
    listener_settings: ListenerSettings = attrs.field(factory=ListenerSettings)
    pool: PoolSettings = attrs.field(factory=PoolSettings)
    """Listener leases and the threads that drive the held listeners."""
    metrics_file: Path | None = None
    metrics_port: int | None = None
    """Old name of ``http_port`` (kept for existing configs); ``http_port`` wins."""
    http_host: str = "127.0.0.1"
    """Where ``/healthz``, ``/readyz`` and ``/metrics`` listen (``0.0.0.0`` in a container)."""
    http_port: int | None = None
    grace_seconds: float = 30.0
    """How long a stop waits for the post and reads in flight before the process ends anyway."""


class Worker:
    """Runs the export job and the listeners this worker holds (see the module doc)."""

    def __init__(
        self,
        bridge: Bridge,
        settings: WorkerSettings | None = None,
        *,
        store: Store | None = None,
        handler: EventHandler | RecordingHandler | None = None,
        owner: str | None = None,
    ) -> None:
        self.bridge = bridge
        self.settings = settings or WorkerSettings()
        self.store = store if store is not None else bridge.store
        self.counters = ProcessCounters()
        self.metrics = WorkerMetrics(
            self.store, backend_of=self._backend_name, listeners=self._listener_states
        )
        self.job = ExportJob(
            bridge,
            self.store,
            self.settings.export_settings,
            owner=owner,
            on_outcome=self.counters,
            on_attempts=self.metrics.on_attempts,
        )
        self._handler = handler
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.pool = ListenerPool(
            self._build_listener,
            self._feeds(),
            self.store,
            self.job.owner,
            self.settings.pool,
            channel=self.settings.listener_settings.channel,
        )
        self.metrics.leases.labels("listen").set_function(lambda: len(self.pool.slots))
        self.http_address: tuple[str, int] | None = None
        self._offset = random.randrange(1 << 30)

    @property
    def listeners(self) -> list[Listener]:
        """The listeners this worker holds now."""
        return self.pool.held()

    def stop(self) -> None:
        """Ask every part to stop (safe from a signal handler or another thread)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked for."""
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        """Stop on SIGTERM and SIGINT (call from the main thread)."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            logger.info("received %s; stopping", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def run(self) -> None:
        """Start everything and block until :meth:`stop`; then wait for the parts to end (at
        most the grace period)."""
        server = None
        port = self.settings.http_port
        if port is None:
            port = self.settings.metrics_port
        if port is not None:
            server = serve_http(
                self.settings.http_host,
                port,
                {"/healthz": self._healthz, "/readyz": self._readyz, "/metrics": self._metrics},
            )
            host, bound = server.server_address[:2]
            self.http_address = (str(host), int(bound))
            logger.info("health and metrics on http://%s:%d", host, bound)
        if self.settings.listen and self.pool.merchant_ids:
            self._start(lambda: self.pool.run(self._stop), "listeners")
        if self.settings.export:
            self._start(self._export_loop, "export")
        # Plugins' own background work (the outgoing webhooks): one thread each.
        for name, task in worker_tasks(self.bridge.plugin_manager):
            self._start(functools.partial(task, self, self._stop), name)
        logger.info(
            "worker %s running: export %s, %d listener(s) leased among %d merchant(s)",
            self.job.owner,
            "on" if self.settings.export else "off",
            len(self.pool.feeds) if self.settings.listen else 0,
            len(self.pool.merchant_ids) if self.settings.listen else 0,
        )
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self._stop.set()
            deadline = time.monotonic() + self.settings.grace_seconds
            for thread in self._threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            late = [t.name for t in self._threads if t.is_alive()]
            if late:
                logger.warning(
                    "grace period of %.1f s over; %s still running: their leases run out by "
                    "themselves, nothing is lost",
                    self.settings.grace_seconds,
                    ", ".join(late),
                )
            if server is not None:
                server.shutdown()
            self._write_metrics()
            logger.info("worker stopped")

    def _start(self, target: object, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    # -- listeners ----------------------------------------------------------------------------

    def _feeds(self) -> list[tuple[str, str]]:
        # Read from the backend class: no merchant's backend is built before it is held.
        found = []
        main = self.settings.listener_settings.channel
        for merchant_id, config in self.bridge.config.merchants.items():
            try:
                backend_class = self.bridge.registry.get(config.backend)
            except Exception:
                continue  # the export job reports a missing backend
            if Capability.EVENTS in backend_class.capabilities:
                found.append((merchant_id, main))
            for channel in getattr(backend_class, "event_channels", ()):
                found.append((merchant_id, str(channel)))
        return found

    def _build_listener(self, merchant_id: str, channel: str) -> Listener | None:
        try:
            merchant = self.bridge.for_merchant(merchant_id)
        except Exception as exc:
            logger.error(
                "no listener: cannot build the backend (%s)",
                exc,
                extra={"merchant_id": merchant_id},
            )
            return None
        settings = self.settings.listener_settings
        if channel == settings.channel:
            if Capability.EVENTS not in merchant.backend.capabilities:
                return None
            return Listener(merchant, self.store, self._handler, settings)
        try:
            source, handler = merchant.backend.event_source(  # type: ignore[attr-defined]
                channel, self.store, self.bridge.plugin_manager
            )
        except Exception as exc:
            logger.error("no %s listener: %s", channel, exc, extra={"merchant_id": merchant_id})
            return None
        return Listener(source, self.store, handler, attrs.evolve(settings, channel=channel))

    def _listener_states(self) -> list[ListenerState]:
        now = time.monotonic()
        return [
            (
                li.merchant.merchant_id,
                li.last_poll_ok is not None,
                None if li.last_event_at is None else now - li.last_event_at,
            )
            for li in self.pool.held()
        ]

    # -- export -------------------------------------------------------------------------------

    def _export_loop(self) -> None:
        interval = self.settings.export_interval
        while not self._stop.is_set():
            try:
                work = self._with_work()
                if work:
                    self.job.run(work, stop=self._stop)
            except Exception:
                logger.exception("export run failed; trying again in %.1f s", interval)
            self._write_metrics()
            self._stop.wait(self._until_next_run(interval))

    def _with_work(self) -> list[str]:
        # Entries of merchants no longer in the config stay put (shown by `export list`).
        known = set(self.bridge.merchant_ids)
        found = [m for m in self.store.merchants_with_work(datetime.now(UTC)) if m in known]
        if not found:
            return found
        # Workers sharing a store start at different places in the list: in the same order,
        # each would first try (and fail) to take the merchants another worker is posting.
        start = self._offset % len(found)
        return found[start:] + found[:start]

    def _until_next_run(self, interval: float) -> float:
        try:
            due = self.store.next_due()
        except Exception:
            return interval
        if due is None:
            return interval
        return min(interval, max(0.05, (due - datetime.now(UTC)).total_seconds()))

    def _backend_name(self, merchant_id: str) -> str:
        config = self.bridge.config.merchants.get(merchant_id)
        return config.backend if config is not None else "unknown"

    # -- health and metrics -------------------------------------------------------------------

    def _healthz(self) -> tuple[int, str, bytes]:
        dead = [t.name for t in self._threads if not t.is_alive()]
        if dead and not self._stop.is_set():
            return 503, _TEXT, f"stopped: {', '.join(dead)}\n".encode()
        return 200, _TEXT, b"ok\n"

    def _readyz(self) -> tuple[int, str, bytes]:
        if self._stop.is_set():
            return 503, _TEXT, b"stopping\n"
        try:
            self.store.ping()
        except Exception as exc:
            return 503, _TEXT, f"store unreachable: {type(exc).__name__}\n".encode()
        down = [m for m, ok, _ in self._listener_states() if not ok]
        if down:
            shown = ", ".join(down[:10]) + (" ..." if len(down) > 10 else "")
            return 503, _TEXT, f"{len(down)} listener(s) not connected: {shown}\n".encode()
        return 200, _TEXT, b"ready\n"

    def _metrics(self) -> tuple[int, str, bytes]:
        return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics.text()

    def metrics_text(self) -> str:
        """The store's figures and this process's counters in Prometheus text (the file)."""
        now = datetime.now(UTC)
        return prometheus_text(self.store.stats(now), now, self.counters)

    def _write_metrics(self) -> None:
        if self.settings.metrics_file is None:
            return
        try:
            write_textfile(self.settings.metrics_file, self.metrics_text())
        except Exception:
            logger.exception("could not write the metrics file")
