"""The backend's Pub/Sub feed over TLS: a sandbox started with TLS serves gRPC on its
self-signed certificate, and a feed given that certificate (``pubsub_ca_file``) follows it;
without it (the system's roots) the subscription is refused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from omsbridge.errors import BackendError
from omsbridge_salesforce.auth import Token
from omsbridge_salesforce.streaming.pubsub import PubSubFeed
from omsbridge_salesforce_sandbox import SalesforceSandbox, SandboxServer


class _Auth:
    def __init__(self, server: SandboxServer) -> None:
        body = server.token()
        self._token = Token(
            access_token=body["access_token"],
            instance_url=server.url,
            obtained_at=time.monotonic(),
            org_id=server.sandbox.org_id,
        )

    def token(self) -> Token:
        return self._token

    def refresh(self, stale: Any = None) -> Token:
        return self._token


@pytest.fixture
def server() -> Any:
    running = SandboxServer(SalesforceSandbox(seed="demo"), tls=True, close_sandbox=True).start()
    yield running
    running.stop()


def _feed(server: SandboxServer, roots: bytes | None) -> PubSubFeed:
    return PubSubFeed(
        _Auth(server),  # type: ignore[arg-type]
        server.pubsub.address,
        lambda since: [],
        tls=True,
        root_certificates=roots,
        merchant_id="DEMO",
        connect_timeout=5.0,
        network_retries=0,
    )


def test_a_feed_trusting_the_sandbox_certificate_gets_events_over_tls(
    server: SandboxServer,
) -> None:
    assert server.pubsub.cert_file is not None
    feed = _feed(server, Path(server.pubsub.cert_file).read_bytes())
    try:
        start = feed.events(None, 0.0)
        fo_id = str(server.sandbox.demo["orders"][0]["fulfillment_order_id"])
        with server.client() as http:
            url = f"/services/data/v{server.api_version}/sobjects/FulfillmentOrder/{fo_id}"
            assert http.patch(url, json={"Status": "Pickpack"}).status_code == 204
        deadline = time.monotonic() + 10
        got: list[Any] = []
        checkpoint = start.checkpoint
        while not got and time.monotonic() < deadline:
            batch = feed.events(checkpoint, 1.0)
            checkpoint = batch.checkpoint
            got = [e for e in batch.events if e.fulfillment_order_id == fo_id]
        assert got and got[-1].new_status == "Pickpack"
    finally:
        feed.close()


def test_a_feed_with_the_system_roots_is_refused(server: SandboxServer) -> None:
    feed = _feed(server, None)
    try:
        with pytest.raises(BackendError):
            feed.events(None, 0.0)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                feed.events(None, 0.5)
    finally:
        feed.close()
