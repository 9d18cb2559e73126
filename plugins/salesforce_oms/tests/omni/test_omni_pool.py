"""Listeners of several merchants on an EventDrivenPool (a ListenerPool without leases): polled when their feed says something
arrived, on a bounded pool of threads, over either transport."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from omni_helpers import FAST, Pos, WebShop, bridge_for, config_file, eventually

from omsbridge.listen import EventDrivenPool, Listener
from omsbridge_salesforce_sandbox import SandboxServer

MERCHANTS = ("DEMO", "EAST", "WEST")


@pytest.mark.parametrize("transport", ["pubsub", "cometd"])
def test_a_pool_serves_every_merchant_with_few_threads(
    tmp_path: Path, server: SandboxServer, shop: WebShop, transport: str
) -> None:
    extra = {"pubsub_endpoint": server.pubsub.address} if transport == "pubsub" else {}
    config = config_file(
        tmp_path / "omsbridge.toml",
        server.url,
        MERCHANTS,
        statuses_to_process=["Allocated"],
        event_transport=transport,
        **extra,
    )
    pos = Pos()
    with bridge_for(config, pos) as bridge:
        listeners = [
            Listener(bridge.for_merchant(m), bridge.store, settings=FAST) for m in MERCHANTS
        ]
        before = {t.ident for t in threading.enumerate()}
        pool = EventDrivenPool(listeners, workers=2, sweep=0.5)
        pool.start()
        try:
            # Every merchant subscribed (first sweep) before the order is placed.
            eventually(lambda: all(listener.checkpoint for listener in listeners))
            fo_id = shop.place()["fulfillment_order_id"]
            # The three merchants share the one sandbox org: each gets the order once.
            eventually(lambda: len(pos.received) >= len(MERCHANTS))
            # Threads this test started on the client side (the sandbox's request threads and
            # grpc's own poller are not the listeners').
            figures = pool.metrics()
            threads = [
                t.name
                for t in threading.enumerate()
                if t.ident not in before
                and "process_request" not in t.name
                and "_poll_wrapper" not in t.name
            ]
        finally:
            pool.stop()
    assert figures["listeners"] == 3 and figures["connected"] == 3 and figures["failing"] == 0
    assert figures["events"] >= 3 and figures["oldest_last_event_age"] is not None
    assert sorted(m for m, _ in pos.received) == sorted(MERCHANTS)
    assert {fo.fulfillment_order_id for _, fo in pos.received} == {fo_id}
    if transport == "pubsub":
        # Two pool workers, the pool's driver (timers, sweeps), the shared hub and its token fetchers (at most 2):
        # none per merchant.
        assert len(threads) <= 2 + 1 + 1 + 2, threads
        assert not any(name.startswith("listener ") for name in threads if name != "listener sweep")
