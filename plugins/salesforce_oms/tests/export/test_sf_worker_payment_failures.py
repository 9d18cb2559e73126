"""Under ``omsbridge worker`` (the command, in its own process), a refund that fails at the
gateway after ensure-refunds-async answered success shows on its return's outbox entry: the
worker holds the merchant's ``payment-failures`` listener (leased like the fulfillment feed)
and records the ProcessExceptionEvent as a PAYMENT_FAILED attempt (``export show``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sf_export_helpers import write_config
from sf_return_helpers import return_of, sale

from omsbridge.store.base import AttemptOutcome, EntryState
from omsbridge.store.sqlite import SqliteStore


def _wait(what: str, check: Any, seconds: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        assert proc.poll() is None, f"worker ended: {log.read_text()[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {seconds} s; worker log:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("transport", ["pubsub", "cometd"])
def test_worker_shows_a_refund_failed_at_the_gateway_on_its_returns_entry(
    sf_sandbox: Any, tmp_path: Path, transport: str
) -> None:
    config = write_config(tmp_path / "omsbridge.toml", sf_sandbox.url, ["SHOP"])
    extra = (
        f'event_transport = "pubsub"\npubsub_endpoint = "{sf_sandbox.pubsub.address}"\n'
        if transport == "pubsub"
        else 'event_transport = "cometd"\n'
    )
    config.write_text(config.read_text() + extra)
    log = tmp_path / "worker.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omsbridge",
            "worker",
            "--config",
            str(config),
            "--interval",
            "0.2",
            "--event-wait",
            "0.5",
            "--listener-lease",
            "3",
            "--grace",
            "5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115
        env=dict(os.environ),
    )
    store = SqliteStore(tmp_path / "outbox.db")
    try:
        # Both of the merchant's listeners subscribed ("now" stored) before the sale.
        _wait(
            "listeners subscribed",
            lambda: (
                store.checkpoint("SHOP", "payment-failures")
                and store.checkpoint("SHOP", "fulfillment")
            ),
            60,
            proc,
            log,
        )
        store.enqueue("SHOP", sale("S-1"))
        _wait(
            "sale exported",
            lambda: (e := store.find("SHOP", "S-1")) and e.state == EntryState.DONE,
            60,
            proc,
            log,
        )
        sf_sandbox.sandbox.add_fault(
            kind="gateway", path="*/async-actions/ensure-refunds-async", count=1
        )
        entry = store.enqueue("SHOP", return_of("R-1", "S-1"))

        def payment_failed() -> list[Any]:
            return [
                a
                for a in store.attempts(entry.entry_id)
                if a.outcome == AttemptOutcome.PAYMENT_FAILED
            ]

        failed = _wait("payment failure recorded", payment_failed, 60, proc, log)
        assert store.get(entry.entry_id).state == EntryState.DONE  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert len(failed) == 1
    assert failed[0].error is not None and failed[0].error.code == "PROCESS_EXCEPTION"
    assert "gateway" in failed[0].error.message
    assert "PAYMENT FAILED at the gateway" in log.read_text()
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "omsbridge",
            "export",
            "show",
            "--config",
            str(config),
            str(entry.entry_id),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert "PROCESS_EXCEPTION" in shown.stdout, shown.stdout + shown.stderr
    store.close()
