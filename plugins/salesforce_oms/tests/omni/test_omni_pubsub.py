"""The FOStatusChangedEvent feed over Pub/Sub (gRPC), against the sandbox's Pub/Sub endpoint:
the contract's fulfillment-event scenario, listener restarts, a replay id past retention, an
expiring token, a server restart, keepalives and the stall watchdog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from omni_helpers import Pos, WebShop, bridge_for, config_file, eventually, listening

from omsbridge import Bridge
from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce.streaming import CATCH_UP
from omsbridge_salesforce.streaming.pubsub import PUBSUB_PREFIX, PubSubFeed
from omsbridge_salesforce_sandbox import SandboxServer


@pytest.fixture
def config(tmp_path: Path, server: SandboxServer) -> Path:
    """The merchant DEMO on the sandbox, events over its Pub/Sub endpoint."""
    return config_file(
        tmp_path / "omsbridge.toml",
        server.url,
        statuses_to_process=["Allocated"],
        delivery_methods={"ONLINE-SHIP_FROM_STORE": "Standard Shipping"},
        event_transport="pubsub",
        pubsub_endpoint=server.pubsub.address,
    )


@pytest.fixture
def backend(bridge: Bridge) -> Iterator[SalesforceBackend]:
    found = bridge.for_merchant("DEMO").backend
    assert isinstance(found, SalesforceBackend)
    assert isinstance(found.feed, PubSubFeed)
    yield found


def test_the_contract_event_scenario_over_pubsub(backend: SalesforceBackend, shop: WebShop) -> None:
    # What contract_tests' test_fulfillment_events checks, on this transport.
    feed = backend.feed
    assert isinstance(feed, PubSubFeed)
    feed._statuses = frozenset()  # every status, as the contract's backend settings have
    start = backend.events(None)
    assert start.checkpoint is not None
    fo_id = shop.place()["fulfillment_order_id"]
    batch = backend.events(start.checkpoint, wait=3.0)
    mine = [e for e in batch.events if e.fulfillment_order_id == fo_id]
    assert mine, f"no event for {fo_id}"
    assert batch.checkpoint == batch.events[-1].checkpoint
    assert batch.checkpoint.startswith(PUBSUB_PREFIX)
    seen = {e.event_id for e in batch.events}
    shop.set_status(fo_id, "Pickpack")
    later = backend.events(batch.checkpoint, wait=3.0)
    assert not seen & {e.event_id for e in later.events}
    picked = [e for e in later.events if e.fulfillment_order_id == fo_id]
    assert picked and picked[-1].new_status == "Pickpack" != mine[-1].new_status
    assert feed.metrics.connected and feed.metrics.events >= 2


def test_restart_in_the_middle_misses_nothing_and_handles_nothing_twice(
    config: Path, shop: WebShop
) -> None:
    first, second = Pos(), Pos()
    with bridge_for(config, first) as bridge, listening(bridge):
        before = [shop.place()["fulfillment_order_id"] for _ in range(3)]
        first.wait_for(3)
    during = [shop.place(store="store-002")["fulfillment_order_id"] for _ in range(3)]
    with bridge_for(config, second) as bridge, listening(bridge):
        after = [shop.place()["fulfillment_order_id"] for _ in range(2)]
        second.wait_for(5)
        checkpoint = bridge.store.checkpoint("DEMO", "fulfillment")
    assert first.ids() == before
    assert second.ids() == during + after  # resumed from the stored replay id
    assert checkpoint is not None and checkpoint.startswith(PUBSUB_PREFIX)


def test_a_replay_id_past_retention_catches_up_by_query(
    config: Path, shop: WebShop, server: SandboxServer
) -> None:
    first, second = Pos(), Pos()
    with bridge_for(config, first) as bridge, listening(bridge):
        shop.place()
        first.wait_for(1)
    # Down for more than 72 hours: what happened meanwhile is no longer retained.
    missed = shop.place(store="store-002")["fulfillment_order_id"]
    server.sandbox.clock.advance(73 * 3600)
    with bridge_for(config, second) as bridge, listening(bridge) as listener:
        eventually(lambda: missed in second.ids())
        feed = bridge.for_merchant("DEMO").backend.feed  # type: ignore[attr-defined]
        assert feed.catch_ups == 1
        assert (listener.checkpoint or "").startswith(CATCH_UP + "@")
        shop.close()
        web = WebShop(server)  # the shop's token died with the clock too
        live = web.place()["fulfillment_order_id"]
        eventually(lambda: live in second.ids())
        web.close()


def test_an_expired_token_is_renewed_and_the_stream_resumes(
    backend: SalesforceBackend, shop: WebShop, server: SandboxServer
) -> None:
    feed = backend.feed
    assert isinstance(feed, PubSubFeed)
    start = backend.events(None)
    tokens = backend.client.auth.token_requests
    server.sandbox.clock.advance(7201)  # the stream's token dies: UNAUTHENTICATED
    eventually(lambda: backend.client.auth.token_requests > tokens)
    shop.close()
    web = WebShop(server)  # the shop's token died too
    fo_id = web.place()["fulfillment_order_id"]
    seen: list[str] = []

    def arrived() -> bool:
        batch = backend.events(feed._handed, wait=0.5)
        seen.extend(e.fulfillment_order_id for e in batch.events)
        return fo_id in seen

    assert start.checkpoint is not None
    eventually(arrived)
    web.close()


def test_server_restart_reconnects_from_the_last_replay_id(
    bridge: Bridge, shop: WebShop, pos: Pos, server: SandboxServer
) -> None:
    with listening(bridge):
        shop.place()
        pos.wait_for(1)
        feed = bridge.for_merchant("DEMO").backend.feed  # type: ignore[attr-defined]
        server.sandbox.restart()  # open streams end with UNAVAILABLE
        shop.place(store="store-002")
        pos.wait_for(2)
        assert feed.metrics.reconnects >= 1
    assert len(pos.ids()) == len(set(pos.ids())) == 2


def test_keepalive_moves_a_quiet_checkpoint(
    backend: SalesforceBackend, server: SandboxServer
) -> None:
    server.sandbox.options.pubsub_keepalive = 0.3
    start = backend.events(None)
    # Another topic's event moves the bus; only a keepalive can tell this subscriber.
    server.sandbox.events.publish("/event/OrderSummaryCreatedEvent", {"EventUuid": "x"})
    tip = server.sandbox.events.tip.to_bytes(8, "big").hex()
    checkpoint = start.checkpoint

    def moved() -> bool:
        nonlocal checkpoint
        checkpoint = backend.events(checkpoint, wait=0.5).checkpoint
        return (checkpoint or "").startswith(PUBSUB_PREFIX + tip)

    eventually(moved)
    feed = backend.feed
    assert isinstance(feed, PubSubFeed)
    assert feed.metrics.keepalives >= 1


def test_the_stall_watchdog_reconnects_a_silent_stream(
    backend: SalesforceBackend, shop: WebShop, server: SandboxServer
) -> None:
    feed = backend.feed
    assert isinstance(feed, PubSubFeed)
    feed.stall_timeout = 0.5  # the sandbox sends keepalives only every 270 s
    start = backend.events(None)
    eventually(lambda: feed.metrics.stalls >= 1 and feed.metrics.reconnects >= 1)
    fo_id = shop.place()["fulfillment_order_id"]
    seen: list[str] = []
    checkpoint = start.checkpoint

    def arrived() -> bool:
        nonlocal checkpoint
        batch = backend.events(checkpoint, wait=0.3)
        checkpoint = batch.checkpoint
        seen.extend(e.fulfillment_order_id for e in batch.events)
        return fo_id in seen

    eventually(arrived)
