"""The store interface: the outbox of transactions waiting for their OMS, and event checkpoints.

One interface, several implementations: SQLite (:mod:`omsbridge.store.sqlite`, the embedded
default) and, where one machine is not enough, a PostgreSQL one whose ``claim`` is a
``SELECT ... FOR UPDATE SKIP LOCKED``. Callers (the bridge, the export job, the listeners, the
CLI) only ever see :class:`Store`.

Claims are leases, not locks held by a connection: a claimed row (and the merchant whose rows
are being posted) carries an owner and an expiry, so the rows of a worker that was killed are
taken again by another (or the restarted) worker once the lease runs out. A row is marked
``done`` only after its OMS confirmed it, which together with the backend's idempotency on the
transaction id is what makes "post again after a crash" safe.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import attrs

from omsbridge import trusted
from omsbridge.checked import mark_checked
from omsbridge.errors import BackendError
from omsbridge.model import PostResult, Transaction
from omsbridge.spi import ApiBudget

__all__ = [
    "AttemptOutcome",
    "AttemptRecord",
    "DeadEvent",
    "EntryState",
    "EventCommit",
    "EventEffect",
    "EventTx",
    "ErrorInfo",
    "MerchantPause",
    "MerchantStats",
    "OutboxEntry",
    "PauseKind",
    "Store",
    "StoreStats",
    "WebhookMessage",
    "WebhookState",
    "fresh_by_commit",
    "latest_checkpoints",
]


class EntryState(StrEnum):
    """Where an outbox entry is in its life."""

    PENDING = "pending"  # waiting to be posted (again)
    DEAD = "dead"  # failed for good; shown to operators, replayed by hand
    DONE = "done"  # the OMS confirmed it (created now, or found posted before)


class AttemptOutcome(StrEnum):
    """What one attempt to post an entry produced."""

    CREATED = "created"  # the OMS created the order
    EXISTED = "existed"  # the OMS had it already (an idempotent re-post after a lost answer)
    RETRY = "retry"  # a retryable error; the entry stays pending
    RATE_LIMITED = "rate_limited"  # the merchant's API budget ran out; not the entry's fault
    DEAD = "dead"  # a permanent error (or too many attempts); the entry is a dead letter
    AUTH_FAILED = "auth_failed"  # the OMS refused the login; the merchant is paused, not the entry
    PAYMENT_FAILED = "payment_failed"  # posted, but its refund/capture failed later (an OMS event)


class PauseKind(StrEnum):
    """Why a merchant is paused."""

    RATE_LIMIT = "rate_limit"  # its API budget ran out; over when the budget is back
    AUTH = "auth"  # its OMS refused the login; over only once a login works again


@attrs.frozen
class MerchantPause:
    """A merchant's pause as stored: until when, why, and (for a refused login) how many
    logins in a row were refused, which sets the backoff of the next try."""

    until: datetime
    kind: PauseKind
    reason: str | None = None
    failures: int = 0


@attrs.frozen
class ErrorInfo:
    """What went wrong, as kept in the store: error class, backend code and message."""

    error_class: str
    message: str
    code: str | None = None
    status: int | None = None
    retryable: bool = False

    @classmethod
    def from_error(cls, error: BaseException) -> ErrorInfo:
        """Describe any exception; backend errors keep their code and HTTP status."""
        if isinstance(error, BackendError):
            return cls(
                type(error).__name__, error.message, error.code, error.status, error.retryable
            )
        return cls(type(error).__name__, str(error) or type(error).__name__)

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"{self.error_class}{code}: {self.message}"


@attrs.frozen
class AttemptRecord:
    """One attempt to post an entry, for the per-entry history operators read."""

    at: datetime
    outcome: AttemptOutcome
    source: str
    """Who tried: ``pos`` (the synchronous post), ``export`` (the export job) or ``operator``."""
    latency_ms: float | None = None
    error: ErrorInfo | None = None
    worker: str | None = None


@attrs.frozen
class OutboxEntry:
    """One transaction in the outbox, with its state and last error."""

    entry_id: int
    merchant_id: str
    transaction_id: str
    kind: str
    state: EntryState
    attempts: int
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime
    payload: str = attrs.field(repr=False)
    """The transaction in the POS's native JSON (:mod:`omsbridge.wire`)."""
    last_error: ErrorInfo | None = None
    order_id: str | None = None
    order_number: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None

    def transaction(self) -> Transaction:
        """The stored transaction, rebuilt from its JSON. The outbox wrote that JSON from a
        checked transaction, so the model's checks are not run again (:mod:`omsbridge.trusted`;
        a payload not as written falls back to the fully checked decode)."""
        return trusted.loads(self.payload, Transaction)

    def transaction_to_post(self) -> Transaction:
        """:meth:`transaction`, marked as checked (:mod:`omsbridge.checked`) for a backend to
        post at once; the payload rides along with the mark when it was read as written, so a
        backend whose body is the native JSON sends it as is instead of encoding it again."""
        transaction, as_written = trusted.loads_as_written(self.payload, Transaction)
        return mark_checked(transaction, native=self.payload if as_written else None)


@attrs.frozen
class DeadEvent:
    """An event whose handler kept failing; kept so that it is not lost silently."""

    merchant_id: str
    channel: str
    event_id: str
    payload: str
    error: ErrorInfo
    at: datetime


@attrs.frozen
class MerchantStats:
    """Queue figures of one merchant."""

    merchant_id: str
    pending: int = 0
    due: int = 0
    dead: int = 0
    done: int = 0
    attempts_failed: int = 0
    retried: int = 0
    oldest_pending_at: datetime | None = None
    paused_until: datetime | None = None
    pause_kind: PauseKind | None = None
    """Why the merchant is paused; an ``auth`` pause is reported until a login works again,
    even between two tries (when ``paused_until`` is over)."""
    pause_reason: str | None = None
    budget: ApiBudget | None = None
    dead_events: int = 0


@attrs.frozen
class StoreStats:
    """Queue figures of every merchant with anything in the store."""

    merchants: tuple[MerchantStats, ...]

    def total(self, field: str) -> int:
        """The sum of one counter (``pending``, ``dead``...) over all merchants."""
        return sum(int(getattr(m, field)) for m in self.merchants)


class WebhookState(StrEnum):
    """Where an outgoing webhook message is in its life."""

    PENDING = "pending"  # waiting to be sent (again)
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # failed every attempt; shown to operators, replayed by hand


@attrs.frozen
class WebhookMessage:
    """One outgoing webhook message, exactly as it is (re)sent: the id and the body never change,
    so a receiver deduplicates retries and replays on ``webhook-id``."""

    message_id: str
    merchant_id: str
    event_type: str
    subject: str
    """What the message is about (a fulfillment order id): tells "created" from "updated"."""
    body: str = attrs.field(repr=False)
    state: WebhookState = WebhookState.PENDING
    attempts: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_status: int | None = None
    """The receiver's last HTTP status (None: no answer)."""
    last_error: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None


@attrs.frozen
class EventCommit:
    """One listener's batch to store: where its feed stands now and the events it read."""

    merchant_id: str
    channel: str
    checkpoint: str
    """Where the feed resumes after this batch."""
    event_ids: Sequence[str] = ()
    """The batch's event ids; the store remembers them (seen events) and says which are new."""
    lease: str | None = None
    """The lease (``listen:<merchant>:<channel>``) the committing owner must still hold; None:
    no fencing (a listener that is not shared among workers)."""


def latest_checkpoints(commits: Sequence[EventCommit]) -> dict[tuple[str, str], str]:
    """Each feed's checkpoint after a group of commits: the last commit naming it wins."""
    return {(c.merchant_id, c.channel): c.checkpoint for c in commits}


def fresh_by_commit(
    commits: Sequence[EventCommit], held: set[str], new: set[tuple[str, str, str]]
) -> list[list[str] | None]:
    """The outcome of a group of commits, per commit, as if they were stored one at a time:
    None where its lease is not in ``held``, else its event ids among ``new`` (keys the store
    had not seen) that no earlier commit of the group named — an id is new once, to the first
    commit naming it. ``new`` is used up."""
    results: list[list[str] | None] = []
    for commit in commits:
        if commit.lease is not None and commit.lease not in held:
            results.append(None)
            continue
        fresh: list[str] = []
        for event_id in dict.fromkeys(commit.event_ids):
            key = (commit.merchant_id, commit.channel, event_id)
            if key in new:
                new.discard(key)
                fresh.append(event_id)
        results.append(fresh)
    return results


class EventTx(Protocol):
    """The store transaction an :data:`EventEffect` writes into (commits or rolls back with the
    seen events and the checkpoint)."""

    dialect: str
    """``"sqlite"`` or ``"postgresql"``: which SQL (and placeholder style) ``execute`` takes."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement inside the transaction."""


EventEffect = Callable[[EventTx, EventCommit, list[str]], None]
"""Records the effect of the events a commit found new (their ids, in feed order), inside the
store transaction that remembers them: the effect and "seen" are stored together or not at all."""


class Store(abc.ABC):
    """Durable state of omsbridge: the outbox, merchant leases and pauses, event checkpoints.

    Implementations are thread-safe and safe to share between processes on one store.
    Every method that changes state commits before it returns.
    """

    # -- writing into the outbox ------------------------------------------------------------

    @abc.abstractmethod
    def enqueue(
        self,
        merchant_id: str,
        transaction: Transaction,
        *,
        error: BaseException | None = None,
        dead: bool = False,
        attempt: AttemptRecord | None = None,
    ) -> OutboxEntry:
        """Keep a transaction for the export job (``dead``: as a dead letter), with the error of
        the attempt that failed. Idempotent on ``(merchant_id, transaction_id)``: an entry not yet
        done takes the newer body and error; a done entry is left alone and returned."""

    @abc.abstractmethod
    def enqueue_many(self, items: Iterable[tuple[str, Transaction]]) -> int:
        """Queue many ``(merchant_id, transaction)`` pairs as pending in few transactions
        (imports, tests, benchmarks); existing entries are left alone. Returns how many were new."""

    # -- the export job's side --------------------------------------------------------------

    @abc.abstractmethod
    def merchants_with_work(self, now: datetime) -> list[str]:
        """Merchants with pending entries (due or not), oldest work first."""

    @abc.abstractmethod
    def next_due(self, merchant_id: str | None = None) -> datetime | None:
        """When the earliest pending entry (of one merchant, or any) may be tried, or None."""

    @abc.abstractmethod
    def acquire_merchant(self, merchant_id: str, owner: str, lease_seconds: float) -> bool:
        """Take (or renew) the merchant's export lease; False if another live owner holds it.

        One owner at a time posts a merchant's entries, so they go out oldest first even when
        several workers share the store."""

    @abc.abstractmethod
    def release_merchant(self, merchant_id: str, owner: str) -> None:
        """Give the merchant's lease back (if ``owner`` holds it)."""

    @abc.abstractmethod
    def claim(
        self, merchant_id: str, owner: str, *, limit: int, lease_seconds: float
    ) -> list[OutboxEntry]:
        """Lease up to ``limit`` of the merchant's oldest pending entries that are due.

        Entries are taken in order and the claim stops at the first one that is not due or is
        leased by someone else: a merchant's queue is first in, first out. Rows whose lease has
        expired (their worker died) are taken again. Also renews the merchant's lease."""

    @abc.abstractmethod
    def mark_done(
        self, entry_id: int, result: PostResult, attempts: Sequence[AttemptRecord]
    ) -> None:
        """The OMS confirmed the entry's order: it is done, whoever holds its lease now.
        ``attempts`` are this round's attempts (failed in-line retries, then the success)."""

    def mark_done_many(
        self, done: Sequence[tuple[int, PostResult, Sequence[AttemptRecord]]]
    ) -> None:
        """:meth:`mark_done` for several entries (the OMS confirmed each), in one transaction
        where the store can (the export job's batches); this default marks them one by one."""
        for entry_id, result, attempts in done:
            self.mark_done(entry_id, result, attempts)

    @abc.abstractmethod
    def mark_failed(
        self,
        entry_id: int,
        owner: str,
        attempts: Sequence[AttemptRecord],
        *,
        retry_at: datetime | None,
        counted: int | None = None,
    ) -> EntryState:
        """Record this round's failed attempts: pending again from ``retry_at``, dead if None.

        ``counted`` is how many of them count against the entry (rate limits do not; default:
        all). Only the lease holder changes the state, and a done entry stays done; the attempts
        are history either way. Returns the entry's state afterwards."""

    @abc.abstractmethod
    def release(self, entry_ids: Sequence[int], owner: str) -> None:
        """Give back leases on entries not tried (shutdown, or the merchant paused)."""

    @abc.abstractmethod
    def pause_merchant(
        self,
        merchant_id: str,
        until: datetime,
        *,
        kind: PauseKind = PauseKind.RATE_LIMIT,
        reason: str | None = None,
    ) -> MerchantPause:
        """Post nothing more for this merchant before ``until``: its API budget ran out, or
        (``kind=AUTH``) its OMS refused the login, which also counts one more refused login.
        Returns the pause as stored."""

    @abc.abstractmethod
    def merchant_pause(self, merchant_id: str) -> MerchantPause | None:
        """The merchant's stored pause, over or not (an ``auth`` pause stays until
        :meth:`resume_merchant`), or None."""

    @abc.abstractmethod
    def resume_merchant(self, merchant_id: str) -> MerchantPause | None:
        """End the merchant's pause (a login worked again); returns the pause it ended."""

    @abc.abstractmethod
    def paused_until(self, merchant_id: str) -> datetime | None:
        """The end of the merchant's pause, if one is set and not over."""

    @abc.abstractmethod
    def record_budget(self, merchant_id: str, budget: ApiBudget) -> None:
        """Remember the API budget the merchant's backend last reported (for metrics)."""

    # -- reading and operating --------------------------------------------------------------

    @abc.abstractmethod
    def get(self, entry_id: int) -> OutboxEntry | None:
        """One entry by id."""

    @abc.abstractmethod
    def find(self, merchant_id: str, transaction_id: str) -> OutboxEntry | None:
        """The entry of one transaction, if the outbox has it."""

    @abc.abstractmethod
    def entries(
        self,
        *,
        states: Sequence[EntryState] = (EntryState.PENDING, EntryState.DEAD),
        merchant_id: str | None = None,
        limit: int = 100,
        after_id: int = 0,
    ) -> list[OutboxEntry]:
        """Entries in the given states, oldest first, ``limit`` of them after ``after_id``."""

    @abc.abstractmethod
    def attempts(self, entry_id: int) -> list[AttemptRecord]:
        """Every attempt recorded for an entry, oldest first."""

    @abc.abstractmethod
    def requeue(self, entry_ids: Sequence[int]) -> int:
        """Make dead (or pending) entries pending and due now, attempts reset; returns how many."""

    @abc.abstractmethod
    def requeue_dead(self, merchant_id: str | None = None) -> int:
        """Make every dead entry (of one merchant, or all) pending again; returns how many."""

    @abc.abstractmethod
    def purge(self, *, states: Sequence[EntryState], before: datetime) -> int:
        """Delete entries (and their history) in ``states`` last changed before ``before``."""

    @abc.abstractmethod
    def stats(self, now: datetime) -> StoreStats:
        """Queue figures per merchant."""

    # -- event listeners --------------------------------------------------------------------

    @abc.abstractmethod
    def checkpoint(self, merchant_id: str, channel: str) -> str | None:
        """Where the merchant's event feed ``channel`` resumes, or None if never read."""

    @abc.abstractmethod
    def save_checkpoint(
        self, merchant_id: str, channel: str, checkpoint: str, event_ids: Sequence[str] = ()
    ) -> None:
        """Store the checkpoint and remember ``event_ids`` as handled, in one transaction."""

    @abc.abstractmethod
    def commit_events(
        self,
        commits: Sequence[EventCommit],
        *,
        owner: str | None = None,
        lease_seconds: float = 0.0,
        effect: EventEffect | None = None,
    ) -> list[list[str] | None]:
        """Store many listeners' batches in ONE transaction; per commit, the ids new to the
        store (in the commit's order), or None where its lease is not ``owner``'s any more
        (then nothing of that commit is written).

        For each commit whose ``lease`` ``owner`` still holds (renewed by ``lease_seconds`` on
        the store's clock; a commit without a lease is not fenced): remember its event ids as
        seen, call ``effect`` with the ids that were not seen before, store the checkpoint.
        Two workers committing the same events: the store decides, one gets them as new and
        the other as seen; an effect that raises rolls the whole transaction back."""

    @abc.abstractmethod
    def seen_events(self, merchant_id: str, channel: str, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` were handled before (duplicates to drop)."""

    @abc.abstractmethod
    def bury_event(
        self, merchant_id: str, channel: str, event_id: str, payload: str, error: BaseException
    ) -> None:
        """Keep an event whose handling kept failing, so it is not lost silently."""

    @abc.abstractmethod
    def dead_events(self, merchant_id: str | None = None) -> list[DeadEvent]:
        """Events buried by :meth:`bury_event`."""

    # -- backend caches ---------------------------------------------------------------------

    def cached_value(self, merchant_id: str, key: str) -> tuple[str, datetime] | None:
        """A backend's cached value for the merchant (e.g. looked-up record ids) and when it
        was saved, or None. The default store keeps none: backends then start cold."""
        return None

    def save_cached_value(self, merchant_id: str, key: str, value: str) -> None:
        """Keep (replace) a backend's cached value; see :meth:`cached_value`."""
        return None  # the default store keeps nothing

    def drop_cached_value(self, merchant_id: str, key: str) -> None:
        """Forget a backend's cached value (its ids turned out stale)."""
        return None  # the default store keeps nothing

    # -- outgoing webhooks (schema step 4) ----------------------------------------------------

    @abc.abstractmethod
    def enqueue_webhook(
        self, message_id: str, merchant_id: str, event_type: str, subject: str, body: str
    ) -> bool:
        """Keep a webhook message to send; False (and nothing changed) if ``message_id`` is
        kept already, in any state: enqueueing the same event twice sends it once."""

    @abc.abstractmethod
    def webhook_subject_seen(self, merchant_id: str, subject: str) -> bool:
        """Whether any webhook message about ``subject`` was kept for the merchant."""

    @abc.abstractmethod
    def claim_webhooks(
        self, owner: str, merchant_ids: Sequence[str], *, limit: int, lease_seconds: float
    ) -> list[WebhookMessage]:
        """Lease up to ``limit`` pending messages of these merchants that are due, oldest due
        first; a message whose lease ran out (its sender died) is due again."""

    @abc.abstractmethod
    def webhook_delivered(self, message_id: str, owner: str, status: int) -> bool:
        """Mark a leased message delivered; False if ``owner`` no longer holds it."""

    @abc.abstractmethod
    def webhook_failed(
        self,
        message_id: str,
        owner: str,
        *,
        status: int | None,
        error: str,
        retry_at: datetime | None,
        count: bool = True,
    ) -> WebhookState | None:
        """Record a failed attempt: pending again at ``retry_at``, or dead when None. ``count``
        False leaves the attempt count alone (the endpoint was disabled: not the message's
        fault). None if ``owner`` no longer holds the message."""

    @abc.abstractmethod
    def webhook(self, message_id: str) -> WebhookMessage | None:
        """One message, or None."""

    @abc.abstractmethod
    def webhooks(
        self,
        *,
        merchant_id: str | None = None,
        state: WebhookState | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[WebhookMessage]:
        """Messages, newest first, created in ``[since, until)`` when given."""

    @abc.abstractmethod
    def replay_webhooks(self, message_ids: Sequence[str]) -> int:
        """Send delivered or dead messages again (same id, same body, attempts from zero);
        returns how many were put back. Pending ones are left as they are."""

    @abc.abstractmethod
    def purge_webhooks(self, *, states: Sequence[WebhookState], before: datetime) -> int:
        """Delete messages in ``states`` last changed before ``before``; returns how many. A
        message purged is forgotten: the same event recorded again would be sent again."""

    @abc.abstractmethod
    def set_webhook_endpoint(self, merchant_id: str, url: str, disabled: str | None) -> None:
        """Disable a merchant's endpoint (``disabled`` is why, e.g. it answered 410 Gone) or
        enable it again (None)."""

    @abc.abstractmethod
    def webhook_endpoint_disabled(self, merchant_id: str, url: str) -> str | None:
        """Why the endpoint is disabled, or None when it is not."""

    @abc.abstractmethod
    def disabled_webhook_endpoints(self) -> dict[tuple[str, str], str]:
        """Every disabled endpoint: (merchant id, url) to why (one read for a sender's round)."""

    # -- named leases (listeners) ------------------------------------------------------------

    @abc.abstractmethod
    def acquire_lease(self, name: str, owner: str, lease_seconds: float) -> bool:
        """Take (or renew) the lease called ``name`` (e.g. ``listen:<merchant>:<channel>``) for
        ``lease_seconds`` by the store's clock; False while another owner's lease is live.

        Exactly one worker holds a name at a time; when it dies, another takes it once the
        lease has run out."""

    def acquire_leases(self, names: Sequence[str], owner: str, lease_seconds: float) -> set[str]:
        """:meth:`acquire_lease` for many names at once; returns the names now held.
        (Implementations do it in one statement; this default asks one by one.)"""
        return {name for name in names if self.acquire_lease(name, owner, lease_seconds)}

    @abc.abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease back (if ``owner`` holds it), so another worker can take it at once."""

    @abc.abstractmethod
    def lease_owners(self, prefix: str = "") -> dict[str, str]:
        """Live leases whose name starts with ``prefix``: name to owner."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot be reached (readiness checks)."""

    # -- lifecycle --------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection(s)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
