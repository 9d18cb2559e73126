"""A refund that fails at the gateway after ensure-refunds-async answered success is seen: the
ProcessExceptionEvent is followed (either transport), attached to the return's outbox entry
(its history, what ``export show`` prints), counted and handed to the alert hook."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sf_export_helpers import sf_config
from sf_return_helpers import return_of, sale

from omsbridge import MerchantContext, hookimpl
from omsbridge.listen import Listener, ListenerSettings
from omsbridge.plugins import load_entry_point_plugins, new_plugin_manager
from omsbridge.store.base import AttemptOutcome
from omsbridge.store.sqlite import SqliteStore
from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce.streaming.payment_failures import (
    PaymentFailureSource,
    RecordPaymentFailures,
)

FAST = ListenerSettings(
    channel="payment-failures", wait=0.2, handler_attempts=2, backoff_initial=0.05
)


class Alerts:
    """A plugin implementing the alert hook."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl
    def omsbridge_salesforce_payment_failed(
        self, merchant_id: str, failure: Any, transaction_id: str | None, entry_id: int | None
    ) -> None:
        self.calls.append(
            {"merchant": merchant_id, "txn": transaction_id, "entry": entry_id, "f": failure}
        )


@pytest.fixture(params=["pubsub", "cometd"])
def shop(request: pytest.FixtureRequest, sf_sandbox: Any) -> Iterator[SalesforceBackend]:
    extra = (
        {"event_transport": "pubsub", "pubsub_endpoint": sf_sandbox.pubsub.address}
        if request.param == "pubsub"
        else {"event_transport": "cometd"}
    )
    backend = SalesforceBackend(
        sf_config(sf_sandbox.url, **extra), MerchantContext("SHOP", currency="USD")
    )
    yield backend
    backend.close()


def test_a_refund_failed_at_the_gateway_shows_on_its_returns_outbox_entry(
    shop: SalesforceBackend, sf_sandbox: Any, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    pm = new_plugin_manager()
    load_entry_point_plugins(pm)
    alerts = Alerts()
    pm.register(alerts, name="alerts")
    handler = RecordPaymentFailures(store, pm)
    listener = Listener(PaymentFailureSource(shop), store, handler, FAST)  # type: ignore[arg-type]
    listener.poll()  # subscribed before the return
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    try:
        shop.post(sale("S-1"))
        entry = store.enqueue("SHOP", return_of("R-1", "S-1"))
        sf_sandbox.sandbox.add_fault(
            kind="gateway", path="*/async-actions/ensure-refunds-async", count=1
        )
        result = shop.post(return_of("R-1", "S-1"))  # answers success: the refund fails later
        assert result.created
        deadline = time.monotonic() + 10
        while not alerts.calls and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert len(alerts.calls) == 1
    call = alerts.calls[0]
    assert call["merchant"] == "SHOP" and call["txn"] == "R-1"
    assert call["entry"] == entry.entry_id
    history = store.attempts(entry.entry_id)
    failed = [a for a in history if a.outcome == AttemptOutcome.PAYMENT_FAILED]
    assert len(failed) == 1
    assert failed[0].error is not None and failed[0].error.code == "PROCESS_EXCEPTION"
    assert "gateway" in failed[0].error.message
    assert handler.count == 1 and shop.event_metrics()["payment_failures"] == 1
    store.close()
