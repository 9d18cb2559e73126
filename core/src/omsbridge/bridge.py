"""The entry point for the POS platform: one config, many merchants, one backend each.

>>> bridge = Bridge.from_config("omsbridge.toml")
>>> result = bridge.for_merchant("SHOPNOW").post(transaction)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pluggy

from omsbridge.config import Config, MerchantConfig, load_config
from omsbridge.errors import BackendError, UnknownMerchant
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
from omsbridge.plugins import call_observers, get_plugin_manager
from omsbridge.registry import BackendRegistry
from omsbridge.spi import POST_CAPABILITY, Capability, OrderBackend

__all__ = ["Bridge", "Merchant"]


class Merchant:
    """One merchant's view of its backend: the SPI operations, with observers told what happened.

    Operations the backend does not declare in ``capabilities`` raise
    :class:`~omsbridge.errors.Unsupported` before any request is made.
    """

    def __init__(
        self, config: MerchantConfig, backend: OrderBackend, pm: pluggy.PluginManager
    ) -> None:
        self.config = config
        self.backend = backend
        self._pm = pm

    @property
    def merchant_id(self) -> str:
        """The merchant's id in the config file."""
        return self.config.merchant_id

    def __repr__(self) -> str:
        return f"<Merchant {self.merchant_id} backend={self.backend.name}>"

    def _require(self, capability: Capability, operation: str) -> None:
        if capability not in self.backend.capabilities:
            raise self.backend._unsupported(operation)

    def post(self, transaction: Transaction) -> PostResult:
        """Post a transaction (idempotent on its id) and tell the observers."""
        if not isinstance(transaction, Transaction):
            raise TypeError(f"post() takes a Transaction, got {type(transaction).__name__}")
        self._require(POST_CAPABILITY[transaction.kind], f"post of a {transaction.kind}")
        try:
            result = self.backend.post(transaction)
        except BackendError as error:
            call_observers(
                self._pm,
                "omsbridge_post_failed",
                merchant_id=self.merchant_id,
                transaction=transaction,
                error=error,
            )
            raise
        call_observers(
            self._pm,
            "omsbridge_order_posted",
            merchant_id=self.merchant_id,
            transaction=transaction,
            result=result,
        )
        return result

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
        """Report a store's fulfillment step to the OMS and tell the observers."""
        self._require(Capability.UPDATE_FULFILLMENT, "update_fulfillment")
        self.backend.update_fulfillment(update)
        call_observers(
            self._pm, "omsbridge_fulfillment_updated", merchant_id=self.merchant_id, update=update
        )

    def events(self, checkpoint: str | None, *, wait: float = 0.0) -> EventBatch:
        """Read the backend's fulfillment events after ``checkpoint``."""
        self._require(Capability.EVENTS, "events")
        return self.backend.events(checkpoint, wait=wait)

    def deliver(self, fulfillment_order: FulfillmentOrder) -> list[BaseException]:
        """Hand an imported fulfillment order to every ``omsbridge_fulfillment_order_received``
        observer, each isolated; returns the failures."""
        return call_observers(
            self._pm,
            "omsbridge_fulfillment_order_received",
            merchant_id=self.merchant_id,
            fulfillment_order=fulfillment_order,
        )


class Bridge:
    """All merchants of one config. Backends are built on first use, once, and shared by threads."""

    def __init__(
        self,
        config: Config,
        *,
        registry: BackendRegistry | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        self.config = config
        self.plugin_manager = plugin_manager or get_plugin_manager()
        self.registry = registry or BackendRegistry.from_plugins(self.plugin_manager)
        self._merchants: dict[str, Merchant] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls,
        path: str | Path,
        *,
        registry: BackendRegistry | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> Bridge:
        """Load a config file (every problem reported at once) and make a bridge for it."""
        pm = plugin_manager or get_plugin_manager()
        registry = registry or BackendRegistry.from_plugins(pm)
        return cls(load_config(path, registry), registry=registry, plugin_manager=pm)

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
        backend = backend_class(config.settings, config.context())
        return Merchant(config, backend, self.plugin_manager)

    def close(self) -> None:
        """Close every backend built so far."""
        with self._lock:
            merchants, self._merchants = list(self._merchants.values()), {}
        for merchant in merchants:
            merchant.backend.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
