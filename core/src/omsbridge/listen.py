"""Event listeners: follow a merchant's fulfillment-event feed and hand each event on, durably.

One :class:`Listener` per merchant and channel reads ``merchant.events(checkpoint, wait=...)``,
drops events whose id it handled before (feeds deliver at least once), gives the others to a
handler and only then stores the new checkpoint, together with the handled event ids, in one
transaction. A restart resumes from the stored checkpoint: nothing is skipped, and what was
handled just before a crash is at most handed over once more (deliveries are at least once).

The default handler (:class:`DeliverFulfillmentOrders`) fetches the fulfillment orders the
events name, once per batch, and delivers each to the POS through
``omsbridge_fulfillment_order_received``: several events about one fulfillment order collapse
into one delivery of its current state.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from omsbridge import wire
from omsbridge.bridge import Merchant
from omsbridge.errors import AuthFailed, BackendError, RateLimited
from omsbridge.logs import MerchantLog, merchant_log
from omsbridge.model import FulfillmentEvent
from omsbridge.spi import Capability
from omsbridge.store import Store

__all__ = [
    "DeliverFulfillmentOrders",
    "EventHandler",
    "LeaseLost",
    "Listener",
    "EventDrivenPool",
    "ListenerPool",
    "ListenerSettings",
    "PoolSettings",
    "log_read_failure",
    "retry_delay",
]

logger = logging.getLogger(__name__)

EventHandler = Callable[[Merchant, Sequence[FulfillmentEvent]], None]
"""Handles a batch of new (deduplicated) events; raising means "not handled, try again"."""


class DeliverFulfillmentOrders:
    """The default handler: deliver the current state of each fulfillment order the events name."""

    def __call__(self, merchant: Merchant, events: Sequence[FulfillmentEvent]) -> None:
        """Fetch the waiting fulfillment orders once and deliver those the events name."""
        log = merchant_log(logger, merchant.merchant_id)
        if Capability.FULFILLMENT_ORDERS not in merchant.backend.capabilities:
            log.info("backend cannot list fulfillment orders; %d event(s) noted only", len(events))
            return
        wanted = list(dict.fromkeys(e.fulfillment_order_id for e in events))
        found = merchant.backend.fulfillment_orders_by_id(wanted)
        waiting = {fo.fulfillment_order_id: fo for fo in found}
        for fo_id in wanted:
            fulfillment_order = waiting.get(fo_id)
            if fulfillment_order is None:
                log.info("fulfillment order %s is no longer waiting on a store", fo_id)
                continue
            failures = merchant.deliver(fulfillment_order)
            log.info(
                "delivered fulfillment order %s (%s)%s",
                fo_id,
                fulfillment_order.status,
                f"; {len(failures)} observer(s) failed" if failures else "",
            )


@attrs.frozen
class ListenerSettings:
    """How a listener reads and retries."""

    channel: str = "fulfillment"
    """Names the feed in the store's checkpoints (one checkpoint per merchant and channel)."""
    wait: float = 5.0
    """Long-poll seconds per ``events()`` call; also bounds how long a shutdown waits."""
    handler_attempts: int = 5
    """Tries of a batch's handler before its events are kept as dead events and skipped."""
    backoff_initial: float = 1.0
    backoff_max: float = 60.0


class _Stopped(Exception):
    """The listener is shutting down in the middle of a batch."""


class LeaseLost(Exception):
    """Another worker holds the merchant's listener lease now: this one must not handle."""


def retry_delay(settings: ListenerSettings, exc: BaseException, failures: int) -> float:
    """How long a listener waits after a failed read (``failures`` in a row, this one counted)."""
    if isinstance(exc, RateLimited):
        return float(exc.retry_after) if exc.retry_after is not None else 60.0
    delay: float = settings.backoff_initial * 2 ** min(failures - 1, 30)
    return min(settings.backoff_max, delay)


def log_read_failure(log: MerchantLog, exc: BaseException, failures: int, delay: float) -> None:
    """Log a failed read: a refused login loudly once per streak, retryable errors as warnings."""
    if isinstance(exc, RateLimited):
        log.warning("event feed rate limited; waiting %.1f s", delay)
    elif isinstance(exc, AuthFailed):
        log.log(
            logging.ERROR if failures == 1 else logging.WARNING,
            "LOGIN REFUSED reading events (%s); no event is lost, login tried again in %.1f s",
            exc,
            delay,
        )
    else:
        retryable = isinstance(exc, BackendError) and exc.retryable
        log.log(
            logging.WARNING if retryable else logging.ERROR,
            "reading events failed (%s: %s); again in %.1f s",
            type(exc).__name__,
            exc,
            delay,
        )


class Listener:
    """Follows one merchant's event feed (see the module doc)."""

    def __init__(
        self,
        merchant: Merchant,
        store: Store,
        handler: EventHandler | None = None,
        settings: ListenerSettings | None = None,
    ) -> None:
        self.merchant = merchant
        self.store = store
        self.handler: EventHandler = handler or DeliverFulfillmentOrders()
        self.settings = settings or ListenerSettings()
        self.log = merchant_log(logger, merchant.merchant_id)
        self._stop = threading.Event()
        self.last_poll_ok: float | None = None
        """:func:`time.monotonic` of the last successful read (None: none yet or failing)."""
        self.last_event_at: float | None = None
        """:func:`time.monotonic` of the last read that brought events."""

    @property
    def checkpoint(self) -> str | None:
        """Where the feed resumes."""
        return self.store.checkpoint(self.merchant.merchant_id, self.settings.channel)

    def poll(
        self,
        stop: threading.Event | None = None,
        *,
        wait: float | None = None,
        still_mine: Callable[[], bool] | None = None,
    ) -> int:
        """Read one batch, handle what is new, store the checkpoint; returns events handled.

        ``wait``: long-poll seconds (default: the settings'). ``still_mine``: asked right before
        the handler runs (it renews the listener's lease); False means another worker took the
        merchant over, and nothing is handled here. Errors of ``events()`` propagate (the
        checkpoint is unchanged)."""
        stop = stop or self._stop
        merchant_id, channel = self.merchant.merchant_id, self.settings.channel
        checkpoint = self.store.checkpoint(merchant_id, channel)
        batch = self.merchant.events(checkpoint, wait=self.settings.wait if wait is None else wait)
        self.last_poll_ok = time.monotonic()
        if batch.events:
            self.last_event_at = time.monotonic()
        after = batch.checkpoint or (batch.events[-1].checkpoint if batch.events else None)
        if not batch.events:
            if after is not None and after != checkpoint:
                # Remember "now" on a first read, so a restart does not start from "now" again.
                self.store.save_checkpoint(merchant_id, channel, after)
            return 0
        seen = self.store.seen_events(merchant_id, channel, [e.event_id for e in batch.events])
        fresh: list[FulfillmentEvent] = []
        for event in batch.events:
            if event.event_id in seen:
                self.log.debug("dropping duplicate event %s", event.event_id)
                continue
            seen.add(event.event_id)
            fresh.append(event)
        if fresh:
            if still_mine is not None and not still_mine():
                raise LeaseLost(merchant_id)
            self._handle(fresh, stop)
        assert after is not None
        self.store.save_checkpoint(merchant_id, channel, after, [e.event_id for e in fresh])
        return len(fresh)

    def _handle(self, events: list[FulfillmentEvent], stop: threading.Event) -> None:
        settings = self.settings
        for attempt in range(1, settings.handler_attempts + 1):
            try:
                self.handler(self.merchant, events)
                return
            except AuthFailed:
                # A refused login is not the events' fault: none is buried, the checkpoint
                # stays, and they are read and handled again once a login works.
                raise
            except Exception as exc:
                if attempt == settings.handler_attempts:
                    for event in events:
                        self.store.bury_event(
                            self.merchant.merchant_id,
                            settings.channel,
                            event.event_id,
                            wire.dumps(event),
                            exc,
                        )
                    self.log.error(
                        "gave up on %d event(s) after %d attempts (%s: %s); kept as dead events",
                        len(events),
                        attempt,
                        type(exc).__name__,
                        exc,
                    )
                    return
                delay = min(settings.backoff_max, settings.backoff_initial * 2 ** (attempt - 1))
                self.log.warning(
                    "handling %d event(s) failed (%s: %s); again in %.1f s",
                    len(events),
                    type(exc).__name__,
                    exc,
                    delay,
                )
                if stop.wait(delay):
                    raise _Stopped from exc

    def run(self, stop: threading.Event | None = None) -> None:
        """Poll until ``stop`` is set (or :meth:`stop` is called), backing off on errors."""
        stop = stop or self._stop
        failures = 0
        self.log.info("listening from checkpoint %s", self.checkpoint or "now")
        while not stop.is_set() and not self._stop.is_set():
            try:
                self.poll(stop)
                failures = 0
            except _Stopped:
                break
            except Exception as exc:
                if not isinstance(exc, RateLimited):
                    failures += 1
                self.last_poll_ok = None
                delay = retry_delay(self.settings, exc, max(failures, 1))
                log_read_failure(self.log, exc, max(failures, 1), delay)
                stop.wait(delay)
        self.log.info("listener stopped at checkpoint %s", self.checkpoint or "-")

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current poll."""
        self._stop.set()


class EventDrivenPool:
    """Many merchants' listeners on a bounded pool of threads, driven by their feeds.

    A backend whose feed can say "something arrived" offers ``watch_events(callback) -> bool``
    (the Salesforce backend does: its subscriptions share one event loop). Such a listener
    costs no thread of its own: the callback queues one ``poll(wait=0)`` of it on the pool
    (``workers`` threads, which also bound the imports the events trigger), and a sweep every
    ``sweep`` seconds polls each listener once more (first subscription, stall watchdogs,
    errors to retry). A backend without ``watch_events`` gets a thread running
    :meth:`Listener.run`, as before. A failed poll is retried after the listener's backoff.
    """

    def __init__(
        self, listeners: Sequence[Listener], *, workers: int = 8, sweep: float = 30.0
    ) -> None:
        self.listeners = list(listeners)
        self.workers = workers
        self.sweep = sweep
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._queued: set[int] = set()  # queued or running
        self._again: set[int] = set()  # woken while running: poll once more
        self._failures: dict[int, int] = {}
        self._retry_at: dict[int, float] = {}
        self._threads: list[threading.Thread] = []
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.polls = 0
        """Polls run (for metrics and tests)."""

    def start(self) -> None:
        """Watch every feed that can be watched; run the others on their own threads."""
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self.workers, thread_name_prefix="listener"
        )
        for index, listener in enumerate(self.listeners):
            watch = getattr(listener.merchant.backend, "watch_events", None)
            if callable(watch) and watch(functools.partial(self._wake, index)):
                self._wake(index)
                continue
            thread = threading.Thread(
                target=listener.run,
                args=(self._stop,),
                name=f"listener {listener.merchant.merchant_id}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        sweeper = threading.Thread(target=self._sweep, name="listener sweep", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)

    def _wake(self, index: int) -> None:
        with self._lock:
            if self._stop.is_set() or self._executor is None:
                return
            if index in self._queued:
                # Queued or running: one poll of a listener at a time (two would read the same
                # checkpoint and hand the same events over twice); a running one goes again.
                self._again.add(index)
                return
            self._queued.add(index)
            executor = self._executor
        try:
            executor.submit(self._poll, index)
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                self._queued.discard(index)

    def _poll(self, index: int) -> None:
        listener = self.listeners[index]
        while True:
            with self._lock:
                self._again.discard(index)
            self._poll_once(index, listener)
            with self._lock:
                if index not in self._again or self._stop.is_set():
                    self._queued.discard(index)
                    self._again.discard(index)
                    return

    def _poll_once(self, index: int, listener: Listener) -> None:
        try:
            # Drain what is there: one call per batch, no waiting.
            while not self._stop.is_set() and listener.poll(self._stop, wait=0.0) > 0:
                self.polls += 1
            self.polls += 1
            self._failures.pop(index, None)
            self._retry_at.pop(index, None)
        except _Stopped:
            return
        except Exception as exc:
            failures = self._failures.get(index, 0) + 1
            self._failures[index] = failures
            settings = listener.settings
            delay = min(settings.backoff_max, settings.backoff_initial * 2 ** min(failures - 1, 30))
            self._retry_at[index] = time.monotonic() + delay
            level = (
                logging.WARNING
                if isinstance(exc, BackendError) and exc.retryable
                else logging.ERROR
            )
            listener.log.log(
                level,
                "reading events failed (%s: %s); again in %.1f s",
                type(exc).__name__,
                exc,
                delay,
            )

    def _sweep(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.05):
            now = time.monotonic()
            for index, due in list(self._retry_at.items()):
                if due <= now:
                    self._retry_at.pop(index, None)
                    self._wake(index)
            if now - last >= self.sweep:
                last = now
                for index in range(len(self.listeners)):
                    if index not in self._retry_at:
                        self._wake(index)

    def metrics(self) -> dict[str, Any]:
        """Listener figures: polls run, listeners failing now, and the sums over the feeds that
        report ``event_metrics()`` (connected, reconnects, stalls, events) with the oldest
        last-event age."""
        totals: dict[str, Any] = {
            "listeners": len(self.listeners),
            "polls": self.polls,
            "failing": len(self._failures),
            "connected": 0,
            "reconnects": 0,
            "stalls": 0,
            "events": 0,
            "oldest_last_event_age": None,
        }
        for listener in self.listeners:
            report = getattr(listener.merchant.backend, "event_metrics", None)
            figures = report() if callable(report) else None
            if not isinstance(figures, dict):
                continue
            totals["connected"] += 1 if figures.get("connected") else 0
            for key in ("reconnects", "stalls", "events"):
                totals[key] += int(figures.get(key) or 0)
            age = figures.get("last_event_age")
            oldest = totals["oldest_last_event_age"]
            if isinstance(age, int | float) and (oldest is None or age > oldest):
                totals["oldest_last_event_age"] = age
        return totals

    def stop(self) -> None:
        """Stop polling, wait for the polls in flight and the listener threads."""
        self._stop.set()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        for thread in self._threads:
            thread.join(timeout=10)


@attrs.frozen
class PoolSettings:
    """How a worker shares listeners with other workers and drives the ones it holds."""

    threads: int = 8
    """Reads at a time: a worker holds any number of merchants' listeners on these threads."""
    lease_seconds: float = 15.0
    """A listener lease's length; a dead worker's listeners move to another within it."""
    idle_interval: float = 1.0
    """Seconds between reads of a quiet feed when there are more listeners than threads (each
    read is then short: ``wait=0``); with fewer, every thread long-polls its own feed."""


class _Slot:
    """One held listener and when it may read next."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.next_at = 0.0
        self.failures = 0
        self.busy = False


class ListenerPool:
    """Every listener this worker holds, driven by a few threads (not one per merchant).

    Listeners are leased per merchant and channel through the store (``listen:<merchant>:
    <channel>``): exactly one worker reads a merchant's feed at a time; a worker that dies
    stops renewing, and another takes the merchant over once the lease ran out, from the
    stored checkpoint (seen event ids drop what was handled before). A backend that keeps its
    own stream (one event loop for many merchants) answers ``events(checkpoint, wait=0)`` from
    what it has buffered, which this pool reads like any other feed; if it has a
    ``stop_events()`` method, the pool calls it when this worker stops holding the merchant's
    listener (lease lost or given back to another worker), so its subscription can end.
    """

    def __init__(
        self,
        build: Callable[[str], Listener | None],
        merchant_ids: Sequence[str],
        store: Store,
        owner: str,
        settings: PoolSettings | None = None,
        channel: str = "fulfillment",
    ) -> None:
        self._build = build
        self.merchant_ids = list(merchant_ids)
        self.store = store
        self.owner = owner
        self.settings = settings or PoolSettings()
        self.channel = channel
        self.slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self._renewed = 0.0

    def lease_name(self, merchant_id: str) -> str:
        """The store lease of the merchant's listener."""
        return f"listen:{merchant_id}:{self.channel}"

    def held(self) -> list[Listener]:
        """The listeners this worker holds now."""
        with self._lock:
            return [slot.listener for slot in self.slots.values()]

    def sync_leases(self) -> None:
        """Renew the held leases, drop lost ones, take free ones (a dead worker's), and give
        back what is more than this worker's share, so listeners spread over live workers."""
        lease = self.settings.lease_seconds
        try:
            self.store.acquire_lease(f"worker:{self.owner}", self.owner, lease)
            workers = max(1, len(self.store.lease_owners("worker:")))
            share = -(-len(self.merchant_ids) // workers)
            taken = self.store.lease_owners("listen:")
            with self._lock:
                held = list(self.slots)
            free = [
                m
                for m in self.merchant_ids
                if m not in self.slots and self.lease_name(m) not in taken
            ]
            # Workers starting together should not all reach for the same free feeds first.
            random.shuffle(free)
            wanted = held + free[: max(0, share - len(held))]
            mine = self.store.acquire_leases(
                [self.lease_name(m) for m in wanted], self.owner, lease
            )
        except Exception:
            logger.exception("listener lease check failed; trying again in 1 s")
            # Not at every turn of the loop: a store that is down is asked once a second.
            self._renewed = time.monotonic() - self.settings.lease_seconds / 3 + 1.0
            return
        self._renewed = time.monotonic()
        for merchant_id in wanted:
            name = self.lease_name(merchant_id)
            with self._lock:
                slot = self.slots.get(merchant_id)
            if name in mine and slot is None:
                listener = self._build(merchant_id)
                if listener is None:
                    self.store.release_lease(name, self.owner)
                    mine.discard(name)
                    continue
                listener.log.info("listening from checkpoint %s", listener.checkpoint or "now")
                with self._lock:
                    self.slots[merchant_id] = _Slot(listener)
            elif name not in mine and slot is not None:
                slot.listener.log.warning("listener lease lost: another worker reads this feed")
                self._drop(merchant_id)
        self._give_back_excess(share)

    def _drop(self, merchant_id: str) -> None:
        """Stop driving a listener; a backend that streams may end its subscription."""
        with self._lock:
            slot = self.slots.pop(merchant_id, None)
        stop_events = getattr(slot.listener.merchant.backend, "stop_events", None) if slot else None
        if callable(stop_events):
            try:
                stop_events()
            except Exception:
                logger.warning("stop_events() of %s failed", merchant_id, exc_info=True)

    def _give_back_excess(self, share: int) -> None:
        with self._lock:
            excess = len(self.slots) - share
            idle = [m for m, slot in self.slots.items() if not slot.busy][: max(0, excess)]
        for merchant_id in idle:
            self._drop(merchant_id)
            # Its checkpoint is stored: the worker that takes it resumes from there.
            self.store.release_lease(self.lease_name(merchant_id), self.owner)

    def run(self, stop: threading.Event) -> None:
        """Hold and drive listeners until ``stop`` is set; then wait for the reads in flight
        and give the leases back (another worker takes over at once)."""
        from concurrent.futures import ThreadPoolExecutor

        settings = self.settings
        with ThreadPoolExecutor(settings.threads, thread_name_prefix="listen") as pool:
            while not stop.is_set():
                if time.monotonic() - self._renewed > settings.lease_seconds / 3:
                    self.sync_leases()
                now = time.monotonic()
                with self._lock:
                    slots = list(self.slots.values())
                    long_poll = len(slots) <= settings.threads
                    for slot in slots:
                        if not slot.busy and slot.next_at <= now:
                            slot.busy = True
                            pool.submit(self._read, slot, stop, long_poll)
                stop.wait(0.02)
        names = [self.lease_name(m) for m in self.slots] + [f"worker:{self.owner}"]
        for merchant_id in list(self.slots):
            self._drop(merchant_id)
        for name in names:
            try:
                self.store.release_lease(name, self.owner)
            except Exception:
                logger.warning("could not give the lease %s back; it runs out by itself", name)

    def _read(self, slot: _Slot, stop: threading.Event, long_poll: bool) -> None:
        listener = slot.listener
        name = self.lease_name(listener.merchant.merchant_id)
        wait = listener.settings.wait if long_poll else 0.0
        try:
            handled = listener.poll(
                stop,
                wait=wait,
                # Dropped meanwhile (lease lost or given back): never take the lease again here.
                still_mine=lambda: (
                    self.slots.get(listener.merchant.merchant_id) is slot
                    and self.store.acquire_lease(name, self.owner, self.settings.lease_seconds)
                ),
            )
            slot.failures = 0
            quiet = handled == 0 and not long_poll
            slot.next_at = time.monotonic() + (self.settings.idle_interval if quiet else 0.0)
        except _Stopped:
            pass
        except LeaseLost:
            listener.log.warning("listener lease lost before handling; another worker has it")
            self._drop(listener.merchant.merchant_id)
        except Exception as exc:
            if not isinstance(exc, RateLimited):
                slot.failures += 1
            listener.last_poll_ok = None
            delay = retry_delay(listener.settings, exc, max(slot.failures, 1))
            log_read_failure(listener.log, exc, max(slot.failures, 1), delay)
            slot.next_at = time.monotonic() + delay
        finally:
            slot.busy = False
