"""One channel of a Bayeux session, read by a background thread into a queue.

The server decides how long a long poll lasts (110 s on Salesforce) but the SPI's ``events``
must return within its ``wait``; so a thread keeps the connect loop going and ``take(wait)``
reads what it has received. The thread re-handshakes as the server advises, retries network
errors with backoff, and hands any failure it cannot recover from to the next ``take``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from omsbridge_salesforce.streaming.bayeux import (
    BayeuxClient,
    BayeuxTransportError,
    backoff_delays,
)

__all__ = ["EventStream"]

log = logging.getLogger(__name__)

Message = dict[str, Any]


@attrs.frozen
class _Failure:
    """What ended the reading thread; raised by the next :meth:`EventStream.take`."""

    error: BaseException


class EventStream:
    """Messages of one channel of ``client``, received in the background.

    ``network_retries`` consecutive network failures are retried (with backoff) before the
    failure is reported to the reader; the stream is then :attr:`dead` and must be reopened.
    """

    def __init__(
        self,
        client: BayeuxClient,
        channel: str,
        *,
        max_queue: int = 10_000,
        network_retries: int = 3,
        backoff_initial: float = 0.25,
        backoff_max: float = 10.0,
    ) -> None:
        self.client = client
        self.channel = channel
        self._queue: queue.Queue[Message | _Failure] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending_failure: BaseException | None = None
        self._network_retries = network_retries
        self._backoff = (backoff_initial, backoff_max)
        self.dead = False
        self.on_ready: Callable[[], None] | None = None
        """Called (from the reading thread) after each message or failure is queued."""
        self.last_activity = time.monotonic()
        """When the server last answered (events or an empty long poll): the stall watchdog's
        clock."""

    def open(self) -> None:
        """Handshake and subscribe now (errors raise here), then read in the background."""
        if self.channel not in self.client.subscriptions:
            self.client.subscriptions.append(self.channel)
        self.client.establish()
        self._thread = threading.Thread(
            target=self._run, name=f"bayeux {self.channel}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        failures = 0
        delays = backoff_delays(*self._backoff)
        while not self._stop.is_set():
            try:
                messages = self.client.receive(self._stop)
            except BayeuxTransportError as exc:
                if self._stop.is_set():
                    return
                failures += 1
                if failures > self._network_retries:
                    self._put(_Failure(exc))
                    return
                delay = next(delays)
                log.warning("streaming: %s; reconnecting in %.1f s", exc, delay)
                self._stop.wait(delay)
                continue
            except BaseException as exc:  # handed to the reader, whatever it is
                if not self._stop.is_set():
                    self._put(_Failure(exc))
                return
            failures = 0
            self.last_activity = time.monotonic()
            delays = backoff_delays(*self._backoff)
            for message in messages:
                if message.get("channel") == self.channel:
                    self._put(message)

    def _put(self, item: Message | _Failure) -> None:
        # A full queue blocks the reader thread: backpressure rather than unbounded memory.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                if self.on_ready is not None:
                    self.on_ready()
                return
            except queue.Full:
                continue

    def take(self, wait: float, limit: int = 500) -> list[Message]:
        """Up to ``limit`` messages, waiting up to ``wait`` seconds for the first.

        Raises what ended the reading thread once the messages before it are taken."""
        if self._pending_failure is not None:
            error, self._pending_failure = self._pending_failure, None
            self.dead = True
            raise error
        items: list[Message] = []
        try:
            first = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
        except queue.Empty:
            return items
        pending: list[Message | _Failure] = [first]
        while len(pending) < limit:
            try:
                pending.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for item in pending:
            if isinstance(item, _Failure):
                self._pending_failure = item.error
                break
            items.append(item)
        if not items and self._pending_failure is not None:
            return self.take(0)
        return items

    def close(self) -> None:
        """Stop reading and end the session (a long poll in flight is abandoned)."""
        self._stop.set()
        self.dead = True
        self.client.close()
