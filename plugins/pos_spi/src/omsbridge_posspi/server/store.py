"""The reference server's state: orders, lines, fulfillment orders and events in SQLite.

One connection, guarded by a lock, in WAL mode when it is a file: simple, thread-safe, and enough
for a demo or a small merchant. Every operation runs in one transaction, so a refused request
writes nothing. Amounts and quantities are stored as decimal strings, times as ISO 8601.

**Line numbers.** Each order line gets the server's own order item id, a number unique across the
store, and that id *is* its ``line_number``. A return is its own order, so its lines get new
numbers: returning line 1 of the first sale creates line 2 (the seed's "LineNumber: 1 ->
LineNumber: 2"). The return line keeps the link to what it returns (``original_order_id``,
``original_item_id``); the POS's own line id is kept as ``external_line_id``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from omsbridge import cursor, wire
from omsbridge.errors import InvalidTransaction
from omsbridge.model import (
    Address,
    CancelLine,
    CancelResult,
    Customer,
    EventBatch,
    FulfillmentAction,
    FulfillmentEvent,
    FulfillmentKind,
    FulfillmentOrder,
    FulfillmentOrderLine,
    FulfillmentType,
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
    Tender,
    Transaction,
)
from omsbridge.model._checks import minor_units
from omsbridge_posspi.server.errors import ApiError

__all__ = ["FO_STATUSES", "SeedLine", "SeededOrder", "SpiStore"]

ZERO = Decimal(0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id       TEXT NOT NULL UNIQUE,
    order_number   TEXT NOT NULL UNIQUE,
    transaction_id TEXT UNIQUE,          -- the POS transaction; NULL for seeded online orders
    channel        TEXT NOT NULL,        -- POS or ONLINE
    kind           TEXT NOT NULL,        -- SALE, RETURN or EXCHANGE
    status         TEXT NOT NULL,
    placed_at      TEXT NOT NULL,        -- as given, with its offset
    placed_at_utc  TEXT NOT NULL,        -- fixed-width UTC, for range search
    currency       TEXT NOT NULL,
    total          TEXT NOT NULL,
    store_id       TEXT,
    customer_id    TEXT,
    email          TEXT COLLATE NOCASE,
    first_name     TEXT COLLATE NOCASE,
    last_name      TEXT COLLATE NOCASE,
    customer       TEXT,                 -- native JSON of Customer
    payments       TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS order_lines (
    item_id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order item id = line_number
    order_id           TEXT NOT NULL REFERENCES orders(order_id),
    kind               TEXT NOT NULL,   -- SALE or RETURN
    pos_line_number    INTEGER,
    external_line_id   TEXT,
    sku                TEXT NOT NULL,
    name               TEXT,
    unit_price         TEXT NOT NULL,
    total              TEXT NOT NULL,   -- negative for a RETURN line
    quantity_ordered   TEXT NOT NULL,
    quantity_fulfilled TEXT NOT NULL DEFAULT '0',
    quantity_cancelled TEXT NOT NULL DEFAULT '0',
    quantity_returned  TEXT NOT NULL DEFAULT '0',
    fulfillment_method TEXT,
    original_order_id  TEXT,
    original_item_id   INTEGER
);
CREATE TABLE IF NOT EXISTS fulfillment_orders (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    fulfillment_order_id TEXT NOT NULL UNIQUE,
    order_id             TEXT NOT NULL REFERENCES orders(order_id),
    store_id             TEXT,
    kind                 TEXT NOT NULL,
    status               TEXT NOT NULL,
    delivery_method      TEXT,
    ship_to              TEXT,          -- native JSON of Address
    created_at           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fulfillment_order_lines (
    line_id              TEXT PRIMARY KEY,
    fulfillment_order_id TEXT NOT NULL REFERENCES fulfillment_orders(fulfillment_order_id),
    item_id              INTEGER NOT NULL REFERENCES order_lines(item_id),
    quantity             TEXT NOT NULL,
    quantity_cancelled   TEXT NOT NULL DEFAULT '0',
    quantity_received    TEXT NOT NULL DEFAULT '0'
);
CREATE TABLE IF NOT EXISTS shipments (
    shipment_id          TEXT PRIMARY KEY,
    fulfillment_order_id TEXT NOT NULL,
    order_id             TEXT NOT NULL,
    carrier              TEXT,
    tracking_number      TEXT,
    shipped_at           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,  -- the checkpoint
    event_id             TEXT NOT NULL UNIQUE,
    fulfillment_order_id TEXT NOT NULL,
    order_id             TEXT,
    old_status           TEXT,
    new_status           TEXT NOT NULL,
    occurred_at          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key         TEXT PRIMARY KEY,       -- the Idempotency-Key: the POS transaction id
    body_sha256 TEXT NOT NULL,
    order_id    TEXT NOT NULL
);
"""

# Fulfillment-order statuses, and what each store step moves them to (from which statuses,
# for which kinds of fulfillment order).
FO_STATUSES = (
    "ALLOCATED", "IN_TRANSIT", "PARTIALLY_RECEIVED", "RECEIVED", "PICKED", "PACKED",
    "READY_FOR_PICKUP", "PICKED_UP", "SHIPPED", "CANCELLED", "REJECTED",
)  # fmt: skip
_TERMINAL = {"PICKED_UP", "SHIPPED", "CANCELLED", "REJECTED"}
_INBOUND = {"IN_TRANSIT", "PARTIALLY_RECEIVED"}  # a ship-to-store parcel still on its way
_ALL_KINDS = frozenset(FulfillmentKind)
_PICKUP_KINDS = frozenset({FulfillmentKind.PICKUP, FulfillmentKind.SHIP_TO_STORE})
_STEPS: dict[FulfillmentAction, tuple[str, frozenset[str], frozenset[FulfillmentKind]]] = {
    FulfillmentAction.PICK: ("PICKED", frozenset({"ALLOCATED", "RECEIVED"}), _ALL_KINDS),
    FulfillmentAction.PACK: ("PACKED", frozenset({"ALLOCATED", "PICKED", "RECEIVED"}), _ALL_KINDS),
    FulfillmentAction.READY_FOR_PICKUP: (
        "READY_FOR_PICKUP",
        frozenset({"ALLOCATED", "PICKED", "PACKED", "RECEIVED"}),
        _PICKUP_KINDS,
    ),
    FulfillmentAction.PICKED_UP: ("PICKED_UP", frozenset({"READY_FOR_PICKUP"}), _PICKUP_KINDS),
    FulfillmentAction.SHIPPED: (
        "SHIPPED",
        frozenset({"ALLOCATED", "PICKED", "PACKED"}),
        frozenset({FulfillmentKind.SHIP_FROM_STORE}),
    ),
    FulfillmentAction.RECEIVED: (
        "RECEIVED",
        frozenset({"IN_TRANSIT", "PARTIALLY_RECEIVED"}),
        frozenset({FulfillmentKind.SHIP_TO_STORE}),
    ),
    FulfillmentAction.CANCEL: ("CANCELLED", frozenset(FO_STATUSES) - _TERMINAL, _ALL_KINDS),
    FulfillmentAction.REJECT: (
        "REJECTED",
        frozenset({"ALLOCATED", "PICKED", "PACKED"}),
        frozenset({FulfillmentKind.PICKUP, FulfillmentKind.SHIP_FROM_STORE}),
    ),
}
_DELIVERY_METHODS = {
    FulfillmentKind.PICKUP: "Store Pickup",
    FulfillmentKind.SHIP_FROM_STORE: "Ship From Store",
    FulfillmentKind.SHIP_TO_STORE: "Ship To Store",
}


@attrs.frozen
class SeedLine:
    """One line of a seeded online order."""

    sku: str
    quantity: Decimal
    unit_price: Decimal
    name: str | None = None


@attrs.frozen
class SeededOrder:
    """What :meth:`SpiStore.seed_online_order` created: the order and its fulfillment order
    (None when seeded with ``kind=None``)."""

    order: OrderDetail
    fulfillment_order: FulfillmentOrder | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _utc_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _dec(value: str | None) -> Decimal:
    return Decimal(value) if value is not None else ZERO


def _text(value: Decimal) -> str:
    return format(value, "f")


def _like_prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class SpiStore:
    """Everything the reference server remembers, with the bookkeeping rules of the SPI.

    Operations raise :class:`~omsbridge_posspi.server.errors.ApiError` with the status and
    code the contract names; the web app only translates HTTP to these calls and back.
    """

    def __init__(self, path: str = ":memory:", *, return_window_days: int = 30) -> None:
        self.path = path
        self.return_window = timedelta(days=return_window_days)
        self._lock = threading.RLock()
        self._new_event = threading.Condition(self._lock)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all or nothing, and waiting event readers are woken after."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._new_event.notify_all()

    def _next(self, name: str) -> int:
        row = self._db.execute(
            "INSERT INTO counters(name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            (name,),
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def reset(self) -> None:
        """Forget every order, fulfillment order and event (numbers restart at 1, checkpoints
        do not)."""
        with self._tx() as db:
            for table in (
                "events", "shipments", "fulfillment_order_lines", "fulfillment_orders",
                "order_lines", "idempotency", "orders",
            ):  # fmt: skip
                db.execute(f"DELETE FROM {table}")
            # Checkpoints keep increasing across a reset, so a reader's old checkpoint never
            # hides new events; every other number starts again at 1.
            db.execute("DELETE FROM counters WHERE name != 'event'")
            db.execute("DELETE FROM sqlite_sequence")

    # -- posting ----------------------------------------------------------------------------

    def post_order(self, txn: Transaction, *, body_sha256: str) -> PostResult:
        """Store a transaction as one order; a repeat of the same body answers ``created=False``.

        Raises 409 ``IDEMPOTENCY_CONFLICT`` when the id was posted with a different body, and
        422 when a return line cannot be matched to what was bought or returns too much.
        """
        with self._tx() as db:
            seen = db.execute(
                "SELECT body_sha256, order_id FROM idempotency WHERE key = ?", (txn.transaction_id,)
            ).fetchone()
            if seen is not None:
                if seen["body_sha256"] != body_sha256:
                    raise ApiError(
                        409,
                        "IDEMPOTENCY_CONFLICT",
                        f"transaction {txn.transaction_id} was already posted with a different "
                        "body; post a changed order under a new transaction id",
                        field="transaction_id",
                    )
                order = self._order_row(self._shown_on(seen["order_id"]))
                return PostResult(
                    txn.transaction_id, order["order_id"], order["order_number"], False
                )
            originals = self._match_originals(txn)
            n = self._next("order")
            order_id = f"O-{n:06d}"
            order_number = txn.order_number or f"SPI{n:06d}"
            if db.execute(
                "SELECT 1 FROM orders WHERE order_number = ?", (order_number,)
            ).fetchone():
                raise ApiError(
                    409,
                    "ORDER_NUMBER_TAKEN",
                    f"order number {order_number} belongs to another order",
                    field="order_number",
                )
            self._insert_order(
                order_id=order_id,
                order_number=order_number,
                transaction_id=txn.transaction_id,
                channel="POS",
                kind=str(txn.kind),
                placed_at=txn.created_at,
                currency=txn.currency,
                total=txn.total,
                store_id=txn.store_id,
                customer=txn.customer,
                payments=[self._payment(tender) for tender in txn.tenders],
            )
            item_ids: dict[int, int] = {}
            for index, line in enumerate(txn.lines):
                take_with = line.kind == LineKind.SALE and line.fulfillment.is_take_with
                is_return = line.kind == LineKind.RETURN
                original = originals.get(index)
                item_ids[line.line_number] = self._insert_line(
                    order_id=order_id,
                    kind=str(line.kind),
                    pos_line_number=line.line_number,
                    external_line_id=line.line_id,
                    sku=line.sku,
                    name=line.name,
                    unit_price=line.unit_price,
                    total=line.signed_total,
                    quantity=line.quantity,
                    # Goods taken with, and goods brought back, changed hands at the register.
                    fulfilled=line.quantity if (take_with or is_return) else ZERO,
                    fulfillment_method=None if is_return else line.fulfillment.method_name,
                    original=original,
                )
                if original is not None:
                    db.execute(
                        "UPDATE order_lines SET quantity_returned = ? WHERE item_id = ?",
                        (
                            # Read again: two return lines may take back the same sold line.
                            _text(
                                self._line_value(original["item_id"], "quantity_returned")
                                + line.quantity
                            ),
                            original["item_id"],
                        ),
                    )
            self._route_to_stores(txn, order_id, item_ids)
            for original_order in {o["order_id"] for o in originals.values()}:
                self._refresh_status(original_order)
            self._refresh_status(order_id)
            db.execute(
                "INSERT INTO idempotency(key, body_sha256, order_id) VALUES (?, ?, ?)",
                (txn.transaction_id, body_sha256, order_id),
            )
            shown = self._order_row(self._shown_on(order_id))
            return PostResult(txn.transaction_id, shown["order_id"], shown["order_number"], True)

    def _shown_on(self, order_id: str) -> str:
        """The order a post answers (``PostResult.order_id``): a return order's first original
        (the return folds into it); any other order itself."""
        original = self._return_original(order_id)
        return original or order_id

    def _return_original(self, order_id: str) -> str | None:
        """The first original order of a RETURN order; None for any other order."""
        row = self._db.execute(
            "SELECT l.original_order_id FROM order_lines l JOIN orders o USING (order_id) "
            "WHERE l.order_id = ? AND o.kind = 'RETURN' AND l.original_order_id IS NOT NULL "
            "ORDER BY l.item_id LIMIT 1",
            (order_id,),
        ).fetchone()
        return str(row[0]) if row is not None else None

    def _payment(self, tender: Tender) -> Payment:
        """A tender as a payment the POS already processed (a refund is negative)."""
        return Payment(
            payment_id=f"PAY-{self._next('payment'):06d}",
            method=tender.tag,
            amount=tender.amount,
            status="PROCESSED",
            brand=getattr(tender, "brand", None) or getattr(tender, "wallet", None),
            last4=getattr(tender, "last4", None),
            gateway_reference=tender.gateway_reference,
            kind=PaymentKind(tender.tag),
            captured=tender.amount if tender.amount > 0 else None,
        )

    def _route_to_stores(self, txn: Transaction, order_id: str, item_ids: dict[int, int]) -> None:
        """Give a store a fulfillment order for each group of lines it must still hand over."""
        for fulfillment, lines in txn.fulfillment_groups().items():
            if fulfillment.is_take_with or fulfillment.type == FulfillmentType.ONLINE:
                continue  # nothing for a store to do (ONLINE ships from elsewhere)
            kind = (
                FulfillmentKind.SHIP_TO_STORE
                if fulfillment.type == FulfillmentType.SHIP_TO_STORE
                else FulfillmentKind.PICKUP
            )
            self._insert_fulfillment_order(
                order_id=order_id,
                store_id=fulfillment.store_id or txn.store_id,
                kind=kind,
                items=[(item_ids[line.line_number], line.quantity) for line in lines],
                ship_to=fulfillment.ship_to,
                delivery_method=fulfillment.method_name,
            )

    def _match_originals(self, txn: Transaction) -> dict[int, sqlite3.Row]:
        """Find the sold line each return line takes back, and check it can be returned."""
        found: dict[int, sqlite3.Row] = {}
        returning: dict[int, Decimal] = {}
        for index, line in enumerate(txn.lines):
            if line.kind != LineKind.RETURN or line.original is None:
                continue  # a no-receipt return refers to nothing
            path = f"lines[{index}]"
            ref = line.original
            order = self._find_order(ref.order_id)
            if order is None:
                raise ApiError(
                    422,
                    "ORIGINAL_ORDER_NOT_FOUND",
                    f"no order {ref.order_id} to return from",
                    field=f"{path}.original.order_id",
                )
            row = self._find_original_line(
                order["order_id"], line.sku, ref.line_id, ref.line_number
            )
            if row is None:
                which = ref.line_id or (f"line {ref.line_number}" if ref.line_number else line.sku)
                raise ApiError(
                    422,
                    "ORIGINAL_LINE_NOT_FOUND",
                    f"order {order['order_id']} has no sold line {which} with SKU {line.sku}",
                    field=f"{path}.original",
                )
            taken = returning.get(row["item_id"], ZERO) + line.quantity
            returnable = _dec(row["quantity_fulfilled"]) - _dec(row["quantity_returned"])
            if taken > returnable:
                raise ApiError(
                    422,
                    "RETURN_QUANTITY_EXCEEDED",
                    f"returns {taken} of line {row['item_id']} of order {order['order_id']} but "
                    f"only {returnable} can be returned (fulfilled "
                    f"{row['quantity_fulfilled']}, already returned {row['quantity_returned']})",
                    field=f"{path}.quantity",
                )
            returning[row["item_id"]] = taken
            found[index] = row
        return found

    def _find_original_line(
        self, order_id: str, sku: str, line_id: str | None, line_number: int | None
    ) -> sqlite3.Row | None:
        sold = self._db.execute(
            "SELECT * FROM order_lines WHERE order_id = ? AND kind = 'SALE' ORDER BY item_id",
            (order_id,),
        ).fetchall()
        if line_id is not None:
            # Either the SPI's own line id ("OI-7") or the POS's line id kept at post time.
            match = [r for r in sold if line_id in (f"OI-{r['item_id']}", r["external_line_id"])]
        elif line_number is not None:
            match = [r for r in sold if r["item_id"] == line_number]
        else:
            returnable = [
                r for r in sold if _dec(r["quantity_fulfilled"]) > _dec(r["quantity_returned"])
            ]
            match = [r for r in returnable if r["sku"] == sku] or [
                r for r in sold if r["sku"] == sku
            ]
        return match[0] if match and match[0]["sku"] == sku else None

    # -- inserts ----------------------------------------------------------------------------

    def _insert_order(
        self,
        *,
        order_id: str,
        order_number: str,
        transaction_id: str | None,
        channel: str,
        kind: str,
        placed_at: datetime,
        currency: str,
        total: Decimal,
        store_id: str | None,
        customer: Customer | None,
        payments: Sequence[Payment],
    ) -> None:
        self._db.execute(
            "INSERT INTO orders(order_id, order_number, transaction_id, channel, kind, status, "
            "placed_at, placed_at_utc, currency, total, store_id, customer_id, email, first_name, "
            "last_name, customer, payments) VALUES (?, ?, ?, ?, ?, 'OPEN', ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)",
            (
                order_id,
                order_number,
                transaction_id,
                channel,
                kind,
                placed_at.isoformat(),
                _utc_key(placed_at),
                currency,
                _text(total),
                store_id,
                customer.customer_id if customer else None,
                customer.email if customer else None,
                customer.first_name if customer else None,
                customer.last_name if customer else None,
                wire.dumps(customer) if customer else None,
                json.dumps(wire.unstructure(list(payments))),
            ),
        )

    def _insert_line(
        self,
        *,
        order_id: str,
        kind: str,
        sku: str,
        unit_price: Decimal,
        total: Decimal,
        quantity: Decimal,
        fulfilled: Decimal,
        name: str | None = None,
        pos_line_number: int | None = None,
        external_line_id: str | None = None,
        fulfillment_method: str | None = None,
        original: sqlite3.Row | None = None,
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO order_lines(order_id, kind, pos_line_number, external_line_id, sku, name, "
            "unit_price, total, quantity_ordered, quantity_fulfilled, fulfillment_method, "
            "original_order_id, original_item_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order_id,
                kind,
                pos_line_number,
                external_line_id,
                sku,
                name,
                _text(unit_price),
                _text(total),
                _text(quantity),
                _text(fulfilled),
                fulfillment_method,
                original["order_id"] if original is not None else None,
                original["item_id"] if original is not None else None,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _insert_fulfillment_order(
        self,
        *,
        order_id: str,
        store_id: str | None,
        kind: FulfillmentKind,
        items: Sequence[tuple[int, Decimal]],
        ship_to: Address | None = None,
        delivery_method: str | None = None,
        status: str | None = None,
    ) -> str:
        fo_id = f"FO-{self._next('fulfillment_order'):06d}"
        status = status or ("IN_TRANSIT" if kind == FulfillmentKind.SHIP_TO_STORE else "ALLOCATED")
        self._db.execute(
            "INSERT INTO fulfillment_orders(fulfillment_order_id, order_id, store_id, kind, "
            "status, delivery_method, ship_to, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fo_id,
                order_id,
                store_id,
                str(kind),
                status,
                delivery_method or _DELIVERY_METHODS[kind],
                wire.dumps(ship_to) if ship_to else None,
                _now().isoformat(),
            ),
        )
        for item_id, quantity in items:
            self._db.execute(
                "INSERT INTO fulfillment_order_lines(line_id, fulfillment_order_id, item_id, "
                "quantity) VALUES (?, ?, ?, ?)",
                (
                    f"FOL-{self._next('fulfillment_order_line'):06d}",
                    fo_id,
                    item_id,
                    _text(quantity),
                ),
            )
        self._emit(fo_id, order_id, None, status)
        return fo_id

    def _emit(
        self,
        fo_id: str,
        order_id: str | None,
        old: str | None,
        new: str,
        at: datetime | None = None,
    ) -> None:
        seq = self._next("event")
        self._db.execute(
            "INSERT INTO events(seq, event_id, fulfillment_order_id, order_id, old_status, "
            "new_status, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, f"EV-{seq:08d}", fo_id, order_id, old, new, (at or _now()).isoformat()),
        )

    # -- reading orders ---------------------------------------------------------------------

    def _find_order(self, ref: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM orders WHERE order_id = ? OR order_number = ? OR transaction_id = ? "
            "ORDER BY order_id = ? DESC LIMIT 1",
            (ref, ref, ref, ref),
        ).fetchone()
        return row

    def _order_row(self, ref: str) -> sqlite3.Row:
        row = self._find_order(ref)
        if row is None:
            raise ApiError(404, "ORDER_NOT_FOUND", f"no order {ref}")
        return row

    def _lines(self, order_id: str) -> list[sqlite3.Row]:
        return self._db.execute(
            "SELECT * FROM order_lines WHERE order_id = ? ORDER BY item_id", (order_id,)
        ).fetchall()

    def order_detail(self, ref: str, *, for_return: bool = False) -> OrderDetail:
        """``GET_ORDER_DETAIL`` (and with ``for_return``, ``BORIS_GET_ORDER_DETAIL``, which adds
        ``return_by``). ``ref`` is the order id, order number or POS transaction id."""
        with self._lock:
            row = self._order_row(ref)
            placed_at = datetime.fromisoformat(row["placed_at"])
            fos = self._db.execute(
                "SELECT fulfillment_order_id FROM fulfillment_orders WHERE order_id = ? ORDER BY seq",
                (row["order_id"],),
            ).fetchall()
            shipments = self._db.execute(
                "SELECT * FROM shipments WHERE order_id = ? ORDER BY shipment_id",
                (row["order_id"],),
            ).fetchall()
            return OrderDetail(
                order_id=row["order_id"],
                order_number=row["order_number"],
                backend_status=row["status"],
                placed_at=placed_at,
                currency=row["currency"],
                totals=self._totals(row),
                lines=tuple(self._order_line(r) for r in self._lines(row["order_id"])),
                payments=self._payments(row),
                fulfillment_orders=tuple(
                    self._fulfillment_order(r["fulfillment_order_id"]) for r in fos
                ),
                shipments=tuple(
                    Shipment(
                        shipment_id=s["shipment_id"],
                        fulfillment_order_id=s["fulfillment_order_id"],
                        carrier=s["carrier"],
                        tracking_number=s["tracking_number"],
                        status=self._shipment_status(s["fulfillment_order_id"]),
                        shipped_at=datetime.fromisoformat(s["shipped_at"]),
                    )
                    for s in shipments
                ),
                customer=wire.loads(row["customer"], Customer) if row["customer"] else None,
                store_id=row["store_id"],
                transaction_id=row["transaction_id"],
                return_by=(placed_at + self.return_window).date() if for_return else None,
            )

    def _totals(self, row: sqlite3.Row) -> OrderTotals:
        """Ordered as placed; returned: the refund value of the return lines (in any later
        order) that take back this order's goods; cancelled: each line's total pro rata of
        its cancelled units, rounded to the currency."""
        cent = Decimal(1).scaleb(-minor_units(row["currency"]))
        cancelled = sum(
            (
                (_dec(r["total"]) * _dec(r["quantity_cancelled"]) / _dec(r["quantity_ordered"]))
                .quantize(cent)
                .copy_abs()
                for r in self._lines(row["order_id"])
                if r["kind"] == "SALE" and _dec(r["quantity_ordered"]) > 0
            ),
            ZERO,
        )
        returned = -sum(
            (
                _dec(r[0])
                for r in self._db.execute(
                    "SELECT total FROM order_lines WHERE original_order_id = ?",
                    (row["order_id"],),
                ).fetchall()
            ),
            ZERO,
        )
        return OrderTotals(_dec(row["total"]), cancelled, returned)

    def _payments(self, row: sqlite3.Row) -> tuple[Payment, ...]:
        """The order's own payments, then the refunds of the return orders folded into it."""
        own = wire.structure(json.loads(row["payments"]), tuple[Payment, ...])
        refunds: list[Payment] = []
        for other in self._db.execute(
            "SELECT DISTINCT o.order_id, o.payments FROM orders o JOIN order_lines l "
            "USING (order_id) WHERE o.kind = 'RETURN' AND l.original_order_id = ? ORDER BY o.seq",
            (row["order_id"],),
        ).fetchall():
            if self._return_original(other["order_id"]) == row["order_id"]:
                refunds += wire.structure(json.loads(other["payments"]), tuple[Payment, ...])
        return tuple(own) + tuple(refunds)

    def _shipment_status(self, fo_id: str) -> str:
        """SHIPPED for a parcel the store sent; for a ship-to-store parcel (inbound to the
        store) IN_TRANSIT until the store received all of it, then DELIVERED."""
        fo = self._fo_row(fo_id)
        if fo["kind"] != FulfillmentKind.SHIP_TO_STORE:
            return "SHIPPED"
        if fo["status"] in _INBOUND:
            return "IN_TRANSIT"
        return "CANCELLED" if fo["status"] in ("CANCELLED", "REJECTED") else "DELIVERED"

    @staticmethod
    def _order_line(row: sqlite3.Row) -> OrderLine:
        return OrderLine(
            line_number=row["item_id"],
            sku=row["sku"],
            quantity_ordered=_dec(row["quantity_ordered"]),
            unit_price=_dec(row["unit_price"]),
            total=_dec(row["total"]),
            name=row["name"],
            line_id=f"OI-{row['item_id']}",
            external_line_id=row["external_line_id"],
            quantity_fulfilled=_dec(row["quantity_fulfilled"]),
            quantity_cancelled=_dec(row["quantity_cancelled"]),
            quantity_returned=_dec(row["quantity_returned"]),
            fulfillment_method=row["fulfillment_method"],
        )

    def search(self, query: OrderQuery) -> OrderPage:
        """``SEARCH_ORDER``: newest first; names match as prefixes, email case-insensitively."""
        after: int | None = None
        if query.cursor is not None:
            query, after = _decode_cursor(query)
        where, args = ["1 = 1"], []
        if query.order_number:
            where.append("order_number = ?")
            args.append(query.order_number)
        if query.customer_id:
            where.append("customer_id = ?")
            args.append(query.customer_id)
        if query.email:
            where.append("email = ?")
            args.append(query.email)
        for name in ("first_name", "last_name"):
            value = getattr(query, name)
            if value:
                where.append(f"{name} LIKE ? ESCAPE '\\'")
                args.append(_like_prefix(value))
        if query.placed_from is not None:
            where.append("placed_at_utc >= ?")
            args.append(_utc_key(query.placed_from))
        if query.placed_to is not None:
            where.append("placed_at_utc <= ?")
            args.append(_utc_key(query.placed_to))
        condition = " AND ".join(where)
        with self._lock:
            total = self._db.execute(
                f"SELECT COUNT(*) FROM orders WHERE {condition}", args
            ).fetchone()[0]
            page_args = [*args, after if after is not None else 2**62, query.page_size + 1]
            rows = self._db.execute(
                f"SELECT * FROM orders WHERE {condition} AND seq < ? ORDER BY seq DESC LIMIT ?",
                page_args,
            ).fetchall()
            more = len(rows) > query.page_size
            rows = rows[: query.page_size]
            hits = tuple(self._hit(row) for row in rows)
        next_cursor = _encode_cursor(query, rows[-1]["seq"]) if more and rows else None
        return OrderPage(hits=hits, next_cursor=next_cursor, total_size=total)

    def _hit(self, row: sqlite3.Row) -> OrderHit:
        rows = self._lines(row["order_id"])
        quantities = [_dec(line["quantity_ordered"]) for line in rows]
        count = sum(quantities, ZERO)
        name = " ".join(p for p in (row["first_name"], row["last_name"]) if p) or None
        return OrderHit(
            order_id=row["order_id"],
            order_number=row["order_number"],
            placed_at=datetime.fromisoformat(row["placed_at"]),
            total=self._totals(row).net or ZERO,
            currency=row["currency"],
            status=OrderStatus.of(self._order_line(r) for r in rows),
            backend_status=row["status"],
            item_count=int(count) if count == int(count) else len(quantities),
            email=row["email"],
            customer_name=name,
        )

    # -- cancelling -------------------------------------------------------------------------

    def cancel_order(self, ref: str, *, reason: str) -> CancelResult:
        """Cancel every open quantity of an order (and of its fulfillment orders)."""
        with self._tx():
            order = self._order_row(ref)
            if order["status"] == "CANCELLED":
                raise ApiError(
                    409, "ORDER_ALREADY_CANCELLED", f"order {order['order_id']} is cancelled"
                )
            wanted = [
                CancelLine(row["item_id"], _open(row))
                for row in self._lines(order["order_id"])
                if row["kind"] == "SALE" and _open(row) > 0
            ]
            if not wanted:
                raise ApiError(
                    422,
                    "NOTHING_TO_CANCEL",
                    f"order {order['order_id']} has nothing open to cancel (all fulfilled, "
                    "returned or cancelled)",
                )
            return self._cancel(order, wanted)

    def cancel_lines(self, ref: str, lines: Sequence[CancelLine], *, reason: str) -> CancelResult:
        """Cancel some quantity of some lines; all or nothing."""
        with self._tx():
            order = self._order_row(ref)
            rows = {row["item_id"]: row for row in self._lines(order["order_id"])}
            for index, wanted in enumerate(lines):
                path = f"lines[{index}]"
                row = rows.get(wanted.line_number)
                if row is None:
                    raise ApiError(
                        404,
                        "LINE_NOT_FOUND",
                        f"order {order['order_id']} has no line {wanted.line_number}",
                        field=f"{path}.line_number",
                    )
                if row["kind"] != "SALE":
                    raise ApiError(
                        422,
                        "LINE_NOT_CANCELLABLE",
                        f"line {wanted.line_number} is a return line",
                        field=f"{path}.line_number",
                    )
                if wanted.quantity > _open(row):
                    raise ApiError(
                        422,
                        "QUANTITY_NOT_CANCELLABLE",
                        f"cannot cancel {wanted.quantity} of line {wanted.line_number}: only "
                        f"{_open(row)} open (ordered {row['quantity_ordered']}, fulfilled "
                        f"{row['quantity_fulfilled']}, cancelled {row['quantity_cancelled']})",
                        field=f"{path}.quantity",
                    )
            return self._cancel(order, lines)

    def _cancel(self, order: sqlite3.Row, lines: Sequence[CancelLine]) -> CancelResult:
        for wanted in lines:
            self._db.execute(
                "UPDATE order_lines SET quantity_cancelled = ? WHERE item_id = ?",
                (
                    _text(
                        self._line_value(wanted.line_number, "quantity_cancelled") + wanted.quantity
                    ),
                    wanted.line_number,
                ),
            )
            self._cancel_fulfillment_lines(wanted.line_number, wanted.quantity)
        status = self._refresh_status(order["order_id"])
        return CancelResult(order["order_id"], tuple(lines), status)

    def _line_value(self, item_id: int, column: str) -> Decimal:
        row = self._db.execute(
            f"SELECT {column} FROM order_lines WHERE item_id = ?", (item_id,)
        ).fetchone()
        return _dec(row[0])

    def _cancel_fulfillment_lines(self, item_id: int, quantity: Decimal) -> None:
        """Take a cancelled order quantity off the open fulfillment orders that carry it."""
        rows = self._db.execute(
            "SELECT l.*, f.status, f.order_id FROM fulfillment_order_lines l JOIN "
            "fulfillment_orders f USING (fulfillment_order_id) WHERE l.item_id = ? ORDER BY l.line_id",
            (item_id,),
        ).fetchall()
        touched: set[str] = set()
        for row in rows:
            if quantity <= 0 or row["status"] in _TERMINAL:
                continue
            take = min(quantity, _dec(row["quantity"]) - _dec(row["quantity_cancelled"]))
            if take <= 0:
                continue
            self._db.execute(
                "UPDATE fulfillment_order_lines SET quantity_cancelled = ? WHERE line_id = ?",
                (_text(_dec(row["quantity_cancelled"]) + take), row["line_id"]),
            )
            quantity -= take
            touched.add(row["fulfillment_order_id"])
        for fo_id in touched:
            if self._fo_open_quantity(fo_id) == 0:
                self._set_fo_status(fo_id, "CANCELLED")

    def _refresh_status(self, order_id: str) -> str:
        status = _order_status(self._lines(order_id))
        self._db.execute("UPDATE orders SET status = ? WHERE order_id = ?", (status, order_id))
        return status

    # -- fulfillment ------------------------------------------------------------------------

    def _fo_row(self, fo_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM fulfillment_orders WHERE fulfillment_order_id = ?", (fo_id,)
        ).fetchone()
        if row is None:
            raise ApiError(404, "FULFILLMENT_ORDER_NOT_FOUND", f"no fulfillment order {fo_id}")
        return row

    def _fo_lines(self, fo_id: str) -> list[sqlite3.Row]:
        return self._db.execute(
            "SELECT l.*, o.sku, o.name, o.unit_price FROM fulfillment_order_lines l "
            "JOIN order_lines o USING (item_id) WHERE l.fulfillment_order_id = ? ORDER BY l.line_id",
            (fo_id,),
        ).fetchall()

    def _fo_open_quantity(self, fo_id: str) -> Decimal:
        return sum(
            (_dec(r["quantity"]) - _dec(r["quantity_cancelled"]) for r in self._fo_lines(fo_id)),
            ZERO,
        )

    def _fulfillment_order(self, fo_id: str) -> FulfillmentOrder:
        row = self._fo_row(fo_id)
        order = self._order_row(row["order_id"])
        lines = tuple(
            FulfillmentOrderLine(
                line_id=r["line_id"],
                sku=r["sku"],
                quantity=_dec(r["quantity"]),
                unit_price=_dec(r["unit_price"]),
                name=r["name"],
                order_line_number=r["item_id"],
                quantity_cancelled=_dec(r["quantity_cancelled"]),
            )
            for r in self._fo_lines(fo_id)
        )
        return FulfillmentOrder(
            fulfillment_order_id=fo_id,
            order_id=row["order_id"],
            status=row["status"],
            kind=FulfillmentKind(row["kind"]),
            lines=lines,
            currency=order["currency"],
            order_number=order["order_number"],
            store_id=row["store_id"],
            delivery_method=row["delivery_method"],
            customer=wire.loads(order["customer"], Customer) if order["customer"] else None,
            ship_to=wire.loads(row["ship_to"], Address) if row["ship_to"] else None,
            created_at=datetime.fromisoformat(row["created_at"]),
            total=sum(
                ((line.quantity - line.quantity_cancelled) * line.unit_price for line in lines),
                ZERO,
            ),
        )

    def fulfillment_order(self, fo_id: str) -> FulfillmentOrder:
        """One fulfillment order, whatever its status."""
        with self._lock:
            return self._fulfillment_order(fo_id)

    def fulfillment_orders(self, store_id: str | None = None) -> tuple[FulfillmentOrder, ...]:
        """The fulfillment orders still waiting on a store (not picked up, shipped, cancelled or
        rejected), oldest first."""
        with self._lock:
            sql = "SELECT fulfillment_order_id FROM fulfillment_orders WHERE status NOT IN (?, ?, ?, ?)"
            args: list[Any] = sorted(_TERMINAL)
            if store_id is not None:
                sql += " AND store_id = ?"
                args.append(store_id)
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
            return tuple(self._fulfillment_order(r["fulfillment_order_id"]) for r in rows)

    def _set_fo_status(self, fo_id: str, status: str, at: datetime | None = None) -> None:
        row = self._fo_row(fo_id)
        if row["status"] == status:
            return
        self._db.execute(
            "UPDATE fulfillment_orders SET status = ? WHERE fulfillment_order_id = ?",
            (status, fo_id),
        )
        self._emit(fo_id, row["order_id"], row["status"], status, at)

    def update_fulfillment(self, update: FulfillmentUpdate) -> FulfillmentOrder:
        """Apply a store's step. Repeating the step that was last applied changes nothing, so a
        retried update is harmless; a step that does not follow from the status is a 409."""
        target, allowed_from, kinds = _STEPS[update.action]
        with self._tx():
            row = self._fo_row(update.fulfillment_order_id)
            fo_id, status, kind = (
                row["fulfillment_order_id"],
                row["status"],
                FulfillmentKind(row["kind"]),
            )
            if kind not in kinds:
                raise ApiError(
                    422,
                    "ACTION_NOT_ALLOWED",
                    f"{update.action} does not apply to a {kind} fulfillment order",
                    field="action",
                )
            if status == target and not update.lines:
                return self._fulfillment_order(fo_id)
            if status not in allowed_from:
                raise ApiError(
                    409,
                    "INVALID_TRANSITION",
                    f"fulfillment order {fo_id} is {status}; {update.action} needs one of "
                    f"{', '.join(sorted(allowed_from))}",
                    field="action",
                )
            lines = {r["line_id"]: r for r in self._fo_lines(fo_id)}
            for index, part in enumerate(update.lines):
                if part.line_id not in lines:
                    raise ApiError(
                        404,
                        "LINE_NOT_FOUND",
                        f"fulfillment order {fo_id} has no line {part.line_id}",
                        field=f"lines[{index}].line_id",
                    )
            at = update.occurred_at
            if update.action == FulfillmentAction.CANCEL:
                self._fo_cancel(fo_id, update, lines)
            elif update.action == FulfillmentAction.RECEIVED:
                self._fo_receive(fo_id, update, lines, at)
            else:
                if update.action in (FulfillmentAction.PICKED_UP, FulfillmentAction.SHIPPED):
                    self._fo_fulfil(row, lines.values(), update)
                self._set_fo_status(fo_id, target, at)
            self._refresh_status(row["order_id"])
            return self._fulfillment_order(fo_id)

    def _fo_cancel(
        self, fo_id: str, update: FulfillmentUpdate, lines: dict[str, sqlite3.Row]
    ) -> None:
        wanted = {p.line_id: p.quantity for p in update.lines} or {
            line_id: _dec(r["quantity"]) - _dec(r["quantity_cancelled"])
            for line_id, r in lines.items()
        }
        for index, (line_id, quantity) in enumerate(wanted.items()):
            row = lines[line_id]
            open_quantity = _dec(row["quantity"]) - _dec(row["quantity_cancelled"])
            if quantity > open_quantity:
                raise ApiError(
                    422,
                    "QUANTITY_EXCEEDS_OPEN",
                    f"cannot cancel {quantity} of {line_id}: only {open_quantity} open",
                    field=f"lines[{index}].quantity",
                )
            if quantity <= 0:
                continue
            self._db.execute(
                "UPDATE fulfillment_order_lines SET quantity_cancelled = ? WHERE line_id = ?",
                (_text(_dec(row["quantity_cancelled"]) + quantity), line_id),
            )
            self._db.execute(
                "UPDATE order_lines SET quantity_cancelled = ? WHERE item_id = ?",
                (
                    _text(self._line_value(row["item_id"], "quantity_cancelled") + quantity),
                    row["item_id"],
                ),
            )
        if self._fo_open_quantity(fo_id) == 0:
            self._set_fo_status(fo_id, "CANCELLED", update.occurred_at)

    def _fo_receive(
        self,
        fo_id: str,
        update: FulfillmentUpdate,
        lines: dict[str, sqlite3.Row],
        at: datetime | None,
    ) -> None:
        def pending(r: sqlite3.Row) -> Decimal:
            return (
                _dec(r["quantity"]) - _dec(r["quantity_cancelled"]) - _dec(r["quantity_received"])
            )

        wanted = {p.line_id: p.quantity for p in update.lines} or {
            line_id: pending(r) for line_id, r in lines.items()
        }
        for index, (line_id, quantity) in enumerate(wanted.items()):
            row = lines[line_id]
            if quantity > pending(row):
                raise ApiError(
                    422,
                    "QUANTITY_EXCEEDS_OPEN",
                    f"cannot receive {quantity} of {line_id}: only {pending(row)} expected",
                    field=f"lines[{index}].quantity",
                )
            self._db.execute(
                "UPDATE fulfillment_order_lines SET quantity_received = ? WHERE line_id = ?",
                (_text(_dec(row["quantity_received"]) + quantity), line_id),
            )
        done = all(pending(r) == 0 for r in self._fo_lines(fo_id))
        self._set_fo_status(fo_id, "RECEIVED" if done else "PARTIALLY_RECEIVED", at)

    def _fo_fulfil(self, fo: sqlite3.Row, lines: Any, update: FulfillmentUpdate) -> None:
        """The customer has the goods: count them fulfilled on the order lines."""
        for row in lines:
            handed = _dec(row["quantity"]) - _dec(row["quantity_cancelled"])
            self._db.execute(
                "UPDATE order_lines SET quantity_fulfilled = ? WHERE item_id = ?",
                (
                    _text(self._line_value(row["item_id"], "quantity_fulfilled") + handed),
                    row["item_id"],
                ),
            )
        if update.action == FulfillmentAction.SHIPPED:
            self._db.execute(
                "INSERT INTO shipments(shipment_id, fulfillment_order_id, order_id, carrier, "
                "tracking_number, shipped_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    f"SH-{self._next('shipment'):06d}",
                    fo["fulfillment_order_id"],
                    fo["order_id"],
                    update.carrier,
                    update.tracking_number,
                    (update.occurred_at or _now()).isoformat(),
                ),
            )

    def set_fulfillment_status(self, fo_id: str, status: str) -> FulfillmentOrder:
        """Change a fulfillment order's status as the OMS would (emits an event; no bookkeeping)."""
        with self._tx():
            self._set_fo_status(fo_id, status)
            return self._fulfillment_order(fo_id)

    # -- events -----------------------------------------------------------------------------

    def order_count(self) -> int:
        """How many orders the store holds (sales, returns, exchanges and online orders)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    def head(self) -> int:
        """The checkpoint of the newest event (0 when there is none)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()
            return int(row[0] or 0)

    def events(self, after: int | None, *, wait: float = 0.0, limit: int = 100) -> EventBatch:
        """Events after checkpoint ``after`` (None: from now), waiting up to ``wait`` seconds for
        the first one."""
        deadline = time.monotonic() + wait
        with self._new_event:
            start = self.head() if after is None else after
            while True:
                rows = self._db.execute(
                    "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (start, limit)
                ).fetchall()
                remaining = deadline - time.monotonic()
                if rows or remaining <= 0:
                    break
                self._new_event.wait(remaining)
        events = tuple(
            FulfillmentEvent(
                event_id=r["event_id"],
                fulfillment_order_id=r["fulfillment_order_id"],
                new_status=r["new_status"],
                checkpoint=str(r["seq"]),
                old_status=r["old_status"],
                order_id=r["order_id"],
                occurred_at=datetime.fromisoformat(r["occurred_at"]),
            )
            for r in rows
        )
        return EventBatch(events, events[-1].checkpoint if events else str(start))

    # -- seeding ----------------------------------------------------------------------------

    def seed_online_order(
        self,
        *,
        store_id: str | None = None,
        kind: FulfillmentKind | str | None = FulfillmentKind.PICKUP,
        lines: Sequence[SeedLine] = (),
        customer: Customer | None = None,
        currency: str = "USD",
        order_number: str | None = None,
        ship_to: Address | None = None,
        fulfilled: bool = False,
        placed_at: datetime | None = None,
        carrier: str | None = None,
        tracking_number: str | None = None,
    ) -> SeededOrder:
        """Create an online order (as the web shop would) with one fulfillment order at a store.

        ``kind`` is PICKUP (BOPIS), SHIP_FROM_STORE (BOFIS) or SHIP_TO_STORE, and needs
        ``store_id``; ``kind=None`` makes an order shipped from elsewhere, with no fulfillment
        order. With ``fulfilled=True`` the goods are already with the customer (ready for a BORIS
        return); otherwise they are open (ready to be cancelled or fulfilled).
        A SHIP_TO_STORE order with a ``tracking_number`` (and ``carrier``) also gets its inbound
        shipment (the ASN): IN_TRANSIT until the store has received everything, then DELIVERED.
        """
        kind = FulfillmentKind(kind) if kind is not None else None
        if kind is not None and not store_id:
            raise ApiError(
                400, "INVALID_REQUEST", f"store_id is required for a {kind} order", field="store_id"
            )
        lines = tuple(lines) or (SeedLine("SKU-1", Decimal(2), Decimal("25.00"), "Demo item"),)
        customer = customer or Customer(
            customer_id="C-1", email="ada@example.com", first_name="Ada", last_name="Lovelace"
        )
        if kind == FulfillmentKind.SHIP_FROM_STORE and ship_to is None:
            ship_to = Address("1 Main Street", "Springfield", "US", postal_code="12345")
        placed_at = placed_at or _now()
        total = sum((line.quantity * line.unit_price for line in lines), ZERO)
        with self._tx() as db:
            n = self._next("order")
            order_id = f"O-{n:06d}"
            number = order_number or f"WEB{n:06d}"
            if db.execute("SELECT 1 FROM orders WHERE order_number = ?", (number,)).fetchone():
                raise ApiError(409, "ORDER_NUMBER_TAKEN", f"order number {number} is taken")
            payment = Payment(
                f"PAY-{self._next('payment'):06d}", "card", total, "CAPTURED", "VISA", "4242"
            )
            self._insert_order(
                order_id=order_id,
                order_number=number,
                transaction_id=None,
                channel="ONLINE",
                kind="SALE",
                placed_at=placed_at,
                currency=currency,
                total=total,
                store_id=store_id,
                customer=customer,
                payments=[payment],
            )
            items = [
                (
                    self._insert_line(
                        order_id=order_id,
                        kind="SALE",
                        sku=line.sku,
                        name=line.name,
                        unit_price=line.unit_price,
                        total=line.quantity * line.unit_price,
                        quantity=line.quantity,
                        fulfilled=line.quantity if fulfilled else ZERO,
                        fulfillment_method=f"ONLINE-{kind or 'DEFAULT'}",
                    ),
                    line.quantity,
                )
                for line in lines
            ]
            fo_id = None
            if kind is not None:
                final = "SHIPPED" if kind == FulfillmentKind.SHIP_FROM_STORE else "PICKED_UP"
                fo_id = self._insert_fulfillment_order(
                    order_id=order_id,
                    store_id=store_id,
                    kind=kind,
                    items=items,
                    ship_to=ship_to,
                    status=final if fulfilled else None,
                )
                if kind == FulfillmentKind.SHIP_TO_STORE and (tracking_number or carrier):
                    self._db.execute(
                        "INSERT INTO shipments(shipment_id, fulfillment_order_id, order_id, "
                        "carrier, tracking_number, shipped_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            f"SH-{self._next('shipment'):06d}",
                            fo_id,
                            order_id,
                            carrier,
                            tracking_number,
                            placed_at.isoformat(),
                        ),
                    )
            self._refresh_status(order_id)
        return SeededOrder(
            self.order_detail(order_id), self.fulfillment_order(fo_id) if fo_id else None
        )


def _open(row: sqlite3.Row) -> Decimal:
    return (
        _dec(row["quantity_ordered"])
        - _dec(row["quantity_fulfilled"])
        - _dec(row["quantity_cancelled"])
    )


def _order_status(lines: Sequence[sqlite3.Row]) -> str:
    """The order's status text, derived from its lines' quantities."""
    sold = [r for r in lines if r["kind"] == "SALE"]
    if not sold:
        return "COMPLETED"  # a return order is complete when the POS posts it
    ordered, fulfilled, cancelled, returned = (
        sum((_dec(r[c]) for r in sold), ZERO)
        for c in (
            "quantity_ordered",
            "quantity_fulfilled",
            "quantity_cancelled",
            "quantity_returned",
        )
    )
    if cancelled == ordered:
        return "CANCELLED"
    if ordered - fulfilled - cancelled > 0:
        return "PARTIALLY_FULFILLED" if fulfilled > 0 else "OPEN"
    if returned > 0:
        return "RETURNED" if returned >= fulfilled else "PARTIALLY_RETURNED"
    return "COMPLETED"


def _encode_cursor(query: OrderQuery, after_seq: int) -> str:
    return cursor.encode_cursor(query, [after_seq])


def _decode_cursor(query: OrderQuery) -> tuple[OrderQuery, int]:
    try:
        criteria, (after,) = cursor.decode_cursor(query, (cursor.position(int),))
    except InvalidTransaction as exc:
        raise ApiError(400, "INVALID_CURSOR", exc.issues[0].message, field="cursor") from None
    return attrs.evolve(criteria, page_size=query.page_size), after
