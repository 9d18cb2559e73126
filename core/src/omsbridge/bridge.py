"""The entry point for the POS platform: one config, many merchants, one backend each.

>>> bridge = Bridge.from_config("omsbridge.toml")
>>> result = bridge.for_merchant("SHOPNOW").post(transaction)

When the OMS does not take a transaction, ``post`` keeps it in the store before returning and
raises :class:`~omsbridge.outbox.Queued` (retryable failure: the export job will post it) or the
backend's own error (permanent failure: kept as a dead letter). See :mod:`omsbridge.outbox`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pluggy

from omsbridge.backend_cache import BackendCache
from omsbridge.config import Config, MerchantConfig, load_config
from omsbridge.errors import AuthFailed, BackendError, InvalidTransaction, Issue, UnknownMerchant
from omsbridge.model import (
    CancelLine,
    CancelResult,
    EventBatch,
    FulfillmentOrder,
    FulfillmentUpdate,
    OrderDetail,
    OrderPage,
    OrderQuery,
    PostResult,
    Transaction,
)
from omsbridge.outbox import Queued
from omsbridge.plugins import call_observers, get_plugin_manager
from omsbridge.registry import BackendRegistry
from omsbridge.spi import POST_CAPABILITY, Capability, OrderBackend, needs_unreferenced_returns
from omsbridge.store import AttemptOutcome, AttemptRecord, EntryState, ErrorInfo, Store, open_store
from omsbridge.webhook_outbox import record_fulfillment_order, record_fulfillment_update

__all__ = ["Bridge", "Merchant"]

log = logging.getLogger(__name__)


class Merchant:
    """One merchant's view of its backend: the SPI operations, with observers told what happened.

    Operations the backend does not declare in ``capabilities`` raise
    :class:`~omsbridge.errors.Unsupported` before any request is made.
    """

    def __init__(
        self,
        config: MerchantConfig,
        backend: OrderBackend,
        pm: pluggy.PluginManager,
        store: Callable[[], Store] | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self._pm = pm
        self._store = store

    @property
    def merchant_id(self) -> str:
        """The merchant's id in the config file."""
        return self.config.merchant_id

    def __repr__(self) -> str:
        return f"<Merchant {self.merchant_id} backend={self.backend.name}>"

    def _require(self, capability: Capability, operation: str) -> None:
        if capability not in self.backend.capabilities:
            raise self.backend._unsupported(operation)

    def post(self, transaction: Transaction, *, outbox: bool = True) -> PostResult:
        """Post a transaction (idempotent on its id) and tell the observers.

        With ``outbox`` (and a store), a failure keeps the transaction before this returns:
        a retryable one raises :class:`~omsbridge.outbox.Queued`, a permanent one re-raises the
        backend's error with the transaction kept as a dead letter. A success marks an entry of
        the same transaction already in the outbox (a POS retry) done.
        """
        if not isinstance(transaction, Transaction):
            raise TypeError(f"post() takes a Transaction, got {type(transaction).__name__}")
        started = time.monotonic()
        try:
            self._require(POST_CAPABILITY[transaction.kind], f"post of a {transaction.kind}")
            if needs_unreferenced_returns(transaction):
                self._require(
                    Capability.POST_UNREFERENCED_RETURN, "post of a return without receipt"
                )
            self._check_currency(transaction)
            result = self.backend.post(transaction)
        except Exception as error:
            latency_ms = (time.monotonic() - started) * 1000
            if isinstance(error, BackendError):
                call_observers(
                    self._pm,
                    "omsbridge_post_failed",
                    merchant_id=self.merchant_id,
                    transaction=transaction,
                    error=error,
                )
            if outbox and self._store is not None:
                self._keep(transaction, error, latency_ms)
            raise
        call_observers(
            self._pm,
            "omsbridge_order_posted",
            merchant_id=self.merchant_id,
            transaction=transaction,
            result=result,
        )
        if outbox and self._store is not None:
            self._settle(transaction, result, (time.monotonic() - started) * 1000)
        return result

    def accepted_currencies(self) -> frozenset[str] | None:
        """The currencies this merchant posts in; None when the config names none (no check).

        The config's ``currencies`` count only where the backend records each order in its own
        currency (:attr:`Capability.MULTI_CURRENCY`); elsewhere the merchant takes ``currency``.
        """
        config = self.config
        if config.currencies and Capability.MULTI_CURRENCY in self.backend.capabilities:
            return frozenset(config.currencies)
        if config.currency is not None:
            return frozenset({config.currency})
        if config.currencies:
            return frozenset()  # several listed, one possible, none named: refuse every one
        return None

    def _check_currency(self, transaction: Transaction) -> None:
        """Refuse, before any request, a transaction in a currency the merchant does not take
        (an EUR sale must never become a USD order of the same amount)."""
        accepted = self.accepted_currencies()
        if accepted is None or transaction.currency in accepted:
            return
        expected = (
            " or ".join(sorted(accepted))
            or f"the one currency set in merchants.{self.merchant_id}.currency"
        )
        why = ""
        if self.config.currencies and Capability.MULTI_CURRENCY not in self.backend.capabilities:
            why = (
                f" (the config lists {', '.join(self.config.currencies)}, but the "
                f"{self.backend.name} backend as configured takes one currency per merchant)"
            )
        raise InvalidTransaction(
            [
                Issue(
                    "currency",
                    f"merchant {self.merchant_id} takes {expected}, got {transaction.currency!r}{why}",
                )
            ],
            code="CURRENCY_NOT_ACCEPTED",
            backend=self.backend.name,
        )

    def _keep(self, transaction: Transaction, error: Exception, latency_ms: float) -> None:
        # A refused login is the merchant's problem, not the transaction's: it waits (pending)
        # for the export job, which pauses the merchant until a login works again.
        refused_login = isinstance(error, AuthFailed)
        retryable = (isinstance(error, BackendError) and error.retryable) or refused_login
        outcome = AttemptOutcome.RETRY if retryable else AttemptOutcome.DEAD
        attempt = AttemptRecord(
            at=datetime.now(UTC),
            outcome=AttemptOutcome.AUTH_FAILED if refused_login else outcome,
            source="pos",
            latency_ms=round(latency_ms, 1),
            error=ErrorInfo.from_error(error),
        )
        try:
            entry = self._store_or_fail().enqueue(
                self.merchant_id, transaction, error=error, dead=not retryable, attempt=attempt
            )
        except Exception as store_error:
            error.add_note(
                f"NOT queued: the outbox could not be written ({type(store_error).__name__}: "
                f"{store_error}); post the transaction again"
            )
            log.exception(
                "could not keep a failed post in the outbox",
                extra={
                    "merchant_id": self.merchant_id,
                    "transaction_id": transaction.transaction_id,
                },
            )
            return
        log.warning(
            "post failed (%s), kept as outbox entry %d (%s)",
            ErrorInfo.from_error(error),
            entry.entry_id,
            entry.state,
            extra={"merchant_id": self.merchant_id, "transaction_id": transaction.transaction_id},
        )
        if retryable:
            assert isinstance(error, BackendError)
            raise Queued(
                self.merchant_id, transaction.transaction_id, entry.entry_id, error
            ) from error
        error.add_note(
            f"kept as dead letter {entry.entry_id}: fix the cause, then "
            f"`omsbridge export retry {entry.entry_id}`"
        )

    def _settle(self, transaction: Transaction, result: PostResult, latency_ms: float) -> None:
        # A POS that posts again what was queued (or dead) closes the entry here, so the
        # export job does not post it once more and the dead-letter list stays true.
        try:
            store = self._store_or_fail()
            entry = store.find(self.merchant_id, transaction.transaction_id)
            if entry is not None and entry.state != EntryState.DONE:
                attempt = AttemptRecord(
                    at=datetime.now(UTC),
                    outcome=AttemptOutcome.CREATED if result.created else AttemptOutcome.EXISTED,
                    source="pos",
                    latency_ms=round(latency_ms, 1),
                )
                store.mark_done(entry.entry_id, result, [attempt])
        except Exception:
            # The order is in the OMS; a stale entry is only re-posted (idempotently) later.
            log.exception(
                "could not mark the outbox entry of a posted transaction done",
                extra={
                    "merchant_id": self.merchant_id,
                    "transaction_id": transaction.transaction_id,
                },
            )

    def _store_or_fail(self) -> Store:
        assert self._store is not None
        return self._store()

    def post_batch(self, transactions: Sequence[Transaction]) -> list[PostResult | BackendError]:
        """Post several transactions through the backend's batch operation, without the outbox
        (the export job's path); each item succeeds or fails on its own and the observers are
        told about each. Raises only when the whole request failed."""
        allowed: list[Transaction] = []
        results: dict[int, PostResult | BackendError] = {}
        for index, transaction in enumerate(transactions):
            if POST_CAPABILITY[transaction.kind] not in self.backend.capabilities:
                results[index] = self.backend._unsupported(f"post of a {transaction.kind}")
            elif needs_unreferenced_returns(transaction) and (
                Capability.POST_UNREFERENCED_RETURN not in self.backend.capabilities
            ):
                results[index] = self.backend._unsupported("post of a return without receipt")
            else:
                try:
                    self._check_currency(transaction)
                except InvalidTransaction as refused:
                    results[index] = refused
                    continue
                allowed.append(transaction)
        answers = iter(self.backend.post_batch(allowed) if allowed else [])
        ordered: list[PostResult | BackendError] = []
        for index, transaction in enumerate(transactions):
            outcome = results[index] if index in results else next(answers)
            if isinstance(outcome, PostResult):
                call_observers(
                    self._pm,
                    "omsbridge_order_posted",
                    merchant_id=self.merchant_id,
                    transaction=transaction,
                    result=outcome,
                )
            else:
                call_observers(
                    self._pm,
                    "omsbridge_post_failed",
                    merchant_id=self.merchant_id,
                    transaction=transaction,
                    error=outcome,
                )
            ordered.append(outcome)
        return ordered

    def cancel_order(self, order_id: str, *, reason: str) -> CancelResult:
        """Cancel what is still open on an order."""
        self._require(Capability.CANCEL_ORDER, "cancel_order")
        return self.backend.cancel_order(order_id, reason=reason)

    def cancel_items(
        self, order_id: str, lines: Sequence[CancelLine], *, reason: str
    ) -> CancelResult:
        """Cancel part of an order."""
        self._require(Capability.CANCEL_ITEMS, "cancel_items")
        return self.backend.cancel_items(order_id, lines, reason=reason)

    def search_orders(self, query: OrderQuery) -> OrderPage:
        """Search the merchant's orders."""
        self._require(Capability.SEARCH_ORDERS, "search_orders")
        return self.backend.search_orders(query)

    def get_order(self, order_id: str) -> OrderDetail:
        """Read one order in full."""
        self._require(Capability.GET_ORDER, "get_order")
        return self.backend.get_order(order_id)

    def fulfillment_orders(self, *, store_id: str | None = None) -> Sequence[FulfillmentOrder]:
        """Fulfillment orders waiting on the merchant's stores."""
        self._require(Capability.FULFILLMENT_ORDERS, "fulfillment_orders")
        return self.backend.fulfillment_orders(store_id=store_id)

    def update_fulfillment(self, update: FulfillmentUpdate) -> None:
        """Report a store's fulfillment step to the OMS and tell the observers.

        With a webhook configured, its message is kept in the store once the OMS took the step;
        a store that fails then raises (the step is in the OMS: reporting it again is safe, and
        records one message)."""
        self._require(Capability.UPDATE_FULFILLMENT, "update_fulfillment")
        self.backend.update_fulfillment(update)
        webhook = self.config.webhook
        if webhook is not None and self._store is not None:
            record_fulfillment_update(self._store(), self.merchant_id, webhook, update)
        call_observers(
            self._pm, "omsbridge_fulfillment_updated", merchant_id=self.merchant_id, update=update
        )

    def events(self, checkpoint: str | None, *, wait: float = 0.0) -> EventBatch:
        """Read the backend's fulfillment events after ``checkpoint``."""
        self._require(Capability.EVENTS, "events")
        return self.backend.events(checkpoint, wait=wait)

    def deliver(self, fulfillment_order: FulfillmentOrder) -> list[BaseException]:
        """Hand an imported fulfillment order to every ``omsbridge_fulfillment_order_received``
        observer, each isolated; returns the failures.

        With a webhook configured, the order's message is kept in the store first: a store that
        fails raises here, so the caller (the listener) handles the order again."""
        webhook = self.config.webhook
        if webhook is not None and self._store is not None:
            record_fulfillment_order(self._store(), self.merchant_id, webhook, fulfillment_order)
        return call_observers(
            self._pm,
            "omsbridge_fulfillment_order_received",
            merchant_id=self.merchant_id,
            fulfillment_order=fulfillment_order,
        )


class Bridge:
    """All merchants of one config. Backends are built on first use, once, and shared by threads.

    The store (the config's ``[store]``: outbox and checkpoints) is opened on first need; pass
    ``store`` to share one, or ``outbox=False`` for a bridge that never keeps failed posts.
    """

    def __init__(
        self,
        config: Config,
        *,
        registry: BackendRegistry | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        store: Store | None = None,
        outbox: bool = True,
    ) -> None:
        self.config = config
        self.plugin_manager = plugin_manager or get_plugin_manager()
        self.registry = registry or BackendRegistry.from_plugins(self.plugin_manager)
        self._merchants: dict[str, Merchant] = {}
        self._lock = threading.Lock()
        self._store = store
        self._owns_store = store is None
        self._outbox = outbox

    @classmethod
    def from_config(
        cls,
        path: str | Path,
        *,
        registry: BackendRegistry | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        store: Store | None = None,
        outbox: bool = True,
    ) -> Bridge:
        """Load a config file (every problem reported at once) and make a bridge for it."""
        pm = plugin_manager or get_plugin_manager()
        registry = registry or BackendRegistry.from_plugins(pm)
        return cls(
            load_config(path, registry),
            registry=registry,
            plugin_manager=pm,
            store=store,
            outbox=outbox,
        )

    @property
    def store(self) -> Store:
        """The store of this config (opened on first use)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.config.store)
        return self._store

    @property
    def merchant_ids(self) -> list[str]:
        """The merchants in the config."""
        return list(self.config.merchants)

    def for_merchant(self, merchant_id: str) -> Merchant:
        """The merchant's backend (built on the first call, then reused)."""
        merchant = self._merchants.get(merchant_id)
        if merchant is not None:
            return merchant
        with self._lock:
            merchant = self._merchants.get(merchant_id)
            if merchant is None:
                merchant = self._build(merchant_id)
                self._merchants[merchant_id] = merchant
            return merchant

    def _build(self, merchant_id: str) -> Merchant:
        try:
            config = self.config.merchants[merchant_id]
        except KeyError:
            raise UnknownMerchant(merchant_id, self.merchant_ids) from None
        backend_class = self.registry.get(config.backend)
        cache = BackendCache(lambda: self.store, merchant_id) if self._outbox else None
        context = attrs.evolve(config.context(), plugin_manager=self.plugin_manager, cache=cache)
        backend = backend_class(config.settings, context)
        store = (lambda: self.store) if self._outbox else None
        return Merchant(config, backend, self.plugin_manager, store)

    def close(self) -> None:
        """Close every backend built so far, and the store if this bridge opened it."""
        with self._lock:
            merchants, self._merchants = list(self._merchants.values()), {}
            store, owned = self._store, self._owns_store
            if owned:
                self._store = None
        for merchant in merchants:
            merchant.backend.close()
        if store is not None and owned:
            store.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
