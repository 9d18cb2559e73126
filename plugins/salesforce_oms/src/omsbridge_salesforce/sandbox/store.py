"""Record storage: in-memory tables, nested transactions with rollback, optional SQLite file.

All access happens under :attr:`Store.lock` (the sandbox serialises business logic), so the
store itself does no fine-grained locking. A transaction keeps an undo log; rolling back
replays it backwards. Only the outermost commit writes to the SQLite file and runs the
post-commit hooks (that is where platform events get published, so a rolled-back graph
never emits an event).
"""

from __future__ import annotations

import contextlib
import copy
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
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
            if previous is None:
                table.pop(rec_id, None)
            else:
                table[rec_id] = previous
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
        self._tables.setdefault(type_name, {})[rec_id] = record
        if self._depth == 0:
            self._flush()
        return rec_id

    def update(self, type_name: str, rec_id: str, changes: Record) -> Record:
        """Apply *changes* to a stored record and return the new record."""
        self._remember(type_name, rec_id)
        record = self._tables[type_name][rec_id]
        record.update(changes)
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
        """Live records of *type_name* whose fields equal the given values."""
        return [r for r in self.all(type_name) if all(r.get(k) == v for k, v in equals.items())]
