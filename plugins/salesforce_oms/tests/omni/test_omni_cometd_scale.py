"""Many merchants' CometD feeds in one process, against the sandbox over real sockets: their long
polls share one event loop thread (no thread per merchant), and each gets the events."""

from __future__ import annotations

import threading
import time
from typing import Any

from omni_helpers import WebShop, eventually

from omsbridge import EventBatch
from omsbridge_salesforce.auth import Token
from omsbridge_salesforce.streaming.listener import FulfillmentFeed
from omsbridge_salesforce_sandbox import SandboxServer

FEEDS = 200


class _Auth:
    """The part of SalesforceAuth a feed uses: one sandbox token for every merchant."""

    def __init__(self, server: SandboxServer) -> None:
        body = server.token()
        self._token = Token(
            access_token=body["access_token"],
            instance_url=server.url,
            obtained_at=time.monotonic(),
        )
        self.instance_url = server.url
        self.refreshes = 0

    def token(self) -> Token:
        return self._token

    def refresh(self, stale: Any = None) -> Token:
        self.refreshes += 1
        return self._token


def test_two_hundred_feeds_hold_their_long_polls_on_one_thread(
    server: SandboxServer, shop: WebShop
) -> None:
    # Long polls that last (the fixture's 0.3 s would make 200 feeds poll ~700 times a second).
    server.sandbox.options.long_poll_timeout = 10.0
    auth = _Auth(server)
    feeds = [
        FulfillmentFeed(auth, "62.0", lambda since: [], merchant_id=f"M{i}")  # type: ignore[arg-type]
        for i in range(FEEDS)
    ]
    before = {t.ident for t in threading.enumerate()}
    woken: set[int] = set()
    lock = threading.Lock()

    def wake(i: int) -> None:
        with lock:
            woken.add(i)

    try:
        checkpoints: list[str | None] = []
        for i, feed in enumerate(feeds):
            feed.on_ready = lambda i=i: wake(i)
            checkpoints.append(feed.events(None, wait=0).checkpoint)  # subscribes
        # Threads started since, on the client side (the sandbox serves each long poll on a
        # request thread of its own: those are the server's, not the feeds').
        threads = [
            t.name
            for t in threading.enumerate()
            if t.ident not in before and "process_request" not in t.name
        ]
        fo_id = shop.place()["fulfillment_order_id"]
        got: dict[int, list[str]] = {}

        def everyone_got_it() -> bool:
            for i, feed in enumerate(feeds):
                if i in got:
                    continue
                batch: EventBatch = feed.events(checkpoints[i], wait=0)
                checkpoints[i] = batch.checkpoint
                if batch.events:
                    got[i] = [e.fulfillment_order_id for e in batch.events]
            return len(got) == FEEDS

        eventually(everyone_got_it, timeout=60)
    finally:
        for feed in feeds:
            feed.close()
    # The shared loop thread and its token fetchers at most; not one per merchant.
    assert len(threads) <= 3, threads[:10]
    assert all(ids == [fo_id] for ids in got.values())
    assert woken == set(range(FEEDS))  # each feed woke its listener when the event came
    assert auth.refreshes == 0
