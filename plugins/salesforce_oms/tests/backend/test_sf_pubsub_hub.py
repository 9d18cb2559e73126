"""The Pub/Sub hub's hand-offs: what a feed queues with ``Hub.before_wait`` runs on the hub's
thread once the loop is about to wait for I/O, and a feed tells its reader once per turn of the
loop however many responses arrived in it."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any

import pytest

from omsbridge_salesforce.streaming.hub import Hub
from omsbridge_salesforce.streaming.pubsub import PubSubFeed, _Item


class _Auth:
    instance_url = "https://example.invalid"

    def token(self) -> Any:
        raise AssertionError("no subscription in these tests")


def test_before_wait_runs_queued_calls_on_the_hub_thread_when_the_loop_waits() -> None:
    hub = Hub()
    ran: list[tuple[str, str]] = []
    done = threading.Event()

    async def queue_two() -> None:
        hub.before_wait(lambda: ran.append(("first", threading.current_thread().name)))
        hub.before_wait(lambda: ran.append(("second", threading.current_thread().name)))
        # Still this turn of the loop: nothing ran yet.
        assert ran == []
        hub.before_wait(done.set)

    hub.submit(queue_two()).result(5)
    assert done.wait(5)
    assert ran == [("first", "streams-hub"), ("second", "streams-hub")]


def test_a_failing_hand_off_is_logged_and_the_next_still_runs(caplog: Any) -> None:
    hub = Hub()
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    async def queue() -> None:
        hub.before_wait(boom)
        hub.before_wait(done.set)

    hub.submit(queue()).result(5)
    assert done.wait(5)
    assert "a stream's hand-off failed" in caplog.text


def test_a_feed_tells_its_reader_once_per_turn_of_the_loop() -> None:
    hub = Hub()
    feed = PubSubFeed(_Auth(), "localhost:1", lambda since: [], tls=False, hub=hub)  # type: ignore[arg-type]
    told: list[int] = []
    turns = threading.Event()
    feed.on_ready = lambda: told.append(len(feed._queue))

    async def three_responses_then_one() -> None:
        for n in range(3):
            feed._put([_Item(bytes([n]), {"EventUuid": str(n)})])
        await asyncio.sleep(0.05)  # the loop waits: the reader is told (once, of all three)
        feed._put([_Item(b"\x09", {"EventUuid": "9"})])
        hub.before_wait(turns.set)

    hub.submit(three_responses_then_one()).result(5)
    assert turns.wait(5)
    assert told == [3, 4]


@pytest.mark.skipif(sys.platform != "linux", reason="SCHED_BATCH is Linux's")
def test_the_hub_loop_runs_under_sched_batch() -> None:
    # Pool threads and gRPC's poller wake it: it must not preempt them (omsbridge.threads).
    hub = Hub()

    async def policy() -> int:
        return os.sched_getscheduler(0)

    assert hub.submit(policy()).result(5) == os.SCHED_BATCH
