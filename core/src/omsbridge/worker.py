"""The worker: one process running the export job on a schedule and the event listeners.

It stops cleanly on SIGTERM or SIGINT: the export job finishes the post in flight and gives
back what it had claimed, listeners finish their poll; the process exits within about the
listeners' long-poll time. After a SIGKILL nothing is lost either: claimed entries come back
when their lease runs out, listeners resume from the stored checkpoint.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import attrs

from omsbridge.bridge import Bridge
from omsbridge.export import ExportJob, ExportSettings
from omsbridge.export.metrics import ProcessCounters, prometheus_text, serve_metrics, write_textfile
from omsbridge.listen import EventHandler, Listener, ListenerSettings
from omsbridge.spi import Capability
from omsbridge.store import Store

__all__ = ["Worker", "WorkerSettings"]

logger = logging.getLogger(__name__)


@attrs.frozen
class WorkerSettings:
    """What the worker runs and how often."""

    export: bool = True
    listen: bool = True
    export_interval: float = 5.0
    """Longest pause between export runs (a run starts sooner when an entry falls due)."""
    export_settings: ExportSettings = attrs.field(factory=ExportSettings)
    listener_settings: ListenerSettings = attrs.field(factory=ListenerSettings)
    metrics_file: Path | None = None
    metrics_port: int | None = None


class Worker:
    """Runs the export job and one listener per merchant whose backend has events."""

    def __init__(
        self,
        bridge: Bridge,
        settings: WorkerSettings | None = None,
        *,
        store: Store | None = None,
        handler: EventHandler | None = None,
        owner: str | None = None,
    ) -> None:
        self.bridge = bridge
        self.settings = settings or WorkerSettings()
        self.store = store if store is not None else bridge.store
        self.counters = ProcessCounters()
        self.job = ExportJob(
            bridge,
            self.store,
            self.settings.export_settings,
            owner=owner,
            on_outcome=self.counters,
        )
        self._handler = handler
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.listeners: list[Listener] = []

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
        """Start everything and block until :meth:`stop`; then wait for the parts to end."""
        metrics_server = None
        if self.settings.metrics_port is not None:
            metrics_server = serve_metrics(self.settings.metrics_port, self.metrics_text)
            logger.info("metrics on http://127.0.0.1:%d/metrics", self.settings.metrics_port)
        if self.settings.listen:
            self._start_listeners()
        if self.settings.export:
            self._start(self._export_loop, "export")
        logger.info(
            "worker %s running: export %s, %d listener(s)",
            self.job.owner,
            "on" if self.settings.export else "off",
            len(self.listeners),
        )
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join()
            if metrics_server is not None:
                metrics_server.shutdown()
            self._write_metrics()
            logger.info("worker stopped")

    def _start(self, target: object, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _start_listeners(self) -> None:
        for merchant_id in self.bridge.merchant_ids:
            try:
                merchant = self.bridge.for_merchant(merchant_id)
            except Exception as exc:
                logger.error(
                    "no listener: cannot build the backend (%s)",
                    exc,
                    extra={"merchant_id": merchant_id},
                )
                continue
            if Capability.EVENTS not in merchant.backend.capabilities:
                continue
            listener = Listener(
                merchant, self.store, self._handler, self.settings.listener_settings
            )
            self.listeners.append(listener)
            self._start(lambda li=listener: li.run(self._stop), f"listen-{merchant_id}")

    def _export_loop(self) -> None:
        interval = self.settings.export_interval
        while not self._stop.is_set():
            try:
                if self._with_work():
                    self.job.run(self._with_work(), stop=self._stop)
            except Exception:
                logger.exception("export run failed; trying again in %.1f s", interval)
            self._write_metrics()
            self._stop.wait(self._until_next_run(interval))

    def _with_work(self) -> list[str]:
        # Entries of merchants no longer in the config stay put (shown by `export list`).
        known = set(self.bridge.merchant_ids)
        return [m for m in self.store.merchants_with_work(datetime.now(UTC)) if m in known]

    def _until_next_run(self, interval: float) -> float:
        now = datetime.now(UTC)
        soonest = interval
        for merchant_id in self._with_work():
            due = self.store.next_due(merchant_id)
            if due is not None:
                soonest = min(soonest, max(0.05, (due - now).total_seconds()))
        return soonest

    def metrics_text(self) -> str:
        """The current metrics in Prometheus text format."""
        now = datetime.now(UTC)
        return prometheus_text(self.store.stats(now), now, self.counters)

    def _write_metrics(self) -> None:
        if self.settings.metrics_file is None:
            return
        try:
            write_textfile(self.settings.metrics_file, self.metrics_text())
        except Exception:
            logger.exception("could not write the metrics file")
