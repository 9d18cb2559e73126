"""A worker process for the scale-out tests: ``omsbridge worker`` with a handler that records
every event batch it handles (one line per batch: pid and event ids, flushed and fsynced)."""

from __future__ import annotations

import signal
import sys

# A SIGTERM while still starting (nothing claimed yet) is a clean stop too; the worker installs
# its own handlers once it runs.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

import os  # noqa: E402
from pathlib import Path  # noqa: E402

from omsbridge.bridge import Bridge  # noqa: E402
from omsbridge.export import ExportSettings, RetryPolicy  # noqa: E402
from omsbridge.listen import ListenerSettings, PoolSettings  # noqa: E402
from omsbridge.logs import configure_logging  # noqa: E402
from omsbridge.worker import Worker, WorkerSettings  # noqa: E402


def main() -> None:
    """``worker_proc.py CONFIG LOG_DIR``."""
    config, log_dir = Path(sys.argv[1]), Path(sys.argv[2])
    configure_logging(30)  # warnings: the test reads them on failure
    log = open(log_dir / f"handled-{os.getpid()}.log", "a", encoding="utf-8")  # noqa: SIM115

    def record(merchant, events):
        ids = " ".join(e.event_id for e in events)
        log.write(f"{os.getpid()} {merchant.merchant_id} {ids}\n")
        log.flush()
        os.fsync(log.fileno())

    settings = WorkerSettings(
        export_interval=0.2,
        export_settings=ExportSettings(
            lease_seconds=2.0,
            concurrency=8,
            claim_size=5,
            policy=RetryPolicy(inline_wait_initial=0.01, backoff_initial=0.05, backoff_max=0.5),
        ),
        listener_settings=ListenerSettings(wait=0.5),
        pool=PoolSettings(threads=4, lease_seconds=2.0, idle_interval=1.0),
        grace_seconds=5,
    )
    with Bridge.from_config(config) as bridge:
        worker = Worker(bridge, settings, handler=record)
        worker.install_signal_handlers()
        worker.run()


if __name__ == "__main__":
    main()
