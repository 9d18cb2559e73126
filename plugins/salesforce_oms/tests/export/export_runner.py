"""The export job as a process of its own, with quick retries: ``python export_runner.py
CONFIG MAX_SECONDS`` drains the outbox of CONFIG (what ``omsbridge export run --drain`` does,
but with backoffs of tenths of a second instead of seconds, so a kill test stays short)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from omsbridge import Bridge
from omsbridge.export import ExportJob, ExportSettings, RetryPolicy

QUICK = RetryPolicy(
    inline_attempts=3,
    inline_wait_initial=0.01,
    inline_wait_max=0.05,
    backoff_initial=0.05,
    backoff_max=0.3,
    max_attempts=60,
)


def main(config: str, max_seconds: str) -> int:
    """Drain the outbox; 0 when nothing is left pending."""
    with Bridge.from_config(Path(config)) as bridge:
        settings = ExportSettings(claim_size=10, lease_seconds=1.0, policy=QUICK)
        job = ExportJob(bridge, settings=settings)
        job.run(drain=True, deadline=time.monotonic() + float(max_seconds))
        return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
