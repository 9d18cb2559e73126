"""Event listeners: follow a merchant's event feeds and hand each event on, durably.

One :class:`Listener` per merchant and channel reads ``source.events(checkpoint, wait=...)``
(the merchant's fulfillment feed, or another channel's source), drops events whose id was
handled before (feeds deliver at least once) and hands the others to a handler. What
"handled" guarantees depends on the handler:

- a :class:`RecordingHandler` is **exactly once**: its ``record`` runs inside the store
  transaction that marks the events seen and stores the new checkpoint
  (:meth:`Store.commit_events`), so the effect it writes there exists once per event id,
  whoever crashes when; the store, not the listener, decides which events are new (two
  workers racing on one batch: one records it, the other finds it seen). Its ``prepare``
  (reads, e.g. fetching the fulfillment orders) runs before the transaction and may repeat.
- a plain :data:`EventHandler` (a callable with effects outside the store, such as the hook
  calls of :class:`DeliverFulfillmentOrders`) runs first and the commit follows: a crash
  between the two hands that batch over once more (**at least once**).

Commits are fenced on the listener's lease when a :class:`ListenerPool` drives it: a worker
that lost the merchant's lease (it stalled past it, another took over) commits nothing.

:class:`ListenerPool` is the one machinery that drives listeners: any number of them on a
bounded pool of threads (no thread per merchant), leased per merchant and channel when many
workers share a store, woken by feeds that can say "something arrived" and committing the
batches of many merchants in one store transaction when they finish together.
"""

from __future__ import annotations

import abc
import functools
import heapq
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from omsbridge import wire
from omsbridge.bridge import Merchant
from omsbridge.errors import AuthFailed, BackendError, RateLimited
from omsbridge.logs import MerchantLog, merchant_log
from omsbridge.model import FulfillmentEvent
from omsbridge.spi import Capability
from omsbridge.store import Store
from omsbridge.store.base import EventCommit, EventEffect, EventTx
from omsbridge.threads import batch_scheduled

__all__ = [
    "DeliverFulfillmentOrders",
    "EventDrivenPool",
    "EventHandler",
    "LeaseLost",
    "Listener",
    "ListenerPool",
    "ListenerSettings",
    "PoolSettings",
    "RecordingHandler",
    "log_read_failure",
    "retry_delay",
]

logger = logging.getLogger(__name__)

EventHandler = Callable[[Merchant, Sequence[FulfillmentEvent]], None]
"""Handles a batch of new (deduplicated) events; raising means "not handled, try again"."""

Committer = Callable[[EventCommit, EventEffect | None], "list[str] | None"]
"""Stores one listener's batch (see :meth:`Store.commit_events`); None: the lease is gone."""


class RecordingHandler(abc.ABC):
    """A handler whose effect is written in the store, exactly once per event (module doc)."""

    def prepare(self, merchant: Any, events: Sequence[Any]) -> None:  # noqa: B027
        """Work before the transaction (reads; may run again for the same events). Default:
        nothing."""

    @abc.abstractmethod
    def record(self, tx: EventTx, merchant: Any, events: Sequence[Any]) -> None:
        """Write the effect of ``events`` (new to the store, in feed order) inside ``tx``."""


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
    clock_margin: float = 300.0
    """Seconds the feed's event times may run ahead of this machine's clock. Events later
    than the listener's start plus this margin are deduplicated from its own memory, without
    a store query (see :meth:`Listener._news`)."""


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


_RECENT_KEPT = 4096
"""Event ids a listener remembers itself (its deferred commits may not be stored yet)."""

_NEVER = datetime.max.replace(tzinfo=UTC)


def _event_time(event: Any) -> datetime | None:
    """The event's (timezone-aware) time, if it has one."""
    when = getattr(event, "occurred_at", None)
    return when if isinstance(when, datetime) and when.tzinfo is not None else None


class Listener:
    """Follows one merchant's event feed (see the module doc).

    ``merchant`` is what the feed is read from: a :class:`~omsbridge.bridge.Merchant`, or any
    source with ``merchant_id`` and ``events(checkpoint, wait=...)`` (another channel's feed).
    ``lease``/``committer`` are set by a :class:`ListenerPool` (fenced, grouped commits);
    alone, a listener commits straight to the store, unfenced.
    """

    def __init__(
        self,
        merchant: Merchant,
        store: Store,
        handler: EventHandler | RecordingHandler | None = None,
        settings: ListenerSettings | None = None,
    ) -> None:
        self.merchant = merchant
        self.store = store
        self.handler: EventHandler | RecordingHandler = handler or DeliverFulfillmentOrders()
        self.settings = settings or ListenerSettings()
        self.log = merchant_log(logger, merchant.merchant_id)
        self._stop = threading.Event()
        self.lease: str | None = None
        """The store lease a commit must still hold (set by the pool that holds it)."""
        self.committer: Committer = self._commit_alone
        self.defer: Callable[[EventCommit], None] | None = None
        """Set by a pool: a plain handler's commits are handed to it and written a moment later
        with other listeners' in one transaction (a crash in between: handled again, as for
        any plain handler)."""
        self._checkpoint: str | None = None
        self._loaded = False
        self._recent: dict[str, datetime | None] = {}  # id -> event time, oldest first
        self._tenure_from = _NEVER  # when this listener loaded its checkpoint, plus a margin
        self._forgotten: datetime | None = None  # the latest time of an id dropped from _recent
        self.last_poll_ok: float | None = None
        """:func:`time.monotonic` of the last successful read (None: none yet or failing)."""
        self.last_event_at: float | None = None
        """:func:`time.monotonic` of the last read that brought events."""

    @property
    def checkpoint(self) -> str | None:
        """Where the feed resumes (as stored)."""
        return self.store.checkpoint(self.merchant.merchant_id, self.settings.channel)

    def _commit_alone(self, commit: EventCommit, effect: EventEffect | None) -> list[str] | None:
        return self.store.commit_events([commit], effect=effect)[0]

    def _resume_from(self) -> str | None:
        # Read once: while this listener holds the feed, only it moves the checkpoint (commits
        # are fenced on its lease), so the stored value is what it last committed.
        if not self._loaded:
            self._checkpoint = self.store.checkpoint(
                self.merchant.merchant_id, self.settings.channel
            )
            self._loaded = True
            # A new tenure: whatever the store saw was committed before now (by this process
            # or another worker); events from later on can only have been committed by this
            # listener, which remembers them (fenced commits: nobody else writes meanwhile).
            margin = timedelta(seconds=self.settings.clock_margin)
            self._tenure_from = datetime.now(UTC) + margin
        return self._checkpoint

    def _news(self, event: Any) -> bool:
        """Whether ``event`` is certainly unknown to the store when not in ``_recent``.

        True when it happened after this listener loaded its checkpoint (plus a margin for
        the feed's clock) and after every id it forgot: a copy of it could only have been
        committed by this listener, from ``_recent``. Saves the store's seen-events query
        per batch on a live feed. A feed that re-sends an old id with a new time defeats
        it, and a plain handler gets that event again: the at-least-once it promises
        anyway. Recording handlers never rely on this (the store's commit decides)."""
        when = _event_time(event)
        if when is None or when <= self._tenure_from:
            return False
        return self._forgotten is None or when > self._forgotten

    def _commit(
        self, after: str, event_ids: Sequence[str], effect: EventEffect | None = None
    ) -> list[str]:
        commit = EventCommit(
            self.merchant.merchant_id, self.settings.channel, after, tuple(event_ids), self.lease
        )
        if effect is None and self.defer is not None:
            self.defer(commit)
            self._checkpoint = after
            return list(event_ids)
        fresh = self.committer(commit, effect)
        if fresh is None:
            self._loaded = False
            raise LeaseLost(self.merchant.merchant_id)
        self._checkpoint = after
        return fresh

    def poll(
        self,
        stop: threading.Event | None = None,
        *,
        wait: float | None = None,
        still_mine: Callable[[], bool] | None = None,
    ) -> int:
        """Read one batch, handle what is new, store the checkpoint; returns events handled.

        ``wait``: long-poll seconds (default: the settings'). ``still_mine``: asked right before
        a plain handler runs (it renews the listener's lease); False means another worker took
        the merchant over, and nothing is handled here (:class:`LeaseLost`; a commit whose
        lease is gone raises it too). Errors of ``events()`` propagate (the checkpoint is
        unchanged)."""
        stop = stop or self._stop
        checkpoint = self._resume_from()
        batch = self.merchant.events(checkpoint, wait=self.settings.wait if wait is None else wait)
        events = batch.events
        self.last_poll_ok = now = time.monotonic()
        if events:
            self.last_event_at = now
        after = batch.checkpoint or (events[-1].checkpoint if events else None)
        if not events:
            if after is not None and after != checkpoint:
                # Remember "now" on a first read, so a restart does not start from "now" again.
                self._commit(after, ())
            return 0
        assert after is not None
        handler = self.handler
        if isinstance(handler, RecordingHandler):
            return self._record(list(events), after, stop)
        merchant_id = self.merchant.merchant_id
        # Ids this listener handled lately count as seen even before their (deferred) commit
        # reached the store; the store knows the rest. One pass: this runs for every event.
        recent = self._recent
        news = self._news
        seen: set[str] = set()
        unknown: list[str] = []
        for event in events:
            event_id = event.event_id
            if event_id in recent:
                seen.add(event_id)
            elif not news(event):
                unknown.append(event_id)
        if unknown:
            seen.update(self.store.seen_events(merchant_id, self.settings.channel, unknown))
        fresh: list[Any] = []
        for event in events:
            event_id = event.event_id
            if event_id in seen:
                self.log.debug("dropping duplicate event %s", event_id)
                continue
            seen.add(event_id)
            fresh.append(event)
        if fresh:
            if still_mine is not None and not still_mine():
                raise LeaseLost(merchant_id)
            merchant = self.merchant
            self._retrying(fresh, stop, lambda: handler(merchant, fresh))  # type: ignore[operator]
        for event in fresh:
            recent[event.event_id] = _event_time(event)
        while len(recent) > _RECENT_KEPT:
            forgotten = recent.pop(next(iter(recent)))
            # A repeat of a forgotten id carries its (old) time: the store is asked for it.
            forgotten = _NEVER if forgotten is None else forgotten
            if self._forgotten is None or forgotten > self._forgotten:
                self._forgotten = forgotten
        self._commit(after, [e.event_id for e in fresh])
        return len(fresh)

    def _record(self, events: list[Any], after: str, stop: threading.Event) -> int:
        """A recording handler's batch: prepare, then effect + seen + checkpoint in one go."""
        handler = self.handler
        assert isinstance(handler, RecordingHandler)
        by_id = {e.event_id: e for e in events}
        recorded: list[str] = []

        def effect(tx: EventTx, commit: EventCommit, fresh: list[str]) -> None:
            handler.record(tx, self.merchant, [by_id[i] for i in fresh])
            recorded[:] = fresh

        def attempt() -> None:
            handler.prepare(self.merchant, events)
            self._commit(after, list(by_id), effect)

        if not self._retrying(events, stop, attempt):
            self._commit(after, list(by_id))  # buried: seen, skipped
            return 0
        return len(recorded)

    def _retrying(
        self, events: list[Any], stop: threading.Event, attempt: Callable[[], None]
    ) -> bool:
        """Run ``attempt`` up to ``handler_attempts`` times; False: gave up, events buried."""
        settings = self.settings
        for number in range(1, settings.handler_attempts + 1):
            try:
                attempt()
                return True
            except (AuthFailed, LeaseLost):
                # A refused login is not the events' fault: none is buried, the checkpoint
                # stays, and they are read and handled again once a login works.
                raise
            except Exception as exc:
                if number == settings.handler_attempts:
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
                        number,
                        type(exc).__name__,
                        exc,
                    )
                    return False
                delay = min(settings.backoff_max, settings.backoff_initial * 2 ** (number - 1))
                self.log.warning(
                    "handling %d event(s) failed (%s: %s); again in %.1f s",
                    len(events),
                    type(exc).__name__,
                    exc,
                    delay,
                )
                if stop.wait(delay):
                    raise _Stopped from exc
        return False

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


def _watch(source: Any, callback: Callable[[], None]) -> bool:
    """Ask a feed to call ``callback`` when something arrives: the source's own ``watch`` (a
    channel's source) or its backend's ``watch_events`` (the fulfillment feed). False: the feed
    cannot say, it is polled."""
    watch = getattr(source, "watch", None)
    if not callable(watch):
        watch = getattr(getattr(source, "backend", None), "watch_events", None)
    return bool(callable(watch) and watch(callback))


class _GroupCommit:
    """Commits the batches of many listeners that finish together in one store transaction.

    The first caller commits what is queued; whoever arrives meanwhile queues and is committed
    by the next round (group commit: no added wait when alone). An effect that fails rolls the
    shared transaction back, so the round is retried one commit at a time and only the failing
    one sees its error."""

    def __init__(self, store: Store, owner: str | None, lease_seconds: float) -> None:
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._busy = False
        self._deferred: list[tuple[EventCommit, Callable[[], None]]] = []
        self._deferred_since = 0.0
        # Its own plain lock (a C call per event, not the Condition's Python-level enter).
        self._deferred_lock = threading.Lock()
        self.transactions = 0
        """Store transactions run (for metrics and the benchmark)."""

    def defer(self, commit: EventCommit, on_lost: Callable[[], None]) -> None:
        """Queue a commit without an effect for the next :meth:`flush` (``on_lost``: called
        there if its lease is gone)."""
        with self._deferred_lock:
            if not self._deferred:
                self._deferred_since = time.monotonic()
            self._deferred.append((commit, on_lost))

    def deferred_age(self) -> float | None:
        """Seconds the oldest deferred commit has waited (None: none waits)."""
        with self._deferred_lock:
            return time.monotonic() - self._deferred_since if self._deferred else None

    def flush(self) -> None:
        """Write every deferred commit in one transaction (in the order they came); if the
        store fails, they stay queued for the next flush."""
        with self._deferred_lock:
            taken, self._deferred = self._deferred, []
        if not taken:
            return
        try:
            self.transactions += 1
            results = self.store.commit_events(
                [commit for commit, _ in taken], owner=self.owner, lease_seconds=self.lease_seconds
            )
        except Exception:
            logger.warning(
                "storing %d checkpoint(s) failed; again shortly", len(taken), exc_info=True
            )
            with self._deferred_lock:
                self._deferred[:0] = taken
                self._deferred_since = time.monotonic()
            return
        for (_, on_lost), result in zip(taken, results, strict=True):
            if result is None:
                on_lost()

    def __call__(self, commit: EventCommit, effect: EventEffect | None) -> list[str] | None:
        """Commit one listener's batch (possibly together with others); see the class doc."""
        item = _Pending(commit, effect)
        with self._cond:
            self._pending.append(item)
            while self._busy and not item.done:
                self._cond.wait()
            if not item.done:
                self._busy = True
                round_, self._pending = self._pending, []
        if item.done:
            return item.result()
        try:
            self._run(round_)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        return item.result()

    def _run(self, round_: list[_Pending]) -> None:
        effects = {id(p.commit): p.effect for p in round_}

        def dispatch(tx: EventTx, commit: EventCommit, fresh: list[str]) -> None:
            effect = effects.get(id(commit))
            if effect is not None:
                effect(tx, commit, fresh)

        try:
            self.transactions += 1
            results = self.store.commit_events(
                [p.commit for p in round_],
                owner=self.owner,
                lease_seconds=self.lease_seconds,
                effect=dispatch,
            )
        except Exception as exc:
            if len(round_) == 1:
                round_[0].finish(None, exc)
                return
            for pending in round_:
                try:
                    self.transactions += 1
                    result = self.store.commit_events(
                        [pending.commit],
                        owner=self.owner,
                        lease_seconds=self.lease_seconds,
                        effect=pending.effect,
                    )[0]
                except Exception as one:
                    pending.finish(None, one)
                else:
                    pending.finish(result, None)
            del exc
            return
        for pending, result in zip(round_, results, strict=True):
            pending.finish(result, None)


class _Pending:
    """One commit waiting for its round."""

    def __init__(self, commit: EventCommit, effect: EventEffect | None) -> None:
        self.commit = commit
        self.effect = effect
        self.done = False
        self._result: list[str] | None = None
        self._error: BaseException | None = None

    def finish(self, result: list[str] | None, error: BaseException | None) -> None:
        self._result, self._error, self.done = result, error, True

    def result(self) -> list[str] | None:
        if self._error is not None:
            raise self._error
        return self._result


@attrs.frozen
class PoolSettings:
    """How a worker shares listeners with other workers and drives the ones it holds."""

    threads: int = 8
    """Reads at a time: a worker holds any number of merchants' listeners on these threads
    (they also bound the imports the events trigger)."""
    lease_seconds: float = 15.0
    """A listener lease's length; a dead worker's listeners move to another within it."""
    idle_interval: float = 1.0
    """Seconds between reads of a quiet feed that cannot be watched, when there are more such
    listeners than threads (each read is then short: ``wait=0``); with fewer, every thread
    long-polls its own feed."""
    sweep: float = 30.0
    """Seconds between reads of a watched feed that said nothing (first subscription, stall
    watchdogs); a watched feed is otherwise read only when it says something arrived."""
    commit_interval: float = 0.25
    """Seconds a plain handler's checkpoint may wait to be stored with other listeners' in one
    transaction (0: each at once). Recording handlers' commits are never deferred."""


_DRAIN_AT = 50
"""A watched feed's read that brought this many events is followed by another at once."""


class _WorkQueue:
    """Hands slots to the pool's threads, waking exactly one idle thread per slot.

    A ``queue.SimpleQueue`` that many idle threads wait on wakes two per item (the second
    finds nothing and sleeps again, after a round for the GIL): per event, on a busy worker.
    Here each idle thread waits on its own gate, the last to go idle is woken first (its
    caches are warm)."""

    def __init__(self) -> None:
        self._items: deque[_Slot | None] = deque()
        self._idle: list[threading.Lock] = []
        self._lock = threading.Lock()

    def put(self, item: _Slot | None, *, wake: bool = True) -> None:
        """Queue ``item`` (None: one thread stops) and wake one idle thread, if any.
        ``wake=False``: a pool thread queues it and looks at the queue next itself."""
        with self._lock:
            self._items.append(item)
            gate = self._idle.pop() if wake and self._idle else None
        if gate is not None:
            gate.release()

    def get(self, gate: threading.Lock) -> _Slot | None:
        """The next item; waits on ``gate`` (a lock the calling thread holds) while none."""
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                self._idle.append(gate)
            gate.acquire()


_NOT_QUEUED = float("inf")

_TIMER_GRAIN = 0.05
"""Seconds the pool's driver may sleep past a due timer (sweeps, retries, idle reads), so
the timers of many feeds that fall due close together cost one wake-up, not one each."""


class _Slot:
    """One held listener and when it may read next."""

    def __init__(self, key: tuple[str, str], listener: Listener) -> None:
        self.key = key
        self.listener = listener
        self.next_at = 0.0
        self.queued_at = _NOT_QUEUED
        """The time of this slot's entry in the pool's timer heap (one at most is live)."""
        self.failures = 0
        self.busy = False
        self.again = False
        self.watched = False


class ListenerPool:
    """Every listener this worker holds, driven by a few threads (not one per merchant).

    Listeners are leased per merchant and channel through the store (``listen:<merchant>:
    <channel>``): exactly one worker reads a merchant's feed at a time; a worker that dies
    stops renewing, and another takes the merchant over once the lease ran out, from the
    stored checkpoint (seen event ids drop what was handled before; commits are fenced on the
    lease). ``channels`` names the feeds to hold: ``(merchant, channel)`` pairs, or merchant
    ids for ``channel`` alone. ``build(merchant_id, channel)`` (or ``build(merchant_id)`` with
    one channel) makes a held feed's listener.

    A feed that can be watched (``watch_events(callback)`` on the backend, ``watch(callback)``
    on a channel's source) is read only when it calls back, plus a sweep every
    ``settings.sweep`` seconds; the others are long-polled (few) or read every
    ``idle_interval`` (many). If the backend has a ``stop_events()`` method, the pool calls it
    when this worker stops holding the merchant's listener, so its subscription can end.
    ``store=None`` holds every given listener without leases (:class:`EventDrivenPool`).
    """

    def __init__(
        self,
        build: Callable[..., Listener | None],
        merchant_ids: Sequence[str] | Sequence[tuple[str, str]],
        store: Store | None,
        owner: str,
        settings: PoolSettings | None = None,
        channel: str = "fulfillment",
    ) -> None:
        self._build = build
        self.channel = channel
        self.feeds: list[tuple[str, str]] = [
            item if isinstance(item, tuple) else (item, channel) for item in merchant_ids
        ]
        self.merchant_ids = list(dict.fromkeys(m for m, _ in self.feeds))
        # Lease names made once, not at every sync (thousands of feeds every few seconds).
        self._names = {key: self.lease_name(*key) for key in self.feeds}
        self._one_channel = all(isinstance(item, str) for item in merchant_ids)
        self.store = store
        self.owner = owner
        self.settings = settings or PoolSettings()
        self.slots: dict[tuple[str, str], _Slot] = {}
        self._lock = threading.Lock()
        self._renewed = 0.0
        self._held_since = float("-inf")
        self._due: list[tuple[float, int, tuple[str, str]]] = []
        self._seq = 0
        self._kick = threading.Event()
        self._planned = 0.0  # when the driver wakes next by itself
        self._queue: _WorkQueue | None = None
        self._workers: list[threading.Thread] = []
        self._unwatched = 0
        self._stopping = threading.Event()
        self.committer = _GroupCommit(store, owner, self.settings.lease_seconds) if store else None
        self.polls = 0
        """Polls run (for metrics and tests)."""

    def lease_name(self, merchant_id: str, channel: str | None = None) -> str:
        """The store lease of the merchant's listener on ``channel`` (default: the pool's)."""
        return f"listen:{merchant_id}:{channel or self.channel}"

    def held(self) -> list[Listener]:
        """The listeners this worker holds now."""
        with self._lock:
            return [slot.listener for slot in self.slots.values()]

    # -- leases ---------------------------------------------------------------------------

    def sync_leases(self) -> None:
        """Renew the held leases, drop lost ones, take free ones (a dead worker's), and give
        back what is more than this worker's share, so listeners spread over live workers."""
        if self.store is None:
            return
        lease = self.settings.lease_seconds
        names = self._names
        try:
            self.store.acquire_lease(f"worker:{self.owner}", self.owner, lease)
            workers = max(1, len(self.store.lease_owners("worker:")))
            share = -(-len(self.feeds) // workers)
            with self._lock:
                held = list(self.slots)
            wanted = held
            if len(held) < share:
                # Room for more: the free feeds (a dead worker's, a new merchant's). A worker
                # holding its share skips reading every lease of the store.
                taken = self.store.lease_owners("listen:")
                free = [
                    key for key in self.feeds if key not in self.slots and names[key] not in taken
                ]
                # Workers starting together should not all reach for the same free feeds first.
                random.shuffle(free)
                wanted = held + free[: share - len(held)]
            asked = time.monotonic()
            mine = self.store.acquire_leases([names[key] for key in wanted], self.owner, lease)
        except Exception:
            logger.exception("listener lease check failed; trying again in 1 s")
            # Not at every turn of the loop: a store that is down is asked once a second.
            self._renewed = time.monotonic() - self.settings.lease_seconds / 3 + 1.0
            return
        self._renewed = time.monotonic()
        self._held_since = asked  # every lease in `mine` runs at least `lease` from here
        # The usual sync renews every held lease and takes nothing new: nothing to go through.
        changed = not len(mine) == len(wanted) == len(held)
        for key in wanted if changed else ():
            name = names[key]
            with self._lock:
                slot = self.slots.get(key)
            if name in mine and slot is None:
                listener = self._make(key)
                if listener is None:
                    self.store.release_lease(name, self.owner)
                    mine.discard(name)
                    continue
                listener.lease = name
                listener.log.info("listening from checkpoint %s", listener.checkpoint or "now")
                self._hold(key, listener)
            elif name not in mine and slot is not None:
                slot.listener.log.warning("listener lease lost: another worker reads this feed")
                self._drop(key)
        self._give_back_excess(share)

    def _make(self, key: tuple[str, str]) -> Listener | None:
        if self._one_channel:
            return self._build(key[0])
        return self._build(*key)

    def _hold(self, key: tuple[str, str], listener: Listener) -> None:
        if self.committer is not None:
            listener.committer = self.committer
        group = listener.committer
        if self.settings.commit_interval > 0 and isinstance(group, _GroupCommit):
            lost = functools.partial(self._lost, key, listener)
            listener.defer = functools.partial(self._defer, group, lost)
        slot = _Slot(key, listener)
        with self._lock:
            self.slots[key] = slot
        slot.watched = _watch(listener.merchant, functools.partial(self._wake, key))
        if not slot.watched:
            with self._lock:
                self._unwatched += 1
        self._schedule(slot)

    def _defer(self, group: _GroupCommit, lost: Callable[[], None], commit: EventCommit) -> None:
        group.defer(commit, lost)
        if self._planned > time.monotonic() + self.settings.commit_interval:
            self._kick.set()  # the driver would sleep past the flush

    def _lost(self, key: tuple[str, str], listener: Listener) -> None:
        with self._lock:
            slot = self.slots.get(key)
        if slot is not None and slot.listener is listener:
            listener.log.warning("listener lease lost when storing its checkpoint; let go")
            self._drop(key)

    def _groups(self) -> list[_GroupCommit]:
        return [self.committer] if self.committer is not None else []

    def _flush(self, force: bool = False) -> float:
        """Write the deferred commits that waited (most of) ``commit_interval``; seconds until
        the driver should look again (1.0 if none waits)."""
        interval = self.settings.commit_interval
        soonest = 1.0
        for group in self._groups():
            age = group.deferred_age()
            if age is None:
                continue
            # A little early rather than a wake-up of its own a moment later: the driver
            # planned this wake for the previous round's flush, and a commit that came soon
            # after it has waited nearly the interval by now.
            if force or age >= interval * 0.75:
                group.flush()
                # More are likely on their way: the driver wakes for them by itself then
                # rather than being kicked by the first of them.
                soonest = min(soonest, interval)
            else:
                soonest = min(soonest, interval - age)
        return soonest

    def _drop(self, key: tuple[str, str]) -> None:
        """Stop driving a listener; a backend that streams may end its subscription."""
        with self._lock:
            slot = self.slots.pop(key, None)
            if slot is not None and not slot.watched:
                self._unwatched -= 1
        if slot is None:
            return
        source = slot.listener.merchant
        stop_events = getattr(source, "stop_events", None)
        if not callable(stop_events):
            stop_events = getattr(getattr(source, "backend", None), "stop_events", None)
        if callable(stop_events):
            try:
                stop_events()
            except Exception:
                logger.warning("stop_events() of %s failed", key[0], exc_info=True)

    def _give_back_excess(self, share: int) -> None:
        assert self.store is not None
        with self._lock:
            excess = len(self.slots) - share
            if excess <= 0:
                return
            idle = [k for k, slot in self.slots.items() if not slot.busy][:excess]
        for key in idle:
            self._drop(key)
            # Its checkpoint is stored: the worker that takes it resumes from there.
            self.store.release_lease(self.lease_name(*key), self.owner)

    # -- driving --------------------------------------------------------------------------

    def _wake(self, key: tuple[str, str]) -> None:
        """A watched feed said something arrived: read it now (or once more after the read
        in flight: two reads of one feed at a time would hand the same events over twice)."""
        with self._lock:  # once per event on a busy worker: one lock round, not two
            slot = self.slots.get(key)
            work = self._claim(slot) if slot is not None else None
        if work is not None:
            work.put(slot)

    def _schedule(self, slot: _Slot) -> None:
        with self._lock:
            work = self._claim(slot)
        if work is not None:
            work.put(slot)

    def _claim(self, slot: _Slot) -> _WorkQueue | None:
        """Mark ``slot`` for a read (called with the lock held); the queue to hand it to, or
        None if a read is in flight (it reads again after) or the pool is stopping."""
        if slot.busy:
            slot.again = True
            return None
        work = self._queue
        if work is None or self._stopping.is_set():
            slot.next_at = 0.0
            self._push(slot)
            return None
        slot.busy = True
        slot.again = False
        return work

    def _push(self, slot: _Slot) -> None:
        # Called with the lock held. A slot whose entry in the heap falls due no later keeps
        # it (the driver looks again then): a watched feed's read, once per event, postpones
        # its sweep without a heap entry each. The driver is woken only if it would sleep
        # past this.
        due = slot.next_at
        if due >= slot.queued_at:
            return
        slot.queued_at = due
        self._seq += 1
        heapq.heappush(self._due, (due, self._seq, slot.key))
        if due < self._planned:
            self._kick.set()

    def _due_slots(self, now: float) -> list[_Slot]:
        """Slots whose time came (called with the lock held); re-files those postponed."""
        ready: list[_Slot] = []
        due = self._due
        while due and due[0][0] <= now:
            at, _, key = heapq.heappop(due)
            slot = self.slots.get(key)
            if slot is None or slot.queued_at != at:
                continue  # dropped, or filed again earlier since
            slot.queued_at = _NOT_QUEUED
            if slot.busy:
                continue  # a read is in flight: it files the slot again when done
            if slot.next_at <= now:
                ready.append(slot)
            else:
                self._push(slot)
        return ready

    def _work(self, work: _WorkQueue) -> None:
        gate = threading.Lock()
        gate.acquire()  # held: this thread waits on it when idle (see _WorkQueue)
        # Woken by a thread that holds the GIL (a feed's event loop): see omsbridge.threads.
        with batch_scheduled():
            while True:
                slot = work.get(gate)
                if slot is None:
                    return
                self._read(slot)

    def run(self, stop: threading.Event) -> None:
        """Hold and drive listeners until ``stop`` is set; then wait for the reads in flight
        and give the leases back (another worker takes over at once)."""
        # Woken by the pool threads' commits, GIL held: see omsbridge.threads.
        with batch_scheduled():
            self._drive(stop)

    def _drive(self, stop: threading.Event) -> None:
        settings = self.settings
        work = _WorkQueue()
        self._workers = [
            threading.Thread(target=self._work, args=(work,), name=f"listen_{n}", daemon=True)
            for n in range(settings.threads)
        ]
        for thread in self._workers:
            thread.start()
        with self._lock:
            self._queue = work
            # Listeners held before the run (EventDrivenPool) wait in the timer heap.
            self._planned = 0.0
        try:
            while not stop.is_set():
                renew_in = self._renewed + settings.lease_seconds / 3 - time.monotonic()
                if self.store is not None and renew_in <= 0:
                    self.sync_leases()
                    continue
                self._kick.clear()  # before looking: a kick from now on ends the wait below
                flush_in = self._flush()
                now = time.monotonic()
                with self._lock:
                    ready = self._due_slots(now)
                    next_due = self._due[0][0] - now if self._due else 1.0
                    next_due = max(next_due, min(_TIMER_GRAIN, settings.idle_interval / 4))
                    timeout = min(next_due, flush_in)
                    if self.store is not None:
                        timeout = min(timeout, max(0.0, renew_in))
                    self._planned = now + timeout
                for slot in ready:
                    self._schedule(slot)
                if timeout > 0:
                    # Woken early by a finished read or a stop; a callback submits directly.
                    self._kick.wait(timeout)
                if stop.is_set():
                    break
        finally:
            self._stopping.set()
            with self._lock:
                self._queue = None
            for _ in self._workers:
                work.put(None)
            for thread in self._workers:
                thread.join()
            # The last checkpoints before the leases go: the next owner resumes from them.
            self._flush(force=True)
            self._release_all()

    def _release_all(self) -> None:
        with self._lock:
            keys = list(self.slots)
        for key in keys:
            self._drop(key)
        if self.store is None:
            return
        names = [self.lease_name(*key) for key in keys] + [f"worker:{self.owner}"]
        for name in names:
            try:
                self.store.release_lease(name, self.owner)
            except Exception:
                logger.warning("could not give the lease %s back; it runs out by itself", name)

    def _read(self, slot: _Slot) -> None:
        listener = slot.listener
        settings = self.settings
        stop = self._stopping
        long_poll = not slot.watched and self._unwatched <= settings.threads
        key = slot.key

        # Dropped meanwhile (lease lost or given back): never take the lease again here.
        def still_mine() -> bool:
            # Renewed less than half a lease ago (before the renewal was even asked): no other
            # worker can hold it yet; older, ask the store (and renew).
            if self.slots.get(key) is not slot:
                return False
            if self.store is None:
                return True
            if time.monotonic() - self._held_since < settings.lease_seconds / 2:
                return True
            return self.store.acquire_lease(
                self.lease_name(*key), self.owner, settings.lease_seconds
            )

        try:
            if slot.watched:
                # What the feed has, no waiting; whatever arrives meanwhile calls back and this
                # slot reads again right after (``again``), so no extra read to find it empty.
                while (
                    listener.poll(stop, wait=0.0, still_mine=still_mine) >= _DRAIN_AT
                    and not stop.is_set()
                ):
                    self.polls += 1  # a big batch: more may wait without a new call back
                self.polls += 1
                later = settings.sweep
            else:
                wait = listener.settings.wait if long_poll else 0.0
                handled = listener.poll(stop, wait=wait, still_mine=still_mine)
                self.polls += 1
                later = 0.0 if handled or long_poll else settings.idle_interval
            slot.failures = 0
            slot.next_at = time.monotonic() + later
        except _Stopped:
            pass
        except LeaseLost:
            listener.log.warning("listener lease lost before handling; another worker has it")
            self._drop(key)
        except Exception as exc:
            if not isinstance(exc, RateLimited):
                slot.failures += 1
            listener.last_poll_ok = None
            delay = retry_delay(listener.settings, exc, max(slot.failures, 1))
            log_read_failure(listener.log, exc, max(slot.failures, 1), delay)
            slot.next_at = time.monotonic() + delay
        finally:
            with self._lock:
                again = slot.again and slot.failures == 0
                slot.again = False
                work = self._queue
                if self.slots.get(key) is not slot or stop.is_set():
                    slot.busy = False
                elif again and work is not None:
                    # Something arrived during the read: read again, still claimed, at the
                    # back of the queue; this thread looks there next, so none is woken.
                    work.put(slot, wake=False)
                else:
                    slot.busy = False
                    if again:
                        slot.next_at = 0.0
                    self._push(slot)

    def metrics(self) -> dict[str, Any]:
        """Listener figures: polls run, listeners failing now, store transactions of the
        commits, and the sums over the feeds that report ``event_metrics()`` (connected,
        reconnects, stalls, events) with the oldest last-event age."""
        slots = list(self.slots.values())
        totals: dict[str, Any] = {
            "listeners": len(slots),
            "polls": self.polls,
            "failing": sum(1 for s in slots if s.failures),
            "commit_transactions": self.committer.transactions if self.committer else 0,
            "connected": 0,
            "reconnects": 0,
            "stalls": 0,
            "events": 0,
            "oldest_last_event_age": None,
        }
        for slot in slots:
            backend = getattr(slot.listener.merchant, "backend", None)
            report = getattr(backend, "event_metrics", None)
            figures = report() if callable(report) else None
            if not isinstance(figures, dict):
                continue
            totals["connected"] += 1 if figures.get("connected") else 0
            for name in ("reconnects", "stalls", "events"):
                totals[name] += int(figures.get(name) or 0)
            age = figures.get("last_event_age")
            oldest = totals["oldest_last_event_age"]
            if isinstance(age, int | float) and (oldest is None or age > oldest):
                totals["oldest_last_event_age"] = age
        return totals


class EventDrivenPool(ListenerPool):
    """The :class:`ListenerPool` for listeners one process owns alone (no leases): each is
    read when its feed calls back, swept every ``sweep`` seconds, polled if it cannot be
    watched; their commits share store transactions. ``start()`` / ``stop()`` run it on a
    thread of its own."""

    def __init__(
        self, listeners: Sequence[Listener], *, workers: int = 8, sweep: float = 30.0
    ) -> None:
        self.listeners = list(listeners)
        keys = [(str(i), li.settings.channel) for i, li in enumerate(self.listeners)]
        super().__init__(
            lambda index, channel: self.listeners[int(index)],
            keys,
            None,
            "local",
            PoolSettings(threads=workers, sweep=sweep),
        )
        stores = {id(li.store): li.store for li in self.listeners}
        self._group = {sid: _GroupCommit(store, None, 0.0) for sid, store in stores.items()}
        for key, listener in zip(keys, self.listeners, strict=True):
            listener.committer = self._group[id(listener.store)]
            self._hold(key, listener)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _groups(self) -> list[_GroupCommit]:
        return list(self._group.values())

    @property
    def commit_transactions(self) -> int:
        """Store transactions run for the listeners' commits."""
        return sum(group.transactions for group in self._group.values())

    def metrics(self) -> dict[str, Any]:
        """See :meth:`ListenerPool.metrics`."""
        totals = super().metrics()
        totals["commit_transactions"] = self.commit_transactions
        return totals

    def start(self) -> None:
        """Drive the listeners on a thread until :meth:`stop`."""
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="listen pool", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the polls in flight."""
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
