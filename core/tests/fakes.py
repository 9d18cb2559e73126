"""Small in-memory backends the core tests register by hand (no entry points involved)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs

from omsbridge import Capability, OrderBackend, PostResult, Secret, Transaction, hookimpl
from omsbridge.config import positive
from omsbridge.errors import NotFound
from omsbridge.model import OrderDetail, OrderLine, OrderTotals


@attrs.frozen
class MemorySettings:
    """Settings of the in-memory backend (exercise every config feature the loader has)."""

    endpoint: str
    api_key: Secret
    timeout: float = attrs.field(default=5.0, validator=positive())
    tags: tuple[str, ...] = ()


class MemoryBackend(OrderBackend):
    """Posts into a dict; idempotent on transaction id. Counts instances built."""

    name = "memory"
    config_class = MemorySettings
    capabilities = frozenset({Capability.POST_SALE, Capability.POST_RETURN, Capability.GET_ORDER})
    description = "in-memory test backend"
    built = 0

    def __init__(self, config: MemorySettings, merchant: object) -> None:
        super().__init__(config, merchant)  # type: ignore[arg-type]
        type(self).built += 1
        self.orders: dict[str, Transaction] = {}
        self._lock = threading.Lock()

    def post(self, transaction: Transaction) -> PostResult:
        with self._lock:
            created = transaction.transaction_id not in self.orders
            self.orders.setdefault(transaction.transaction_id, transaction)
        return PostResult(
            transaction.transaction_id, f"O-{transaction.transaction_id}", created=created
        )

    def get_order(self, order_id: str) -> OrderDetail:
        txn = self.orders.get(order_id.removeprefix("O-"))
        if txn is None:
            raise NotFound(f"no order {order_id}", backend=self.name)
        return OrderDetail(
            order_id=order_id,
            order_number=order_id,
            backend_status="Activated",
            placed_at=txn.created_at,
            currency=txn.currency,
            totals=OrderTotals(txn.total),
            lines=tuple(
                OrderLine(line.line_number, line.sku, line.quantity, line.unit_price, line.total)
                for line in txn.lines
            ),
        )


@attrs.frozen
class OtherSettings:
    """Settings of the second test backend."""

    url: str = "http://127.0.0.1"


class OtherBackend(OrderBackend):
    """A second backend, so dual-mode configs can be written."""

    name = "other"
    config_class = OtherSettings


class MemoryPlugin:
    """A plugin object registering both test backends."""

    @hookimpl
    def omsbridge_register_backends(self, register: Callable[[type[OrderBackend]], None]) -> None:
        register(MemoryBackend)
        register(OtherBackend)
