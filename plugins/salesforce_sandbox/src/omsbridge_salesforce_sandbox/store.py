"""Record storage: in-memory tables, nested transactions with rollback, optional SQLite file.

All access happens under :attr:`Store.lock` (the sandbox serialises business logic), so the
store itself does no fine-grained locking. A transaction keeps an undo log; rolling back
replays it backwards. Only the outermost commit writes to the SQLite file and runs the
post-commit hooks (that is where platform events get published, so a rolled-back graph
never emits an event).

Lookups by field value go through per-type indexes (see :class:`_TypeIndex`) so that the
order-graph rules, which look up children by their parent id on every write, cost
O(matches) instead of a scan of the whole table. The indexes are built lazily on first use,
kept in step by :meth:`Store.insert`, :meth:`Store.update` and rollbacks, and simply dropped
when the tables are reloaded or cleared (the next lookup rebuilds them from the tables, which
stay the single source of truth).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import ids
from .schema import Schema

Record = dict[str, Any]


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$d" in value:
        return Decimal(value["$d"])
    return value


#: Set to ``1`` to cross-check every indexed lookup against a full scan (a debugging aid: it
#: makes lookups as slow as before and raises AssertionError on any difference).
CHECK_INDEXES_ENV = "OMSBRIDGE_SANDBOX_CHECK_INDEXES"

#: Above this share of the table, a candidate set is filtered in table order rather than
#: sorted (a scan is cheaper than sorting most of the table).
_SCAN_SHARE = 4


class _ExactIndex:
    """Record ids of one field, grouped by the field's value (compared with ``==``).

    A missing field is indexed as None, like ``record.get(field)`` reads it. Values that
    cannot be hashed (lists, dicts) cannot be grouped; their records are kept apart and
    offered as candidates to every lookup, which then compares them one by one.
    """

    __slots__ = ("buckets", "unhashable")

    def __init__(self) -> None:
        self.buckets: dict[Any, set[str]] = {}
        self.unhashable: set[str] = set()

    def add(self, rec_id: str, value: Any) -> None:
        """Index *rec_id* under *value*."""
        try:
            bucket = self.buckets.get(value)
        except TypeError:
            self.unhashable.add(rec_id)
            return
        if bucket is None:
            self.buckets[value] = {rec_id}
        else:
            bucket.add(rec_id)

    def discard(self, rec_id: str, value: Any) -> None:
        """Forget that *rec_id* has *value* (the value it was indexed under)."""
        try:
            bucket = self.buckets.get(value)
        except TypeError:
            self.unhashable.discard(rec_id)
            return
        if bucket is not None:
            bucket.discard(rec_id)
            if not bucket:
                del self.buckets[value]

    def candidates(self, value: Any) -> set[str] | None:
        """Ids that may hold *value* (a superset of the matches, never missing one), or None
        when *value* cannot be hashed and every record has to be compared."""
        try:
            bucket = self.buckets.get(value)
        except TypeError:
            return None
        if not self.unhashable:
            return bucket if bucket is not None else set()
        return (bucket or set()) | self.unhashable


class _TypeIndex:
    """The indexes of one sObject type plus each record's position in its table.

    ``position`` mirrors the table dict's insertion order (a key keeps its place when its
    record is replaced, and goes last when re-added after a removal), so matches found
    through an index can be returned in the same order a scan of the table would give.
    ``exact`` maps a field to an :class:`_ExactIndex`; ``folded`` maps a field to its string
    values lowered with ``str.lower`` (the case-insensitive matching of unique and
    external-id fields; records whose value is not a string are not in it).
    """

    __slots__ = ("exact", "folded", "next_position", "position")

    def __init__(self, table: dict[str, Record]) -> None:
        self.position: dict[str, int] = {rec_id: n for n, rec_id in enumerate(table)}
        self.next_position = len(table)
        self.exact: dict[str, _ExactIndex] = {}
        self.folded: dict[str, dict[str, set[str]]] = {}

    def place(self, rec_id: str) -> None:
        """Give a record newly added to the table the last position."""
        self.position[rec_id] = self.next_position
        self.next_position += 1

    def fields(self) -> set[str]:
        """Every field some index of this type covers."""
        return self.exact.keys() | self.folded.keys()

    def add_value(self, rec_id: str, field: str, value: Any) -> None:
        """Index one field value of a record."""
        exact = self.exact.get(field)
        if exact is not None:
            exact.add(rec_id, value)
        folded = self.folded.get(field)
        if folded is not None and isinstance(value, str):
            folded.setdefault(value.lower(), set()).add(rec_id)

    def discard_value(self, rec_id: str, field: str, value: Any) -> None:
        """Un-index one field value of a record (the value it was indexed under)."""
        exact = self.exact.get(field)
        if exact is not None:
            exact.discard(rec_id, value)
        folded = self.folded.get(field)
        if folded is not None and isinstance(value, str):
            key = value.lower()
            bucket = folded.get(key)
            if bucket is not None:
                bucket.discard(rec_id)
                if not bucket:
                    del folded[key]

    def add(self, rec_id: str, record: Record) -> None:
        """Index every covered field of *record*."""
        for field in self.fields():
            self.add_value(rec_id, field, record.get(field))

    def discard(self, rec_id: str, record: Record) -> None:
        """Un-index every covered field of *record* (as currently stored)."""
        for field in self.fields():
            self.discard_value(rec_id, field, record.get(field))


class Store:
    """The org's records, keyed by type name then 18-character id."""

    #: First record number handed out, so ids look like a used org's rather than all zeros.
    FIRST_NUMBER = 100_000

    def __init__(self, schema: Schema, path: str | Path | None = None) -> None:
        self.schema = schema
        self.lock = threading.RLock()
        self.path = Path(path) if path else None
        self._tables: dict[str, dict[str, Record]] = {}
        self._counter = self.FIRST_NUMBER
        self._autonumbers: dict[str, int] = {}
        self._undo: list[tuple[str, str, Record | None]] | None = None
        self._meta_undo: list[tuple[str, Any]] | None = None
        self._depth = 0
        self._dirty: set[tuple[str, str]] = set()
        self._after_commit: list[Callable[[], None]] = []
        self._db: sqlite3.Connection | None = None
        self._indexes: dict[str, _TypeIndex] = {}
        #: Cross-check indexed lookups against full scans (see :data:`CHECK_INDEXES_ENV`).
        self.check_indexes = os.environ.get(CHECK_INDEXES_ENV, "") not in ("", "0")
        if self.path is not None:
            self._open_db()
            self._load()

    # --- persistence -------------------------------------------------------------------

    def _open_db(self) -> None:
        assert self.path is not None
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (type TEXT, id TEXT, body TEXT,"
            " PRIMARY KEY (type, id))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")

    def _load(self) -> None:
        assert self._db is not None
        self._tables.clear()
        # Rebuilt lazily from the reloaded tables on the next lookup.
        self._indexes.clear()
        for type_name, rec_id, body in self._db.execute("SELECT type, id, body FROM records"):
            raw = json.loads(body)
            self._tables.setdefault(type_name, {})[rec_id] = {k: _decode(v) for k, v in raw.items()}
        counters = self.load_meta("counters")
        if counters:
            self._counter = counters["counter"]
            self._autonumbers = counters["autonumbers"]

    def _flush(self) -> None:
        if self._db is None or not self._dirty:
            self._dirty.clear()
            return
        with self._db:
            self._db.execute("BEGIN")
            for type_name, rec_id in self._dirty:
                rec = self._tables.get(type_name, {}).get(rec_id)
                if rec is None:
                    self._db.execute(
                        "DELETE FROM records WHERE type=? AND id=?", (type_name, rec_id)
                    )
                else:
                    body = json.dumps({k: _encode(v) for k, v in rec.items()})
                    self._db.execute(
                        "INSERT OR REPLACE INTO records (type, id, body) VALUES (?, ?, ?)",
                        (type_name, rec_id, body),
                    )
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('counters', ?)",
                (json.dumps({"counter": self._counter, "autonumbers": self._autonumbers}),),
            )
            self._db.execute("COMMIT")
        self._dirty.clear()

    def save_meta(self, key: str, value: Any) -> None:
        """Persist a JSON value next to the records (no-op without a state file)."""
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def load_meta(self, key: str) -> Any:
        """A JSON value saved with :meth:`save_meta`, or None."""
        if self._db is None:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def reload(self) -> None:
        """Re-read everything from the state file, as a restarted process would."""
        if self._db is not None:
            self._load()

    def clear(self) -> None:
        """Drop every record and counter (and the state file's contents)."""
        self._tables.clear()
        self._indexes.clear()
        self._counter = self.FIRST_NUMBER
        self._autonumbers.clear()
        if self._db is not None:
            self._db.execute("DELETE FROM records")
            self._db.execute("DELETE FROM meta")

    def close(self) -> None:
        """Close the state file."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # --- transactions ------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing unit of work; nests (an inner failure rolls back only the inner part
        if the caller catches it)."""
        with self.lock:
            if self._depth == 0:
                self._undo = []
                self._meta_undo = []
                self._after_commit = []
            assert self._undo is not None and self._meta_undo is not None
            savepoint = len(self._undo)
            meta_savepoint = len(self._meta_undo)
            hooks_savepoint = len(self._after_commit)
            self._depth += 1
            try:
                yield
            except BaseException:
                self._rollback_to(savepoint, meta_savepoint)
                del self._after_commit[hooks_savepoint:]
                raise
            finally:
                self._depth -= 1
            if self._depth == 0:
                hooks = self._after_commit
                self._undo = None
                self._meta_undo = None
                self._after_commit = []
                self._flush()
                for hook in hooks:
                    hook()

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run *hook* once the outermost transaction commits (immediately if none is open)."""
        if self._depth == 0:
            hook()
        else:
            self._after_commit.append(hook)

    def _rollback_to(self, savepoint: int, meta_savepoint: int) -> None:
        assert self._undo is not None and self._meta_undo is not None
        while len(self._undo) > savepoint:
            type_name, rec_id, previous = self._undo.pop()
            table = self._tables.setdefault(type_name, {})
            index = self._indexes.get(type_name)
            current = table.get(rec_id)
            if index is not None and current is not None:
                index.discard(rec_id, current)
            if previous is None:
                table.pop(rec_id, None)
                if index is not None:
                    index.position.pop(rec_id, None)
            else:
                if index is not None and current is None:
                    index.place(rec_id)
                table[rec_id] = previous
                if index is not None:
                    index.add(rec_id, previous)
            # Stays dirty: the flush writes whatever state the record is back to.
        while len(self._meta_undo) > meta_savepoint:
            what, value = self._meta_undo.pop()
            if what == "counter":
                self._counter = value
            else:
                self._autonumbers[what] = value

    def _remember(self, type_name: str, rec_id: str) -> None:
        if self._undo is not None:
            previous = self._tables.get(type_name, {}).get(rec_id)
            self._undo.append((type_name, rec_id, copy.deepcopy(previous)))
        self._dirty.add((type_name, rec_id))

    # --- records -----------------------------------------------------------------------

    def new_id(self, type_name: str) -> str:
        """A fresh 18-character id for a record of *type_name*."""
        sobject = self.schema.get(type_name)
        assert sobject is not None
        if self._meta_undo is not None:
            self._meta_undo.append(("counter", self._counter))
        self._counter += 1
        return ids.make_id(sobject.key_prefix, self._counter)

    def next_number(self, type_name: str) -> int:
        """The next auto-number of *type_name* (OrderNumber and friends)."""
        current = self._autonumbers.get(type_name, 99)
        if self._meta_undo is not None:
            self._meta_undo.append((type_name, current))
        self._autonumbers[type_name] = current + 1
        return current + 1

    def insert(self, type_name: str, record: Record) -> str:
        """Store a new record (its ``Id`` must be set) and return its id."""
        rec_id = record["Id"]
        self._remember(type_name, rec_id)
        table = self._tables.setdefault(type_name, {})
        index = self._indexes.get(type_name)
        if index is not None:
            old = table.get(rec_id)
            if old is None:
                index.place(rec_id)
            else:
                index.discard(rec_id, old)
        table[rec_id] = record
        if index is not None:
            index.add(rec_id, record)
        if self._depth == 0:
            self._flush()
        return rec_id

    def update(self, type_name: str, rec_id: str, changes: Record) -> Record:
        """Apply *changes* to a stored record and return the new record."""
        self._remember(type_name, rec_id)
        record = self._tables[type_name][rec_id]
        index = self._indexes.get(type_name)
        if index is None:
            record.update(changes)
        else:
            covered = index.fields()
            # The record changes in place, so un-index the old values before they are lost.
            # Callers often pass the whole record back: skip values that are the same object.
            moved = [
                (f, record.get(f))
                for f, v in changes.items()
                if f in covered and (f not in record or record[f] is not v)
            ]
            for f, old in moved:
                index.discard_value(rec_id, f, old)
            record.update(changes)
            for f, _ in moved:
                index.add_value(rec_id, f, record.get(f))
        if self._depth == 0:
            self._flush()
        return record

    def get(self, type_name: str, rec_id: str, *, include_deleted: bool = False) -> Record | None:
        """The stored record (live object, do not mutate) or None."""
        rec = self._tables.get(type_name, {}).get(rec_id)
        if rec is None or (rec.get("IsDeleted") and not include_deleted):
            return None
        return rec

    def find(self, rec_id: str, *, include_deleted: bool = False) -> tuple[str, Record] | None:
        """Look a record up by id alone (15 or 18 characters): (type name, record) or None."""
        norm = ids.normalize(rec_id)
        if norm is None:
            return None
        sobject = self.schema.by_prefix(norm[:3])
        if sobject is None:
            return None
        rec = self.get(sobject.name, norm, include_deleted=include_deleted)
        return (sobject.name, rec) if rec is not None else None

    def all(self, type_name: str, *, include_deleted: bool = False) -> list[Record]:
        """Every record of *type_name* in insertion order (live objects, do not mutate)."""
        return [
            r
            for r in self._tables.get(type_name, {}).values()
            if include_deleted or not r.get("IsDeleted")
        ]

    def where(self, type_name: str, **equals: Any) -> list[Record]:
        """Live records of *type_name* whose fields equal the given values, in insertion order.

        Same result as comparing ``record.get(field) == value`` on every record, found
        through the equality index of the most selective field (indexes are built on first
        use of a field and maintained from then on).
        """
        if not equals:
            return self.all(type_name)
        table = self._tables.get(type_name)
        if not table:
            return []
        chosen: set[str] | None = None
        for field, value in equals.items():
            found = self._exact_index(type_name, field).candidates(value)
            if found is not None and (chosen is None or len(found) < len(chosen)):
                chosen = found
                if not chosen:
                    break
        rows = table.values() if chosen is None else self._in_order(type_name, chosen)
        out = [
            r
            for r in rows
            if not r.get("IsDeleted") and all(r.get(k) == v for k, v in equals.items())
        ]
        if self.check_indexes:
            scanned = [
                r for r in self.all(type_name) if all(r.get(k) == v for k, v in equals.items())
            ]
            self._check(out, scanned, f"where({type_name}, {equals!r})")
        return out

    def where_in(
        self, type_name: str, field: str, values: Iterable[Any], *, include_deleted: bool = False
    ) -> list[Record]:
        """Records of *type_name* whose *field* equals any of *values* (``==``), in insertion
        order; soft-deleted ones only with *include_deleted*."""
        wanted = list(values)
        table = self._tables.get(type_name)
        if not table or not wanted:
            return []
        index = self._exact_index(type_name, field)
        chosen: set[str] | None = set()
        for value in wanted:
            found = index.candidates(value)
            if found is None:
                chosen = None
                break
            assert chosen is not None
            chosen |= found
        rows = table.values() if chosen is None else self._in_order(type_name, chosen)
        out = [
            r
            for r in rows
            if (include_deleted or not r.get("IsDeleted"))
            and any(r.get(field) == v for v in wanted)
        ]
        if self.check_indexes:
            scanned = [
                r
                for r in self.all(type_name, include_deleted=include_deleted)
                if any(r.get(field) == v for v in wanted)
            ]
            self._check(out, scanned, f"where_in({type_name}, {field}, {wanted!r})")
        return out

    def where_folded(
        self, type_name: str, field: str, text: str, *, include_deleted: bool = False
    ) -> list[Record]:
        """Records of *type_name* whose *field* is a string equal to *text* ignoring case
        (``value.lower() == text.lower()``), in insertion order; soft-deleted ones only with
        *include_deleted*. This is how unique and external-id fields match."""
        key = text.lower()
        table = self._tables.get(type_name)
        if not table:
            return []
        found = self._folded_index(type_name, field).get(key)
        if not found:
            rows: Iterable[Record] = ()
        else:
            rows = self._in_order(type_name, found)
        out = [
            r
            for r in rows
            if (include_deleted or not r.get("IsDeleted"))
            and isinstance(r.get(field), str)
            and r[field].lower() == key
        ]
        if self.check_indexes:
            scanned = [
                r
                for r in self.all(type_name, include_deleted=include_deleted)
                if isinstance(r.get(field), str) and r[field].lower() == key
            ]
            self._check(out, scanned, f"where_folded({type_name}, {field}, {text!r})")
        return out

    # --- indexes -----------------------------------------------------------------------

    def _type_index(self, type_name: str) -> _TypeIndex:
        index = self._indexes.get(type_name)
        if index is None:
            index = self._indexes[type_name] = _TypeIndex(self._tables.setdefault(type_name, {}))
        return index

    def _exact_index(self, type_name: str, field: str) -> _ExactIndex:
        index = self._type_index(type_name)
        exact = index.exact.get(field)
        if exact is None:
            exact = index.exact[field] = _ExactIndex()
            for rec_id, record in self._tables[type_name].items():
                exact.add(rec_id, record.get(field))
        return exact

    def _folded_index(self, type_name: str, field: str) -> dict[str, set[str]]:
        index = self._type_index(type_name)
        folded = index.folded.get(field)
        if folded is None:
            folded = index.folded[field] = {}
            for rec_id, record in self._tables[type_name].items():
                value = record.get(field)
                if isinstance(value, str):
                    folded.setdefault(value.lower(), set()).add(rec_id)
        return folded

    def _in_order(self, type_name: str, rec_ids: set[str]) -> list[Record]:
        """The records with *rec_ids*, in table (insertion) order."""
        table = self._tables[type_name]
        if len(rec_ids) * _SCAN_SHARE > len(table):
            return [r for rec_id, r in table.items() if rec_id in rec_ids]
        position = self._indexes[type_name].position
        return [table[rec_id] for rec_id in sorted(rec_ids, key=position.__getitem__)]

    def verify_indexes(self) -> None:
        """Raise AssertionError unless every index built so far equals one rebuilt from the
        tables now, positions included (a test aid: lookups filter their candidates, so an
        index holding stale entries would otherwise go unnoticed)."""
        for type_name, index in self._indexes.items():
            table = self._tables.get(type_name, {})
            order = sorted(index.position, key=index.position.__getitem__)
            if order != list(table):
                raise AssertionError(f"{type_name}: positions {order} != table {list(table)}")
            for field in index.exact:
                built = _ExactIndex()
                for rec_id, record in table.items():
                    built.add(rec_id, record.get(field))
                kept = index.exact[field]
                if (kept.buckets, kept.unhashable) != (built.buckets, built.unhashable):
                    raise AssertionError(f"{type_name}.{field}: stale equality index")
            for field in index.folded:
                folded: dict[str, set[str]] = {}
                for rec_id, record in table.items():
                    value = record.get(field)
                    if isinstance(value, str):
                        folded.setdefault(value.lower(), set()).add(rec_id)
                if index.folded[field] != folded:
                    raise AssertionError(f"{type_name}.{field}: stale case-folded index")

    @staticmethod
    def _check(indexed: list[Record], scanned: list[Record], what: str) -> None:
        if [id(r) for r in indexed] != [id(r) for r in scanned]:
            raise AssertionError(
                f"index lookup {what} differs from a scan: "
                f"{[r.get('Id') for r in indexed]} != {[r.get('Id') for r in scanned]}"
            )
