"""The export job: post what the outbox holds, per merchant, oldest first, exactly once.

Why nothing is posted twice: an entry is marked done only after the OMS confirmed it, and a
backend's ``post`` is idempotent on the transaction id. If the job dies after the OMS committed
but before the entry was marked (or a timeout hid the answer), the entry is posted again later
and the OMS answers ``created=False``: the entry is marked done and no second order exists.

Why nothing is lost: entries are leased, not deleted, while they are posted; a killed worker's
leases run out and another run takes the entries again.

Per merchant the queue is first in, first out (a return never overtakes its sale): a retryable
failure of the oldest entry holds the merchant back until that entry is due again, a rate limit
pauses the merchant, a permanent failure makes the entry a dead letter and the queue moves on.
Merchants are independent: one that is paused or failing does not slow the others.

A refused login (:class:`~omsbridge.errors.AuthFailed`: revoked connected app, expired
password) is the merchant's fault, not the entry's: the merchant is paused (logged at ERROR
once, shown by ``export stats`` and the metrics), the entry stays pending with its attempt
count untouched, the login is tried again with a growing backoff, and the merchant resumes by
itself once one works. No entry becomes a dead letter because of it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import attrs

from omsbridge.bridge import Bridge, Merchant
from omsbridge.errors import AuthFailed, BackendError, RateLimited
from omsbridge.export.retry import RetryPolicy
from omsbridge.logs import MerchantLog, merchant_log
from omsbridge.model import PostResult, Transaction
from omsbridge.store import (
    AttemptOutcome,
    AttemptRecord,
    EntryState,
    ErrorInfo,
    OutboxEntry,
    PauseKind,
    Store,
)

__all__ = ["ExportJob", "ExportSettings", "MerchantReport", "RunReport", "default_owner"]

logger = logging.getLogger(__name__)

OutcomeCallback = Callable[[OutboxEntry, AttemptOutcome], None]
"""Told about every entry an attempt round finished with (progress bars, tests)."""
AttemptsCallback = Callable[[OutboxEntry, Sequence[AttemptRecord]], None]
"""Told the attempts of every finished round (latency and error class, for metrics)."""


def default_owner() -> str:
    """A lease owner name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class ExportSettings:
    """How the export job works through the outbox."""

    claim_size: int = 50
    """Entries leased at a time per merchant; for a batching backend rounded up to a multiple of
    its ``max_batch_size``, which is how many each ``post_batch`` call gets."""
    lease_seconds: float = 120.0
    """How long a claim lasts; a killed worker's entries are taken again after it."""
    concurrency: int = 4
    """Merchants posted in parallel."""
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    mark_within: float = 1.0
    """Seconds an order the OMS confirmed may wait to be marked done, so that the orders of
    one claim are marked in one store commit (a backend without batches posts them one by
    one). Nothing is marked before the OMS confirmed it; 0 marks each order at once."""


@attrs.define
class MerchantReport:
    """What one run did for one merchant."""

    merchant_id: str
    created: int = 0
    existed: int = 0
    retry: int = 0
    rate_limited: int = 0
    dead: int = 0
    paused_until: datetime | None = None
    skipped: str | None = None
    """Why the merchant was not worked on (leased elsewhere, not in the config...)."""
    auth_failed: int = 0
    """Entries put back because the OMS refused the login (none of them counts an attempt)."""
    login_refused: str | None = None
    """The refused login's error while the merchant is paused for it."""
    resumed: bool = False
    """A login worked again in this run after refused ones: the merchant's pause was ended."""

    @property
    def posted(self) -> int:
        """Entries confirmed by the OMS (created now or found there)."""
        return self.created + self.existed


@attrs.define
class RunReport:
    """What one run of the export job did."""

    started_at: datetime
    finished_at: datetime | None = None
    merchants: list[MerchantReport] = attrs.field(factory=list)

    def total(self, field: str) -> int:
        """The sum of one counter over the merchants (``created``, ``dead``, ``posted``...)."""
        return sum(int(getattr(m, field)) for m in self.merchants)


class _Stop(Exception):
    """The merchant's turn ends (paused, held back, or shutting down)."""


@attrs.define
class _Confirmed:
    """Orders the OMS confirmed that are not marked done yet (marked together, see
    :meth:`ExportJob._mark_confirmed`); a crash before that only makes them posted again,
    which the OMS answers with ``created=False``."""

    items: list[tuple[OutboxEntry, PostResult, list[AttemptRecord]]] = attrs.field(factory=list)
    since: float | None = None

    def add(self, entry: OutboxEntry, result: PostResult, attempts: list[AttemptRecord]) -> None:
        """One more confirmed order."""
        if self.since is None:
            self.since = time.monotonic()
        self.items.append((entry, result, attempts))

    def due(self, within: float) -> bool:
        """Whether the oldest unmarked confirmation is ``within`` seconds old or more."""
        return self.since is not None and time.monotonic() - self.since >= within


class ExportJob:
    """Posts pending outbox entries through each merchant's backend (see the module doc)."""

    def __init__(
        self,
        bridge: Bridge,
        store: Store | None = None,
        settings: ExportSettings | None = None,
        *,
        owner: str | None = None,
        on_outcome: OutcomeCallback | None = None,
        clock: Callable[[], datetime] = _utcnow,
        on_attempts: AttemptsCallback | None = None,
    ) -> None:
        self.bridge = bridge
        self.store = store if store is not None else bridge.store
        self.settings = settings or ExportSettings()
        self.owner = owner or default_owner()
        self._on_outcome = on_outcome
        self._on_attempts = on_attempts
        self._clock = clock
        self._login_refused: set[str] = set()
        """Merchants whose last login was refused: their next success ends the pause."""

    def run(
        self,
        merchant_ids: Sequence[str] | None = None,
        *,
        drain: bool = False,
        stop: threading.Event | None = None,
        deadline: float | None = None,
    ) -> RunReport:
        """Post what is due now, for the given merchants (default: all with pending entries).

        ``drain``: also wait for entries that become due later (backoff, rate-limit pauses)
        until the outbox is empty. ``stop`` ends the run early (entries not tried are given
        back); ``deadline`` is a :func:`time.monotonic` time to stop at.
        """
        stop = stop or threading.Event()
        report = RunReport(started_at=self._clock())
        wanted = list(merchant_ids or self.store.merchants_with_work(self._clock()))
        known = set(self.bridge.merchant_ids)
        todo = [m for m in wanted if m in known]
        for merchant_id in wanted:
            if merchant_id not in known:
                merchant_log(logger, merchant_id).warning(
                    "the outbox has entries of a merchant the config does not define; left alone"
                )
                report.merchants.append(MerchantReport(merchant_id, skipped="not in the config"))
        if todo:
            workers = max(1, min(self.settings.concurrency, len(todo)))
            with ThreadPoolExecutor(workers, thread_name_prefix="export") as pool:
                report.merchants.extend(
                    pool.map(lambda m: self._run_merchant(m, drain, stop, deadline), todo)
                )
        report.finished_at = self._clock()
        return report

    # -- one merchant -----------------------------------------------------------------------

    def _run_merchant(
        self, merchant_id: str, drain: bool, stop: threading.Event, deadline: float | None
    ) -> MerchantReport:
        report = MerchantReport(merchant_id)
        log = merchant_log(logger, merchant_id)
        try:
            merchant = self.bridge.for_merchant(merchant_id)
        except Exception as exc:
            log.error("cannot build the merchant's backend: %s", exc)
            report.skipped = f"backend not available: {exc}"
            return report
        try:
            self._work_merchant(merchant, report, log, drain, stop, deadline)
        except Exception as exc:
            # One merchant's failure (its store writes, a bug) must not stop the others.
            log.exception("export of this merchant stopped: %s", exc)
            report.skipped = f"stopped by an error: {type(exc).__name__}: {exc}"
        finally:
            self.store.release_merchant(merchant_id, self.owner)
        return report

    def _work_merchant(
        self,
        merchant: Merchant,
        report: MerchantReport,
        log: MerchantLog,
        drain: bool,
        stop: threading.Event,
        deadline: float | None,
    ) -> None:
        merchant_id = merchant.merchant_id
        lease = self.settings.lease_seconds
        while not stop.is_set() and not _past(deadline):
            if not self.store.acquire_merchant(merchant_id, self.owner, lease):
                if drain:
                    # Another worker, or a killed one whose lease has not run out yet.
                    stop.wait(min(lease, 1.0))
                    continue
                if report.posted == 0:
                    report.skipped = "another worker holds the merchant"
                log.info("another worker is posting this merchant; leaving it")
                break
            paused = self.store.paused_until(merchant_id)
            stored = self.store.merchant_pause(merchant_id)
            if stored is not None and stored.kind == PauseKind.AUTH:
                # Over or not, the pause ends only when a login works again.
                self._login_refused.add(merchant_id)
                report.login_refused = stored.reason
            if paused is not None:
                report.paused_until = paused
                if drain and self._wait_until(paused, stop, deadline):
                    continue
                break
            # A batching backend gets whole batches: claim a multiple of its batch size, so
            # only the end of the queue leaves a part-filled request.
            size = max(1, merchant.backend.max_batch_size)
            limit = -(-self.settings.claim_size // size) * size
            entries = self.store.claim(merchant_id, self.owner, limit=limit, lease_seconds=lease)
            if not entries:
                due = self.store.next_due(merchant_id) if drain else None
                if due is not None and self._wait_until(due, stop, deadline):
                    continue
                break
            self._post_entries(merchant, entries, report, log, stop)

    def _wait_until(self, when: datetime, stop: threading.Event, deadline: float | None) -> bool:
        """Sleep until ``when`` (or the deadline, or a stop); True if the run goes on."""
        delay = max(0.0, (when - self._clock()).total_seconds())
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - time.monotonic()))
        stop.wait(delay + 0.001)
        return not stop.is_set() and not _past(deadline)

    def _post_entries(
        self,
        merchant: Merchant,
        entries: list[OutboxEntry],
        report: MerchantReport,
        log: MerchantLog,
        stop: threading.Event,
    ) -> None:
        size = max(1, merchant.backend.max_batch_size)
        position = 0
        lease = self.settings.lease_seconds
        renewed = time.monotonic()
        confirmed = _Confirmed()
        try:
            while position < len(entries):
                if stop.is_set():
                    raise _Stop
                if time.monotonic() - renewed > lease / 3:
                    # A slow OMS must not let the merchant's lease run out under us; if it did
                    # and another worker took the merchant over, leave the rest to it.
                    self._mark_confirmed(merchant, confirmed, report, log)
                    if not self.store.acquire_merchant(merchant.merchant_id, self.owner, lease):
                        raise _Stop
                    renewed = time.monotonic()
                chunk = entries[position : position + size]
                position += len(chunk)
                if size == 1:
                    self._post_one(merchant, chunk[0], report, log, confirmed)
                    # Well inside the entries' lease, or another worker could take them again.
                    if confirmed.due(min(self.settings.mark_within, lease / 4)):
                        self._mark_confirmed(merchant, confirmed, report, log)
                else:
                    self._post_many(merchant, chunk, report, log)
                    self._note_budget(merchant)
        except _Stop:
            self._mark_confirmed(merchant, confirmed, report, log)
            # Give back what was claimed but not tried, so the next run starts with it at once.
            self.store.release([e.entry_id for e in entries[position:]], self.owner)
        else:
            self._mark_confirmed(merchant, confirmed, report, log)

    def _mark_confirmed(
        self, merchant: Merchant, confirmed: _Confirmed, report: MerchantReport, log: MerchantLog
    ) -> None:
        """Mark every order the OMS confirmed since the last call done, in one store
        transaction (one commit for many orders, not one each); then report them."""
        if not confirmed.items:
            return
        items, confirmed.items, confirmed.since = confirmed.items, [], None
        self.store.mark_done_many([(e.entry_id, r, h) for e, r, h in items])
        for entry, result, history in items:
            self._settle_success(entry, result, history, report, log, marked=True)
        self._note_budget(merchant)

    def _post_one(
        self,
        merchant: Merchant,
        entry: OutboxEntry,
        report: MerchantReport,
        log: MerchantLog,
        confirmed: _Confirmed,
    ) -> None:
        transaction = self._decode(entry, report, log)
        if transaction is None:
            return
        attempts: list[AttemptRecord] = []

        def once() -> PostResult:
            started = time.monotonic()
            try:
                result = merchant.post(transaction, outbox=False)
            except Exception as exc:
                attempts.append(self._failure(exc, started))
                raise
            attempts.append(self._success(result, started))
            return result

        try:
            result = self.settings.policy.call(once)
        except Exception as exc:
            # The confirmed ones before it are marked first: the store sees them in order.
            self._mark_confirmed(merchant, confirmed, report, log)
            self._settle_failure(merchant.merchant_id, entry, exc, attempts, report, log)
            return
        confirmed.add(entry, result, attempts)

    def _post_many(
        self,
        merchant: Merchant,
        chunk: list[OutboxEntry],
        report: MerchantReport,
        log: MerchantLog,
    ) -> None:
        decoded = [(e, self._decode(e, report, log)) for e in chunk]
        ready = [(e, t) for e, t in decoded if t is not None]
        if not ready:
            return
        request_failures: list[AttemptRecord] = []

        def once() -> list[PostResult | BackendError]:
            started = time.monotonic()
            try:
                return merchant.post_batch([t for _, t in ready])
            except Exception as exc:
                request_failures.append(self._failure(exc, started))
                raise

        started = time.monotonic()
        outcomes: list[PostResult | BackendError] | None = None
        whole: Exception = RuntimeError("no answer")
        try:
            outcomes = self.settings.policy.call(once)
        except Exception as exc:
            whole = exc
        # One request for the batch: each item's attempt carries its share of the latency.
        share = (time.monotonic() - started) / len(ready)
        stopping: _Stop | None = None
        confirmed: list[tuple[OutboxEntry, PostResult, list[AttemptRecord]]] = []
        for index, (entry, _) in enumerate(ready):
            history = list(request_failures)
            try:
                if outcomes is None:
                    self._settle_failure(merchant.merchant_id, entry, whole, history, report, log)
                    continue
                outcome = outcomes[index]
                if isinstance(outcome, PostResult):
                    history.append(self._success(outcome, time.monotonic() - share))
                    confirmed.append((entry, outcome, history))
                else:
                    history.append(self._failure(outcome, time.monotonic() - share))
                    self._settle_failure(merchant.merchant_id, entry, outcome, history, report, log)
            except _Stop as held:
                # Record every item of the batch before ending the merchant's turn.
                stopping = held
        if confirmed:
            # Every order the OMS confirmed, marked done in one store transaction (one commit
            # per batch, not per order); nothing is marked before the OMS's answer.
            self.store.mark_done_many([(e.entry_id, r, h) for e, r, h in confirmed])
            for entry, result, history in confirmed:
                self._settle_success(entry, result, history, report, log, marked=True)
        if stopping is not None:
            raise stopping

    # -- outcomes ---------------------------------------------------------------------------

    def _success(self, result: PostResult, started: float) -> AttemptRecord:
        return AttemptRecord(
            at=self._clock(),
            outcome=AttemptOutcome.CREATED if result.created else AttemptOutcome.EXISTED,
            source="export",
            latency_ms=round((time.monotonic() - started) * 1000, 1),
            worker=self.owner,
        )

    def _failure(self, error: BaseException, started: float) -> AttemptRecord:
        if isinstance(error, RateLimited):
            outcome = AttemptOutcome.RATE_LIMITED
        elif isinstance(error, AuthFailed):
            outcome = AttemptOutcome.AUTH_FAILED
        elif isinstance(error, BackendError) and error.retryable:
            outcome = AttemptOutcome.RETRY
        else:
            outcome = AttemptOutcome.DEAD
        return AttemptRecord(
            at=self._clock(),
            outcome=outcome,
            source="export",
            latency_ms=round((time.monotonic() - started) * 1000, 1),
            error=ErrorInfo.from_error(error),
            worker=self.owner,
        )

    def _settle_success(
        self,
        entry: OutboxEntry,
        result: PostResult,
        attempts: list[AttemptRecord],
        report: MerchantReport,
        log: MerchantLog,
        *,
        marked: bool = False,
    ) -> None:
        if not marked:
            self.store.mark_done(entry.entry_id, result, attempts)
        if entry.merchant_id in self._login_refused:
            self._login_refused.discard(entry.merchant_id)
            ended = self.store.resume_merchant(entry.merchant_id)
            report.resumed, report.login_refused, report.paused_until = True, None, None
            log.warning(
                "the OMS accepts the login again after %d refused; merchant resumed",
                ended.failures if ended is not None else 0,
            )
        outcome = attempts[-1].outcome
        if outcome == AttemptOutcome.CREATED:
            report.created += 1
        else:
            report.existed += 1
        log.info(
            "posted as order %s (%s)",
            result.order_id,
            "created" if result.created else "already in the OMS",
            extra={"transaction_id": entry.transaction_id, "entry_id": entry.entry_id},
        )
        self._tell(entry, outcome, attempts)

    def _settle_failure(
        self,
        merchant_id: str,
        entry: OutboxEntry,
        error: BaseException,
        attempts: list[AttemptRecord],
        report: MerchantReport,
        log: MerchantLog,
    ) -> None:
        policy = self.settings.policy
        now = self._clock()
        extra = {
            "transaction_id": entry.transaction_id,
            "entry_id": entry.entry_id,
            "error_class": type(error).__name__,
            "code": getattr(error, "code", None),
        }
        if not attempts:
            attempts = [self._failure(error, time.monotonic())]
        counted = sum(
            1
            for a in attempts
            if a.outcome not in (AttemptOutcome.RATE_LIMITED, AttemptOutcome.AUTH_FAILED)
        )
        if isinstance(error, AuthFailed):
            self._pause_for_login(merchant_id, entry, error, attempts, counted, report, log)
            raise _Stop
        if isinstance(error, RateLimited):
            pause = policy.pause_for(error)
            until = now + timedelta(seconds=pause)
            self.store.pause_merchant(merchant_id, until, reason=str(ErrorInfo.from_error(error)))
            self.store.mark_failed(
                entry.entry_id, self.owner, attempts, retry_at=now, counted=counted
            )
            report.rate_limited += 1
            report.paused_until = until
            log.warning("API budget exhausted; merchant paused for %.1f s", pause, extra=extra)
            self._tell(entry, AttemptOutcome.RATE_LIMITED, attempts)
            raise _Stop
        if isinstance(error, BackendError) and error.retryable:
            retry_at = policy.retry_at(entry.attempts + counted, now)
            state = self.store.mark_failed(
                entry.entry_id, self.owner, attempts, retry_at=retry_at, counted=counted
            )
            if state == EntryState.PENDING:
                report.retry += 1
                log.warning(
                    "post failed (%s); retry at %s",
                    ErrorInfo.from_error(error),
                    retry_at.isoformat() if retry_at else "-",
                    extra=extra,
                )
                self._tell(entry, AttemptOutcome.RETRY, attempts)
                raise _Stop  # first in, first out: later entries wait behind this one
            report.dead += 1
            log.error(
                "post failed %d times (%s); now a dead letter",
                entry.attempts + counted,
                ErrorInfo.from_error(error),
                extra=extra,
            )
            self._tell(entry, AttemptOutcome.DEAD, attempts)
            return
        self.store.mark_failed(entry.entry_id, self.owner, attempts, retry_at=None, counted=counted)
        report.dead += 1
        log.error("post refused (%s); now a dead letter", ErrorInfo.from_error(error), extra=extra)
        self._tell(entry, AttemptOutcome.DEAD, attempts)

    def _pause_for_login(
        self,
        merchant_id: str,
        entry: OutboxEntry,
        error: AuthFailed,
        attempts: list[AttemptRecord],
        counted: int,
        report: MerchantReport,
        log: MerchantLog,
    ) -> None:
        """Pause the merchant after a refused login; the entry waits, its attempts untouched."""
        now = self._clock()
        why = str(ErrorInfo.from_error(error))
        extra = {"transaction_id": entry.transaction_id, "entry_id": entry.entry_id,
                 "error_class": type(error).__name__, "code": error.code}  # fmt: skip
        current = self.store.merchant_pause(merchant_id)
        refused_before = current is not None and current.kind == PauseKind.AUTH
        if refused_before and current is not None and current.until > now:
            # Already paused for this (another item of the same batch, or another worker).
            pause = current
        else:
            failures = (current.failures if refused_before and current is not None else 0) + 1
            wait = self.settings.policy.auth_pause(failures)
            pause = self.store.pause_merchant(
                merchant_id, now + timedelta(seconds=wait), kind=PauseKind.AUTH, reason=why
            )
            if pause.failures <= 1:
                log.error(
                    "LOGIN REFUSED by the OMS (%s): merchant paused, nothing is posted for it "
                    "and no entry is lost. Fix its credentials (config, connected app, "
                    "password); the login is tried again in %.3g s and the merchant resumes "
                    "by itself once it works",
                    why,
                    wait,
                    extra=extra,
                )
            else:
                log.warning(
                    "login still refused (%d in a row: %s); next try in %.3g s",
                    pause.failures,
                    why,
                    wait,
                    extra=extra,
                )
        # Due as soon as the pause ends; a refused login is not the entry's attempt.
        self.store.mark_failed(entry.entry_id, self.owner, attempts, retry_at=now, counted=counted)
        self._login_refused.add(merchant_id)
        report.auth_failed += 1
        report.paused_until = pause.until
        report.login_refused = pause.reason
        self._tell(entry, AttemptOutcome.AUTH_FAILED, attempts)

    def _decode(
        self, entry: OutboxEntry, report: MerchantReport, log: MerchantLog
    ) -> Transaction | None:
        try:
            # Decoded here and handed straight to the backend: marked so that it is not
            # checked a second time, with its stored JSON for a backend that sends it as is
            # (see omsbridge.checked).
            return entry.transaction_to_post()
        except Exception as exc:
            # A payload this version cannot read is a dead letter, not a crash of the job.
            self._settle_failure(entry.merchant_id, entry, exc, [], report, log)
            return None

    def _note_budget(self, merchant: Merchant) -> None:
        try:
            budget = merchant.backend.api_budget()
            if budget is not None:
                self.store.record_budget(merchant.merchant_id, budget)
        except Exception:
            merchant_log(logger, merchant.merchant_id).debug("no API budget", exc_info=True)

    def _tell(
        self, entry: OutboxEntry, outcome: AttemptOutcome, attempts: Sequence[AttemptRecord] = ()
    ) -> None:
        if self._on_outcome is not None:
            self._on_outcome(entry, outcome)
        if self._on_attempts is not None and attempts:
            self._on_attempts(entry, attempts)


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline
