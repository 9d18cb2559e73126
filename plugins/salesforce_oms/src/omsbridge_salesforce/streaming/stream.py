"""One channel of a Bayeux session, read on the process's event loop into a queue.

The server decides how long a long poll lasts (110 s on Salesforce) but the SPI's ``events``
must return within its ``wait``; so a task on the shared :class:`~omsbridge_salesforce.
streaming.hub.Hub` loop keeps the connect loop going and ``take(wait)`` reads what it has
received. One loop thread holds the long polls of every merchant of the process (no thread per
merchant). The task re-handshakes as the server advises, retries network errors with backoff,
and hands any failure it cannot recover from to the next ``take``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from omsbridge_salesforce.streaming.bayeux import (
    BayeuxError,
    BayeuxTransportError,
    backoff_delays,
)
from omsbridge_salesforce.streaming.bayeux_async import AsyncBayeuxClient
from omsbridge_salesforce.streaming.hub import Hub, TellsReader, shared_hub

__all__ = ["EventStream"]

log = logging.getLogger(__name__)

Message = dict[str, Any]

_CLOSE_WAIT = 6.0  # seconds close() waits for the disconnect (its own timeout is 5 s)


class EventStream(TellsReader):
    """Messages of one channel of ``client``, received on ``hub``'s loop (the process's).

    ``network_retries`` consecutive network failures are retried (with backoff) before the
    failure is reported to the reader; the stream is then :attr:`dead` and must be reopened.
    Past ``max_queue`` unread messages the reading pauses (backpressure, bounded memory).
    """

    def __init__(
        self,
        client: AsyncBayeuxClient,
        channel: str,
        *,
        max_queue: int = 10_000,
        network_retries: int = 3,
        backoff_initial: float = 0.25,
        backoff_max: float = 10.0,
        hub: Hub | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self._hub = hub or shared_hub()
        self._cond = threading.Condition()
        self._queue: deque[Message] = deque()
        self._failure: BaseException | None = None
        self._max_queue = max_queue
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._network_retries = network_retries
        self._backoff = (backoff_initial, backoff_max)
        self.dead = False
        self.on_ready: Callable[[], None] | None = None
        """Called (from the loop's thread) after messages or a failure are queued: once per
        turn of the loop, right before it waits for I/O (:meth:`Hub.before_wait`)."""
        self._told = False  # a call of on_ready is queued on the hub (touched there only)
        self._waiting = 0  # readers blocked in take() (guarded by _cond)
        self._chain: asyncio.Future[list[Message] | BaseException | None] | None = None
        """What ends a chain of connects run in callbacks (see :meth:`_receive`)."""
        self.last_activity = time.monotonic()
        """When the server last answered (events or an empty long poll): the stall watchdog's
        clock."""

    def open(self) -> None:
        """Handshake and subscribe now (errors raise here), then read in the background."""
        self._hub.submit(self._open()).result()

    async def _open(self) -> None:
        if self.channel not in self.client.subscriptions:
            self.client.subscriptions.append(self.channel)
        await self.client.establish()
        if self._stopped:  # closed while the handshake was under way
            await self.client.aclose()
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        failures = 0
        delays = backoff_delays(*self._backoff)
        channel = self.channel
        while not self._stopped:
            try:
                messages = await self._receive()
            except asyncio.CancelledError:
                raise
            except BayeuxTransportError as exc:
                if self._stopped:
                    return
                failures += 1
                if failures > self._network_retries:
                    self._fail(exc)
                    return
                delay = next(delays)
                log.warning("streaming: %s; reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            except BaseException as exc:  # handed to the reader, whatever it is
                if not self._stopped:
                    # Events that came with the failed connect are read before the failure.
                    delivered = exc.delivered if isinstance(exc, BayeuxError) else []
                    mine = [m for m in delivered if m.get("channel") == channel]
                    if mine:
                        self._put(mine)
                    self._fail(exc)
                return
            if failures:
                failures = 0
                delays = backoff_delays(*self._backoff)
            self._received(messages)
            while len(self._queue) > self._max_queue and not self._stopped:
                await asyncio.sleep(0.05)  # backpressure: no long poll until read

    def _received(self, messages: list[Message]) -> None:
        """The answer of a successful connect: the server is alive; queue this channel's."""
        self.last_activity = time.monotonic()
        channel = self.channel
        mine = [m for m in messages if m.get("channel") == channel]
        if mine:
            self._put(mine)

    async def _receive(self) -> list[Message]:
        """The messages of the next connect that succeeds, as ``client.receive()`` returns
        them. In the steady state (an established session, a kept connection) connects are
        chained in the connection's callback (:meth:`_answered`), with no task woken per long
        poll; this returns when the chain stops (an error, advice to follow, backpressure,
        a connection to open)."""
        client = self.client
        chain = self._chain = asyncio.get_running_loop().create_future()
        try:
            if not client.connect_soon(self._answered):
                return await client.receive()
            try:
                outcome = await chain
            except asyncio.CancelledError:
                client.abandon()  # the long poll in flight is abandoned
                raise
        finally:
            self._chain = None
        if isinstance(outcome, list):
            return outcome
        if outcome is None:  # the kept connection had been closed: the usual way
            return await client.receive()
        if isinstance(outcome, BayeuxError):
            return await client.connect_failed(outcome)
        raise outcome

    def _answered(self, messages: list[Message] | None, error: BaseException | None) -> None:
        # In the connection's callback, on the loop: queue what came and start the next
        # connect at once while all goes well; else hand the outcome to the task.
        chain = self._chain
        if chain is None or chain.done():
            return
        outcome: list[Message] | BaseException | None = error
        if messages is not None:
            outcome = messages
            if not self._stopped:
                try:
                    self._received(messages)
                    outcome = []
                    if len(self._queue) <= self._max_queue and self.client.connect_soon(
                        self._answered
                    ):
                        return
                except BaseException as exc:  # a bug or a failing token: the task's to handle
                    outcome = exc
        chain.set_result(outcome)

    def _put(self, messages: list[Message]) -> None:
        with self._cond:
            self._queue.extend(messages)
            if self._waiting:
                self._cond.notify_all()
        self._ready()

    def _fail(self, error: BaseException) -> None:
        with self._cond:
            self._failure = error
            self._cond.notify_all()
        self._ready()

    def take(self, wait: float, limit: int = 500) -> list[Message]:
        """Up to ``limit`` messages, waiting up to ``wait`` seconds for the first.

        Raises what ended the reading once the messages before it are taken."""
        queue = self._queue
        with self._cond:
            if not queue and self._failure is None and wait > 0:
                self._waiting += 1
                try:
                    self._cond.wait_for(lambda: queue or self._failure is not None, wait)
                finally:
                    self._waiting -= 1
            if queue:
                if len(queue) <= limit:
                    items = list(queue)
                    queue.clear()
                else:
                    items = [queue.popleft() for _ in range(limit)]
                return items
            if self._failure is not None:
                error, self._failure = self._failure, None
                self.dead = True
                raise error
            return []

    def close(self) -> None:
        """Stop reading and end the session (a long poll in flight is abandoned)."""
        self._stopped = True
        self.dead = True
        future = self._hub.submit(self._close())
        try:
            on_loop = asyncio.get_running_loop() is self._hub.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            return  # called on the loop itself: the disconnect goes on without waiting
        try:
            future.result(_CLOSE_WAIT)
        except (concurrent.futures.TimeoutError, Exception) as exc:  # best effort
            log.debug("closing the stream: %r", exc)

    async def _close(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.aclose()
