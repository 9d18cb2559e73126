"""A complete in-memory reference backend, its harness, and a plugin registering both.

:class:`MemoryBackend` passes every contract scenario; read it to see what each operation must
do, or run the suite against it to compare with your own backend::

    # conftest.py
    pytest_plugins = ["omsbridge_contract.plugin"]

    def pytest_omsbridge_plugin_manager(config):
        from omsbridge.plugins import new_plugin_manager
        from omsbridge_contract.testing import memory_plugin
        pm = new_plugin_manager()
        pm.register(memory_plugin(), name="memory")
        return pm

    $ pytest --oms-backend memory

It is also what the kit's own tests break on purpose (a subclass that posts twice, returns
floats, maps 503 wrongly...), to prove the scenarios catch each breakage.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from omsbridge import hookimpl, wire
from omsbridge.errors import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidTransaction,
    Issue,
    NotFound,
    RateLimited,
    Rejected,
    TransientBackendError,
)
from omsbridge.model import (
    CancelLine,
    CancelResult,
    Customer,
    EventBatch,
    FulfillmentAction,
    FulfillmentEvent,
    FulfillmentKind,
    FulfillmentOrder,
    FulfillmentOrderLine,
    FulfillmentUpdate,
    LineKind,
    OrderDetail,
    OrderHit,
    OrderLine,
    OrderPage,
    OrderQuery,
    OrderStatus,
    OrderTotals,
    Payment,
    PaymentKind,
    PostResult,
    Shipment,
    Transaction,
)
from omsbridge.spi import Capability, MerchantContext, OrderBackend
from omsbridge_contract.harness import Fault, Harness, OnlineOrder

__all__ = ["MemoryBackend", "MemoryConfig", "MemoryHarness", "MemoryStore", "memory_plugin"]

ZERO = Decimal(0)
_WAITING = {"ALLOCATED", "IN_TRANSIT", "RECEIVED", "PICKED", "PACKED", "READY_FOR_PICKUP"}
_STEPS: dict[FulfillmentAction, tuple[str, frozenset[str]]] = {
    FulfillmentAction.PICK: ("PICKED", frozenset({"ALLOCATED"})),
    FulfillmentAction.PACK: ("PACKED", frozenset({"ALLOCATED", "PICKED"})),
    FulfillmentAction.READY_FOR_PICKUP: (
        "READY_FOR_PICKUP",
        frozenset({"ALLOCATED", "RECEIVED", "PICKED", "PACKED"}),
    ),
    FulfillmentAction.PICKED_UP: ("PICKED_UP", frozenset({"READY_FOR_PICKUP"})),
    FulfillmentAction.SHIPPED: ("SHIPPED", frozenset({"ALLOCATED", "PICKED", "PACKED"})),
    FulfillmentAction.CANCEL: ("CANCELLED", frozenset(_WAITING)),
    FulfillmentAction.REJECT: ("REJECTED", frozenset({"ALLOCATED", "PICKED", "PACKED"})),
    FulfillmentAction.RECEIVED: ("RECEIVED", frozenset({"IN_TRANSIT"})),
}


@attrs.frozen
class MemoryConfig:
    """Settings of the in-memory backend: which :class:`MemoryStore` it talks to."""

    store: str = "default"


@attrs.define
class _Line:
    line_number: int
    sku: str
    quantity: Decimal
    unit_price: Decimal
    total: Decimal
    kind: LineKind = LineKind.SALE
    name: str | None = None
    external_line_id: str | None = None
    method: str | None = None
    fulfilled: Decimal = ZERO
    cancelled: Decimal = ZERO
    returned: Decimal = ZERO

    @property
    def open(self) -> Decimal:
        """Ordered but neither fulfilled nor cancelled."""
        return self.quantity - self.fulfilled - self.cancelled


@attrs.define
class _Order:
    order_id: str
    order_number: str
    transaction_id: str | None
    placed_at: datetime
    currency: str
    total: Decimal
    store_id: str | None
    customer: Customer | None
    lines: list[_Line]
    payments: tuple[Payment, ...]
    seq: int
    shipments: list[Shipment] = attrs.Factory(list)
    returned_value: Decimal = ZERO
    refunds: list[Payment] = attrs.Factory(list)
    return_of: str | None = None

    @property
    def totals(self) -> OrderTotals:
        """Ordered as placed, cancelled pro rata of each line, returned as refunded."""
        cancelled = sum(
            (
                (line.total * line.cancelled / line.quantity).quantize(Decimal("0.01"))
                for line in self.lines
                if line.kind == LineKind.SALE and line.quantity > 0
            ),
            ZERO,
        )
        return OrderTotals(self.total, cancelled, self.returned_value)

    def line(self, number: int) -> _Line | None:
        """The line with this number, if any."""
        return next((line for line in self.lines if line.line_number == number), None)

    @property
    def status(self) -> str:
        """The order's status, from its lines' quantities."""
        sold = [line for line in self.lines if line.kind == LineKind.SALE]
        if not sold:
            return "COMPLETED"
        if all(line.cancelled == line.quantity for line in sold):
            return "CANCELLED"
        if any(line.open > 0 for line in sold):
            return "OPEN"
        return "RETURNED" if any(line.returned for line in sold) else "COMPLETED"


@attrs.define
class _Fo:
    fo_id: str
    order_id: str
    store_id: str
    kind: FulfillmentKind
    status: str
    lines: list[tuple[str, int, Decimal]]  # (fo line id, order line number, quantity)


class MemoryStore:
    """The "OMS" behind :class:`MemoryBackend`: orders, fulfillment orders, events, faults."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.orders: dict[str, _Order] = {}
        self.by_transaction: dict[str, str] = {}
        self.fos: dict[str, _Fo] = {}
        self.events: list[FulfillmentEvent] = []
        self.fault: Fault | None = None
        self._numbers = itertools.count(1)

    def next_number(self) -> int:
        """A fresh sequence number (orders, payments, fulfillment orders...)."""
        return next(self._numbers)

    def find(self, ref: str) -> _Order | None:
        """An order by id, order number or transaction id."""
        order = self.orders.get(ref)
        if order is not None:
            return order
        for candidate in self.orders.values():
            if ref in (candidate.order_number, candidate.transaction_id):
                return candidate
        return None

    def emit(self, fo: _Fo, old: str | None) -> None:
        """Record a status change of ``fo`` in the event feed."""
        seq = len(self.events) + 1
        self.events.append(
            FulfillmentEvent(
                event_id=f"EV-{seq}",
                fulfillment_order_id=fo.fo_id,
                new_status=fo.status,
                checkpoint=str(seq),
                old_status=old,
                order_id=fo.order_id,
            )
        )


_STORES: dict[str, MemoryStore] = {}


def store_named(name: str) -> MemoryStore:
    """The shared store called ``name`` (created on first use)."""
    return _STORES.setdefault(name, MemoryStore())


class MemoryBackend(OrderBackend):
    """A correct backend kept in memory: the reference every contract scenario passes."""

    name = "memory"
    config_class = MemoryConfig
    capabilities = frozenset(Capability)
    description = "In-memory reference backend of the contract suite"

    def __init__(self, config: MemoryConfig, merchant: MerchantContext) -> None:
        super().__init__(config, merchant)
        self.store = store_named(config.store)

    # -- the "HTTP" layer: faults and their mapping ---------------------------------------------

    def _call(self, operation: str) -> None:
        """Behave as a remote call would under the store's injected fault."""
        fault = self.store.fault
        if fault is Fault.TIMEOUT:
            raise TransientBackendError(
                f"{operation}: timed out", code="TIMEOUT", backend=self.name
            )
        statuses = {Fault.SERVER_ERROR: 503, Fault.AUTH: 401, Fault.RATE_LIMIT: 429}
        if fault is not None and fault in statuses:
            raise self.error_for_status(statuses[fault], operation)

    def error_for_status(self, status: int, operation: str) -> BackendError:
        """Map an HTTP-style status to the core taxonomy."""
        message = f"{operation}: HTTP {status}"
        if status == 401:
            return AuthFailed(message, code="UNAUTHORIZED", status=status, backend=self.name)
        if status == 429:
            return RateLimited(
                message, retry_after=1.0, code="RATE_LIMITED", status=status, backend=self.name
            )
        return TransientBackendError(message, code="UNAVAILABLE", status=status, backend=self.name)

    def _fail(self, cls: type[BackendError], message: str, code: str, **kw: Any) -> BackendError:
        return cls(message, code=code, backend=self.name, **kw)

    def _order(self, ref: str) -> _Order:
        order = self.store.find(ref)
        if order is None:
            raise self._fail(NotFound, f"no order {ref}", "ORDER_NOT_FOUND")
        return order

    # -- the SPI --------------------------------------------------------------------------------

    def post(self, transaction: Transaction) -> PostResult:
        """Store the transaction as one order; the same transaction id finds the same order."""
        self._call("post")
        # Re-check every invariant, as a remote OMS reading the native JSON would: a
        # transaction may have been built around its constructor's checks.
        try:
            wire.structure(wire.unstructure(transaction), Transaction)
        except InvalidTransaction as exc:
            raise InvalidTransaction(exc.issues, code="INVALID", backend=self.name) from None
        with self.store.lock:
            known = self.store.by_transaction.get(transaction.transaction_id)
            if known is not None:
                order = self.store.orders[known]
                order = self.store.orders[order.return_of or order.order_id]
                return PostResult(
                    transaction.transaction_id, order.order_id, order.order_number, False
                )
            originals = self._originals(transaction)
            n = self.store.next_number()
            order = _Order(
                order_id=f"MO-{n}",
                order_number=transaction.order_number or f"M{n:06d}",
                transaction_id=transaction.transaction_id,
                placed_at=transaction.created_at,
                currency=transaction.currency,
                total=transaction.total,
                store_id=transaction.store_id,
                customer=transaction.customer,
                lines=[],
                payments=tuple(
                    Payment(
                        payment_id=f"MP-{n}-{i}",
                        method=tender.tag,
                        amount=tender.amount,
                        status="PROCESSED",
                        brand=getattr(tender, "brand", None) or getattr(tender, "wallet", None),
                        last4=getattr(tender, "last4", None),
                        kind=PaymentKind(tender.tag),
                        captured=tender.amount if tender.amount > 0 else None,
                    )
                    for i, tender in enumerate(transaction.tenders, start=1)
                ),
                seq=n,
            )
            for line in transaction.lines:
                is_return = line.kind == LineKind.RETURN
                handed_over = is_return or line.fulfillment.is_take_with
                order.lines.append(
                    _Line(
                        line_number=line.line_number,
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        total=line.signed_total,
                        kind=line.kind,
                        name=line.name,
                        external_line_id=line.line_id,
                        method=None if is_return else line.fulfillment.method_name,
                        fulfilled=line.quantity if handed_over else ZERO,
                    )
                )
            for target, quantity in originals:
                target.returned += quantity
            for line in transaction.lines:
                source = self.store.find(line.original.order_id) if line.original else None
                if line.kind == LineKind.RETURN and source is not None:
                    # The return folds into its original's totals (the read model's meaning).
                    source.returned_value -= line.signed_total
                    if transaction.kind == "RETURN" and order.return_of is None:
                        order.return_of = source.order_id
            if order.return_of is not None:
                self.store.orders[order.return_of].refunds.extend(order.payments)
            self.store.orders[order.order_id] = order
            self.store.by_transaction[transaction.transaction_id] = order.order_id
            shown = self.store.orders[order.return_of or order.order_id]
            return PostResult(transaction.transaction_id, shown.order_id, shown.order_number, True)

    def _originals(self, transaction: Transaction) -> list[tuple[_Line, Decimal]]:
        found: list[tuple[_Line, Decimal]] = []
        taken: dict[int, Decimal] = {}
        for index, line in enumerate(transaction.lines):
            ref = line.original
            if line.kind != LineKind.RETURN or ref is None:
                continue
            order = self.store.find(ref.order_id)
            if order is None:
                raise self._fail(
                    Rejected,
                    f"lines[{index}].original.order_id: no order {ref.order_id}",
                    "ORIGINAL_ORDER_NOT_FOUND",
                )
            target = next(
                (
                    sold
                    for sold in order.lines
                    if sold.kind == LineKind.SALE
                    and sold.sku == line.sku
                    and (ref.line_id is None or ref.line_id == sold.external_line_id)
                    and (ref.line_number is None or ref.line_number == sold.line_number)
                ),
                None,
            )
            if target is None:
                raise self._fail(
                    Rejected,
                    f"lines[{index}].original: no such sold line",
                    "ORIGINAL_LINE_NOT_FOUND",
                )
            want = taken.get(id(target), ZERO) + line.quantity
            self._check_returnable(target, want, f"lines[{index}]")
            taken[id(target)] = want
            found.append((target, line.quantity))
        return found

    def _check_returnable(self, target: _Line, want: Decimal, path: str) -> None:
        if want > target.fulfilled - target.returned:
            raise self._fail(
                Rejected,
                f"{path}.quantity: returns {want}, only "
                f"{target.fulfilled - target.returned} returnable",
                "RETURN_QUANTITY_EXCEEDED",
            )

    def get_order(self, order_id: str) -> OrderDetail:
        """One order with lines, payments, fulfillment orders and shipments."""
        self._call("get_order")
        with self.store.lock:
            order = self._order(order_id)
            return OrderDetail(
                order_id=order.order_id,
                order_number=order.order_number,
                backend_status=order.status,
                placed_at=order.placed_at,
                currency=order.currency,
                totals=order.totals,
                lines=tuple(self._order_line(line) for line in order.lines),
                payments=order.payments + tuple(order.refunds),
                fulfillment_orders=tuple(
                    self._fo(fo) for fo in self.store.fos.values() if fo.order_id == order.order_id
                ),
                shipments=tuple(order.shipments),
                customer=order.customer,
                store_id=order.store_id,
                transaction_id=order.transaction_id,
            )

    def _order_line(self, line: _Line) -> OrderLine:
        return OrderLine(
            line_number=line.line_number,
            sku=line.sku,
            quantity_ordered=line.quantity,
            unit_price=line.unit_price,
            total=line.total,
            name=line.name,
            line_id=f"{line.line_number}",
            external_line_id=line.external_line_id,
            quantity_fulfilled=line.fulfilled,
            quantity_cancelled=line.cancelled,
            quantity_returned=line.returned,
            fulfillment_method=line.method,
        )

    def search_orders(self, query: OrderQuery) -> OrderPage:
        """Newest first; exact email and customer id, case-insensitive name prefixes."""
        self._call("search_orders")
        offset = 0
        if query.cursor is not None:
            if not query.cursor.startswith("m:") or not query.cursor[2:].isdigit():
                raise InvalidTransaction(
                    [Issue("cursor", "is not a cursor this backend issued")],
                    code="INVALID_CURSOR",
                    backend=self.name,
                )
            offset = int(query.cursor[2:])

        def matches(order: _Order) -> bool:
            c = order.customer or Customer(customer_id="?")
            checks = [
                query.order_number is None or query.order_number == order.order_number,
                query.email is None or (c.email or "").lower() == query.email.lower(),
                query.customer_id is None or query.customer_id == c.customer_id,
                query.first_name is None
                or (c.first_name or "").lower().startswith(query.first_name.lower()),
                query.last_name is None
                or (c.last_name or "").lower().startswith(query.last_name.lower()),
                query.placed_from is None or order.placed_at >= query.placed_from,
                query.placed_to is None or order.placed_at <= query.placed_to,
            ]
            return all(checks)

        with self.store.lock:
            found = sorted(
                (o for o in self.store.orders.values() if matches(o)), key=lambda o: -o.seq
            )
            page = found[offset : offset + query.page_size]
            more = offset + query.page_size < len(found)
            hits = tuple(
                OrderHit(
                    order_id=o.order_id,
                    order_number=o.order_number,
                    placed_at=o.placed_at,
                    total=o.totals.net or ZERO,
                    currency=o.currency,
                    status=OrderStatus.of(self._order_line(line) for line in o.lines),
                    backend_status=o.status,
                    item_count=int(sum((line.quantity for line in o.lines), ZERO)),
                    email=o.customer.email if o.customer else None,
                    customer_name=o.customer.full_name if o.customer else None,
                )
                for o in page
            )
        cursor = f"m:{offset + query.page_size}" if more else None
        return OrderPage(hits=hits, next_cursor=cursor, total_size=len(found))

    def cancel_order(self, order_id: str, *, reason: str) -> CancelResult:
        """Cancel every open quantity; a cancelled order is a Conflict."""
        self._call("cancel_order")
        with self.store.lock:
            order = self._order(order_id)
            if order.status == "CANCELLED":
                raise self._fail(
                    Conflict, f"order {order.order_id} is cancelled", "ALREADY_CANCELLED"
                )
            wanted = [
                CancelLine(line.line_number, line.open)
                for line in order.lines
                if line.kind == LineKind.SALE and line.open > 0
            ]
            if not wanted:
                raise self._fail(Rejected, "nothing open to cancel", "NOTHING_TO_CANCEL")
            return self._cancel(order, wanted)

    def cancel_items(
        self, order_id: str, lines: Sequence[CancelLine], *, reason: str
    ) -> CancelResult:
        """Cancel quantities of lines, all or nothing."""
        self._call("cancel_items")
        with self.store.lock:
            order = self._order(order_id)
            for index, wanted in enumerate(lines):
                line = order.line(wanted.line_number)
                if line is None:
                    raise self._fail(
                        NotFound,
                        f"lines[{index}].line_number: no line {wanted.line_number}",
                        "LINE_NOT_FOUND",
                    )
                if wanted.quantity > line.open:
                    raise self._fail(
                        Rejected,
                        f"lines[{index}].quantity: only {line.open} open",
                        "QUANTITY_NOT_CANCELLABLE",
                    )
            return self._cancel(order, lines)

    def _cancel(self, order: _Order, lines: Sequence[CancelLine]) -> CancelResult:
        for wanted in lines:
            line = order.line(wanted.line_number)
            assert line is not None
            line.cancelled += wanted.quantity
        for fo in self.store.fos.values():
            mine = fo.order_id == order.order_id and fo.status in _WAITING
            if mine and all(line.open == 0 for line in order.lines if line.kind == LineKind.SALE):
                old, fo.status = fo.status, "CANCELLED"
                self.store.emit(fo, old)
        return CancelResult(order.order_id, tuple(lines), order.status)

    def fulfillment_orders(self, *, store_id: str | None = None) -> Sequence[FulfillmentOrder]:
        """Fulfillment orders still waiting on a store."""
        self._call("fulfillment_orders")
        with self.store.lock:
            return tuple(
                self._fo(fo)
                for fo in self.store.fos.values()
                if fo.status in _WAITING and store_id in (None, fo.store_id)
            )

    def _fo(self, fo: _Fo) -> FulfillmentOrder:
        order = self.store.orders[fo.order_id]
        lines = []
        for line_id, number, quantity in fo.lines:
            line = order.line(number)
            assert line is not None
            lines.append(
                FulfillmentOrderLine(
                    line_id=line_id,
                    sku=line.sku,
                    quantity=quantity,
                    unit_price=line.unit_price,
                    name=line.name,
                    order_line_number=number,
                )
            )
        return FulfillmentOrder(
            fulfillment_order_id=fo.fo_id,
            order_id=fo.order_id,
            status=fo.status,
            kind=fo.kind,
            lines=tuple(lines),
            currency=order.currency,
            order_number=order.order_number,
            store_id=fo.store_id,
            customer=order.customer,
        )

    def update_fulfillment(self, update: FulfillmentUpdate) -> None:
        """Move a fulfillment order along; a step that does not follow is a Conflict."""
        self._call("update_fulfillment")
        with self.store.lock:
            fo = self.store.fos.get(update.fulfillment_order_id)
            if fo is None:
                raise self._fail(
                    NotFound, f"no fulfillment order {update.fulfillment_order_id}", "FO_NOT_FOUND"
                )
            target, allowed = _STEPS[update.action]
            if fo.status not in allowed:
                raise self._fail(
                    Conflict,
                    f"{fo.fo_id} is {fo.status}; cannot {update.action}",
                    "INVALID_TRANSITION",
                )
            order = self.store.orders[fo.order_id]
            if update.action in (FulfillmentAction.PICKED_UP, FulfillmentAction.SHIPPED):
                for _, number, quantity in fo.lines:
                    line = order.line(number)
                    assert line is not None
                    line.fulfilled += quantity
            if update.action in (FulfillmentAction.CANCEL, FulfillmentAction.REJECT):
                for _, number, quantity in fo.lines:
                    line = order.line(number)
                    assert line is not None
                    line.cancelled += min(quantity, line.open)
            if update.action == FulfillmentAction.SHIPPED:
                order.shipments.append(
                    Shipment(
                        shipment_id=f"SH-{self.store.next_number()}",
                        fulfillment_order_id=fo.fo_id,
                        carrier=update.carrier,
                        tracking_number=update.tracking_number,
                        status="SHIPPED",
                    )
                )
            old, fo.status = fo.status, target
            self.store.emit(fo, old)

    def events(self, checkpoint: str | None, *, wait: float = 0.0) -> EventBatch:
        """Events after ``checkpoint``; None starts from now."""
        self._call("events")
        with self.store.lock:
            if checkpoint is None:
                start = len(self.store.events)
            elif checkpoint.isdigit():
                start = int(checkpoint)
            else:
                raise InvalidTransaction(
                    [Issue("checkpoint", "is not a checkpoint of this feed")], backend=self.name
                )
            events = tuple(self.store.events[start:])
            return EventBatch(events, events[-1].checkpoint if events else str(start))


class MemoryHarness(Harness):
    """The harness of :class:`MemoryBackend`: a fresh store per session, faults by flag."""

    backend = "memory"
    faults = frozenset(Fault)

    def start(self) -> None:
        """Make this session's own store."""
        self.store_name = f"contract-{id(self)}"
        _STORES[self.store_name] = MemoryStore()

    def stop(self) -> None:
        """Forget the store."""
        _STORES.pop(self.store_name, None)

    @property
    def store(self) -> MemoryStore:
        """This session's store."""
        return _STORES[self.store_name]

    def settings(self) -> dict[str, Any]:
        """The config-file form of :class:`MemoryConfig`."""
        return {"store": self.store_name}

    def order_count(self) -> int:
        """Every order in the store."""
        return len(self.store.orders)

    def seed_online_order(self, order: OnlineOrder) -> str:
        """An online order, shipped or still open."""
        return self._online(order, fo=None).order_id

    def _online(self, spec: OnlineOrder, fo: tuple[str, FulfillmentKind] | None) -> _Order:
        store = self.store
        with store.lock:
            n = store.next_number()
            order = _Order(
                order_id=f"MO-{n}",
                order_number=f"W{n:06d}",
                transaction_id=None,
                placed_at=spec.placed_at,
                currency=spec.currency,
                total=spec.total,
                store_id=fo[0] if fo else None,
                customer=spec.customer,
                lines=[
                    _Line(
                        line_number=line.line_number,
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        total=line.quantity * line.unit_price,
                        name=line.name,
                        method="ONLINE-DEFAULT",
                        fulfilled=line.quantity if spec.shipped else ZERO,
                    )
                    for line in spec.lines
                ],
                payments=(
                    Payment(
                        f"MP-{n}",
                        "card",
                        spec.total,
                        "CAPTURED",
                        last4="4242",
                        kind=PaymentKind.CARD,
                        captured=spec.total,
                    ),
                ),
                seq=n,
            )
            store.orders[order.order_id] = order
            if fo is not None:
                record = _Fo(
                    fo_id=f"MFO-{n}",
                    order_id=order.order_id,
                    store_id=fo[0],
                    kind=fo[1],
                    status="IN_TRANSIT" if fo[1] == FulfillmentKind.SHIP_TO_STORE else "ALLOCATED",
                    lines=[
                        (f"MFOL-{n}-{line.line_number}", line.line_number, line.quantity)
                        for line in order.lines
                    ],
                )
                store.fos[record.fo_id] = record
                store.emit(record, None)
            return order

    def make_fulfillment_order(
        self, store_id: str, kind: FulfillmentKind, *, ref: str, customer: Customer
    ) -> str:
        """An online order routed to ``store_id`` with one waiting fulfillment order."""
        from omsbridge_contract.harness import OnlineLine

        spec = OnlineOrder(
            ref=ref,
            customer=customer,
            lines=(OnlineLine(1, f"SKU-{ref}", Decimal(2), Decimal("15.00")),),
            placed_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
            shipped=False,
        )
        order = self._online(spec, fo=(store_id, kind))
        return next(fo.fo_id for fo in self.store.fos.values() if fo.order_id == order.order_id)

    def inject_fault(self, fault: Fault) -> None:
        """Every backend call fails with ``fault`` until cleared."""
        self.store.fault = fault

    def clear_faults(self) -> None:
        """Back to normal."""
        self.store.fault = None


def memory_plugin(
    backend: type[OrderBackend] = MemoryBackend, harness: type[Harness] = MemoryHarness
) -> object:
    """An omsbridge plugin object registering ``backend`` and ``harness`` (for a plugin manager)."""

    class _Plugin:
        @staticmethod
        @hookimpl
        def omsbridge_register_backends(register: Callable[[type[OrderBackend]], None]) -> None:
            """Offer the backend."""
            register(backend)

        @staticmethod
        @hookimpl(optionalhook=True)
        def omsbridge_contract_harnesses(register: Callable[[type[Harness]], None]) -> None:
            """Offer its harness."""
            register(harness)

    return _Plugin()
