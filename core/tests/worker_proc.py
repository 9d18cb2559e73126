"""A worker process for the scale-out tests: ``omsbridge worker`` with a handler that records
every event it handles.

Default: a :class:`~omsbridge.listen.RecordingHandler` whose effect is a row per event in the
store's ``handled_events`` table (made by the test, no unique key: a second handling would be
a second row), written in the transaction that marks the event seen: exactly once.
``SCALE_OUT_HANDLER=plain``: the same row written by a plain handler in its own transaction
before the listener commits (at least once: what the listener did for every handler before)."""

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
from omsbridge.listen import ListenerSettings, PoolSettings, RecordingHandler  # noqa: E402
from omsbridge.logs import configure_logging  # noqa: E402
from omsbridge.worker import Worker, WorkerSettings  # noqa: E402


def main() -> None:
    """``worker_proc.py CONFIG LOG_DIR``."""
    config, log_dir = Path(sys.argv[1]), Path(sys.argv[2])
    configure_logging(30)  # warnings: the test reads them on failure
    del log_dir  # the handled events are rows in the store
    insert = "INSERT INTO handled_events (pid, merchant_id, event_id) VALUES (%s, %s, %s)"

    class Record(RecordingHandler):
        def record(self, tx, merchant, events):
            for event in events:
                tx.execute(insert, (os.getpid(), merchant.merchant_id, event.event_id))

    def plain(merchant, events):
        import psycopg

        with psycopg.connect(os.environ["SCALE_OUT_URL"], autocommit=True) as conn:
            for event in events:
                conn.execute(insert, (os.getpid(), merchant.merchant_id, event.event_id))

    record = plain if os.environ.get("SCALE_OUT_HANDLER") == "plain" else Record()

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
