"""One asyncio event loop, on one thread, that carries every Pub/Sub subscription of the process
(and every CometD long poll: :mod:`.stream`).

A blocking reader per merchant does not scale to thousands of merchants; gRPC's asyncio API
does. :func:`shared_hub` starts the loop on first use; feeds run their subscriptions on it with
:meth:`Hub.submit` and share one gRPC channel (one HTTP/2 connection) per endpoint.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import selectors
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import grpc

from omsbridge.threads import batch_scheduled

__all__ = ["Hub", "TellsReader", "shared_hub"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

_KEEPALIVE = [
    # HTTP/2 pings keep idle connections open through proxies and notice dead peers.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


class _HandOffSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The loop's selector, running the hand-offs queued by :meth:`Hub.before_wait` right
    before the loop blocks for I/O."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[Callable[[], None]] = []

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        if self.queued:
            calls, self.queued = self.queued, []
            for call in calls:
                try:
                    call()
                except Exception:
                    logger.exception("a stream's hand-off failed")
        return super().select(timeout)  # type: ignore[no-any-return]


class Hub:
    """An event loop thread and the gRPC channels opened on it."""

    def __init__(self) -> None:
        self._selector = _HandOffSelector()
        self.loop = asyncio.SelectorEventLoop(self._selector)
        # Token requests are blocking HTTP: a small pool of their own, whatever the merchants.
        self.loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="streams-token")
        )
        self._channels: dict[tuple[str, bool, bytes | None], grpc.aio.Channel] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="streams-hub", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        # Woken by gRPC's poller and by pool threads holding the GIL: see omsbridge.threads.
        with batch_scheduled():
            self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the hub's loop (from any thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def before_wait(self, call: Callable[[], None]) -> None:
        """Run ``call`` (queued from the hub's thread only) when the loop is next about to wait
        for I/O: a thread it wakes gets the GIL microseconds later (the loop is leaving it;
        the woken thread does not preempt it, see :mod:`omsbridge.threads`), and the events of
        one turn of the loop wake it once."""
        self._selector.queued.append(call)

    def channel(
        self, address: str, tls: bool, root_certificates: bytes | None = None
    ) -> grpc.aio.Channel:
        """The shared channel to ``address`` (call on the hub's loop); over TLS trusting
        ``root_certificates`` (PEM) if given, else the system's roots."""
        key = (address, tls, root_certificates)
        with self._lock:
            channel = self._channels.get(key)
            if channel is None:
                channel = (
                    grpc.aio.secure_channel(
                        address,
                        grpc.ssl_channel_credentials(root_certificates=root_certificates),
                        _KEEPALIVE,
                    )
                    if tls
                    else grpc.aio.insecure_channel(address, _KEEPALIVE)
                )
                self._channels[key] = channel
            return channel


class TellsReader:
    """Mixin for a feed filled on the hub's loop and read from a pool thread: ``on_ready`` is
    called once per turn of the loop, when the loop is about to wait (:meth:`Hub.before_wait`),
    however many messages came, so a thread it wakes finds the GIL free."""

    _hub: Hub
    _told: bool  # a call of on_ready is queued on the hub (touched there only)
    on_ready: Callable[[], None] | None

    def _ready(self) -> None:
        if self.on_ready is not None and not self._told:
            self._told = True
            self._hub.before_wait(self._tell)

    def _tell(self) -> None:
        self._told = False
        on_ready = self.on_ready
        if on_ready is not None:
            on_ready()


_HUB: Hub | None = None
_HUB_LOCK = threading.Lock()


def shared_hub() -> Hub:
    """The process's hub (started on first use)."""
    global _HUB
    with _HUB_LOCK:
        if _HUB is None:
            _HUB = Hub()
        return _HUB
