"""A SOQL subset: tokenizer, recursive-descent parser, binder and evaluator.

Supported: ``SELECT`` field lists with parent-relationship paths (``Account.PersonEmail``) and
child subqueries (``(SELECT Id FROM OrderItems)``), ``COUNT()`` / ``COUNT(field)``, ``FROM``,
``WHERE`` with ``= != <> < > <= >= LIKE IN NOT IN AND OR NOT`` and parentheses, string /
number / boolean / date / datetime / ``null`` literals and the date literals ``TODAY``,
``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n``, ``NEXT_N_DAYS:n``; ``ORDER BY`` with
``ASC``/``DESC`` and ``NULLS FIRST``/``LAST``; ``LIMIT``; ``OFFSET``.

Anything else is refused with ``MALFORMED_QUERY``, ``INVALID_FIELD`` or ``INVALID_TYPE`` and
Salesforce's error text (the query echoed with a caret, row and column) — never answered
approximately. String literals use Salesforce's escapes (``\\'`` ``\\\\`` ``\\n`` ``\\r`` ``\\t``
``\\b`` ``\\f`` ``\\"`` ``\\uXXXX``); ``\\%`` and ``\\_`` are only valid inside ``LIKE``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from . import ids
from .errors import SalesforceError
from .records import format_datetime, parse_datetime
from .schema import NUMERIC_TYPES, Field, Schema, SObjectType

_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "NULL",
    "TRUE",
    "FALSE",
    "GROUP",
    "HAVING",
    "WITH",
    "FOR",
    "USING",
    "INCLUDES",
    "EXCLUDES",
    "TYPEOF",
}
_UNSUPPORTED_CLAUSES = {"GROUP", "HAVING", "WITH", "FOR", "USING", "TYPEOF"}
_STRING_TYPES = frozenset({"string", "email", "phone", "url", "picklist", "textarea"})
_DATE_LITERALS = {"TODAY", "YESTERDAY", "TOMORROW", "LAST_N_DAYS", "NEXT_N_DAYS"}

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)


@dataclass
class Token:
    """One lexical token of a SOQL statement (``pos`` is its offset in the text)."""

    kind: str
    text: str
    pos: int
    raw: str = ""

    def upper(self) -> str:
        """The token text in upper case (keywords compare case-insensitively)."""
        return self.text.upper()


def _error(code: str, query: str, pos: int, message: str) -> SalesforceError:
    """Salesforce's query error text: the offending row, a caret, Row/Column, then *message*."""
    row = query.count("\n", 0, pos) + 1
    line_start = query.rfind("\n", 0, pos) + 1
    line_end = query.find("\n", pos)
    line = query[line_start : line_end if line_end != -1 else len(query)]
    column = pos - line_start + 1
    text = f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{message}"
    return SalesforceError(code, text)


def tokenize(query: str) -> list[Token]:
    """Split *query* into tokens (MALFORMED_QUERY on a character SOQL does not allow)."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(query):
        m = _TOKEN_RE.match(query, pos)
        if m is None:
            raise _error("MALFORMED_QUERY", query, pos, f"unexpected token: '{query[pos]}'")
        kind = m.lastgroup
        assert kind is not None
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "string":
            end = pos + 1
            while True:
                if end >= len(query):
                    raise _error(
                        "MALFORMED_QUERY",
                        query,
                        pos,
                        f"line 1:{len(query)} mismatched character '<EOF>' expecting '''",
                    )
                ch = query[end]
                if ch == "\\":
                    end += 2
                    continue
                if ch == "'":
                    break
                end += 1
            raw = query[pos + 1 : end]
            tokens.append(Token("string", raw, pos, raw))
            pos = end + 1
            continue
        tokens.append(Token(kind, m.group(kind), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(query)))
    return tokens


_SIMPLE_ESCAPES = {
    "n": "\n",
    "N": "\n",
    "r": "\r",
    "R": "\r",
    "t": "\t",
    "T": "\t",
    "b": "\b",
    "B": "\b",
    "f": "\f",
    "F": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


def decode_string(raw: str, *, like: bool = False) -> list[tuple[str, bool]]:
    """Decode a literal's escapes into (character, was_escaped) pairs; raises ValueError."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != "\\":
            out.append((ch, False))
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        if nxt in _SIMPLE_ESCAPES:
            out.append((_SIMPLE_ESCAPES[nxt], True))
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", raw[i + 2 : i + 6]):
            out.append((chr(int(raw[i + 2 : i + 6], 16)), True))
            i += 6
        elif nxt in "%_" and like:
            out.append((nxt, True))
            i += 2
        else:
            raise ValueError(f"\\{nxt}")
    return out


# --- AST -------------------------------------------------------------------------------------


@dataclass
class FieldRef:
    """A (possibly dotted) field path as written, bound to the schema after parsing."""

    path: str
    pos: int
    hops: list[Field] = field(default_factory=list)  # reference fields walked
    target: Field | None = None  # the final field
    names: list[str] = field(default_factory=list)  # canonical relationship names


@dataclass
class Literal:
    """A literal value; ``kind`` is string/number/boolean/null/date/datetime/dateliteral."""

    kind: str
    value: Any
    pos: int
    raw: str = ""


@dataclass
class Comparison:
    """``field op literal`` or ``field [NOT] IN (literals)`` or ``field LIKE 'pattern'``."""

    ref: FieldRef
    op: str
    values: list[Literal]
    pos: int


@dataclass
class BoolOp:
    """AND / OR of several conditions, or NOT of one."""

    op: str
    items: list[Any]


@dataclass
class OrderItem:
    """One ORDER BY term."""

    ref: FieldRef
    descending: bool
    nulls_last: bool


@dataclass
class Subquery:
    """A child-relationship subquery in the select list."""

    query: Query
    pos: int


@dataclass
class CountExpr:
    """COUNT() or COUNT(field) [alias]."""

    ref: FieldRef | None
    alias: str | None
    pos: int


@dataclass
class Query:
    """A parsed SELECT statement."""

    items: list[Any]
    from_name: str
    from_pos: int
    where: Any = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    sobject: SObjectType | None = None
    child_field: Field | None = None  # for subqueries: the lookup back to the parent


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # token helpers
    @property
    def tok(self) -> Token:
        """The current token."""
        return self.tokens[self.i]

    def _unexpected(self, tok: Token | None = None) -> SalesforceError:
        tok = tok or self.tok
        if tok.kind == "eof":
            return _error(
                "MALFORMED_QUERY", self.text, max(tok.pos - 1, 0), "unexpected token: <EOF>"
            )
        shown = f"'{tok.raw}'" if tok.kind == "string" else tok.text
        return _error("MALFORMED_QUERY", self.text, tok.pos, f"unexpected token: {shown}")

    def _is_kw(self, word: str, offset: int = 0) -> bool:
        tok = self.tokens[self.i + offset] if self.i + offset < len(self.tokens) else None
        return tok is not None and tok.kind == "ident" and tok.upper() == word

    def _expect_kw(self, word: str) -> Token:
        if not self._is_kw(word):
            raise self._unexpected()
        tok = self.tok
        self.i += 1
        return tok

    def _expect_punct(self, ch: str) -> Token:
        if self.tok.kind != "punct" or self.tok.text != ch:
            raise self._unexpected()
        tok = self.tok
        self.i += 1
        return tok

    # grammar
    def parse(self) -> Query:
        """Parse the whole statement."""
        if self.tok.kind == "eof":
            raise SalesforceError("MALFORMED_QUERY", "SOQL statements cannot be empty or null")
        query = self._query(top=True)
        if self.tok.kind != "eof":
            raise self._unexpected()
        return query

    def _query(self, *, top: bool) -> Query:
        self._expect_kw("SELECT")
        items = self._select_list(top=top)
        self._expect_kw("FROM")
        if self.tok.kind != "ident" or (
            self.tok.upper() in _KEYWORDS and self.tok.upper() != "ORDER"
        ):
            raise self._unexpected()
        from_tok = self.tok
        self.i += 1
        query = Query(items, from_tok.text, from_tok.pos)
        if self.tok.kind == "ident" and self.tok.upper() not in _KEYWORDS:
            # An alias after the object name: legal SOQL, but the sandbox does not bind it.
            raise _error(
                "MALFORMED_QUERY",
                self.text,
                self.tok.pos,
                f"unexpected token: {self.tok.text} (object aliases are not "
                "supported by the sandbox)",
            )
        if self._is_kw("WHERE"):
            self.i += 1
            query.where = self._condition()
        for word in _UNSUPPORTED_CLAUSES:
            if self._is_kw(word):
                raise _error(
                    "MALFORMED_QUERY",
                    self.text,
                    self.tok.pos,
                    f"unexpected token: {self.tok.text} ({word} is not supported by the sandbox)",
                )
        if self._is_kw("ORDER"):
            self.i += 1
            self._expect_kw("BY")
            query.order = self._order_list()
        if self._is_kw("LIMIT"):
            self.i += 1
            query.limit = self._integer()
        if self._is_kw("OFFSET"):
            self.i += 1
            query.offset = self._integer()
        for word in _UNSUPPORTED_CLAUSES:
            if self._is_kw(word):
                raise _error(
                    "MALFORMED_QUERY",
                    self.text,
                    self.tok.pos,
                    f"unexpected token: {self.tok.text} ({word} is not supported by the sandbox)",
                )
        return query

    def _order_list(self) -> list[OrderItem]:
        terms: list[OrderItem] = []
        while True:
            tok = self.tok
            if tok.kind != "ident" or tok.upper() in _KEYWORDS:
                raise self._unexpected()
            self.i += 1
            descending = False
            if self._is_kw("ASC") or self._is_kw("DESC"):
                descending = self.tok.upper() == "DESC"
                self.i += 1
            nulls_last = descending
            if self._is_kw("NULLS"):
                self.i += 1
                if not (self._is_kw("FIRST") or self._is_kw("LAST")):
                    raise self._unexpected()
                nulls_last = self.tok.upper() == "LAST"
                self.i += 1
            terms.append(OrderItem(FieldRef(tok.text, tok.pos), descending, nulls_last))
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.i += 1
                continue
            return terms

    def _integer(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not re.fullmatch(r"\d+", tok.text):
            raise self._unexpected()
        self.i += 1
        return int(tok.text)

    def _select_list(self, *, top: bool) -> list[Any]:
        items: list[Any] = []
        while True:
            tok = self.tok
            if tok.kind == "punct" and tok.text == "(":
                if not top:
                    raise _error(
                        "MALFORMED_QUERY",
                        self.text,
                        tok.pos,
                        "unexpected token: '(' (nested subqueries are not supported)",
                    )
                self.i += 1
                sub = self._query(top=False)
                self._expect_punct(")")
                items.append(Subquery(sub, tok.pos))
            elif (
                tok.kind == "ident"
                and tok.upper() == "COUNT"
                and self.tokens[self.i + 1].text == "("
            ):
                self.i += 2
                ref = None
                if self.tok.kind == "ident":
                    ref = FieldRef(self.tok.text, self.tok.pos)
                    self.i += 1
                self._expect_punct(")")
                alias = None
                if self.tok.kind == "ident" and self.tok.upper() not in _KEYWORDS:
                    alias = self.tok.text
                    self.i += 1
                items.append(CountExpr(ref, alias, tok.pos))
            elif tok.kind == "ident" and tok.upper() not in _KEYWORDS:
                if self.tokens[self.i + 1].text == "(":
                    raise _error(
                        "MALFORMED_QUERY",
                        self.text,
                        tok.pos,
                        f"unexpected token: {tok.text} (function {tok.text}() is not "
                        "supported by the sandbox)",
                    )
                items.append(FieldRef(tok.text, tok.pos))
                self.i += 1
            else:
                raise self._unexpected()
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.i += 1
                continue
            return items

    def _condition(self) -> Any:
        first = self._not_expr()
        if not (self._is_kw("AND") or self._is_kw("OR")):
            return first
        op = self.tok.upper()
        items = [first]
        while self._is_kw("AND") or self._is_kw("OR"):
            if self.tok.upper() != op:
                # SOQL needs parentheses when AND and OR are mixed.
                raise self._unexpected()
            self.i += 1
            items.append(self._not_expr())
        return BoolOp(op, items)

    def _not_expr(self) -> Any:
        if self._is_kw("NOT"):
            self.i += 1
            return BoolOp("NOT", [self._not_expr()])
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.i += 1
            inner = self._condition()
            self._expect_punct(")")
            return inner
        return self._comparison()

    def _comparison(self) -> Comparison:
        tok = self.tok
        if tok.kind != "ident" or tok.upper() in _KEYWORDS:
            raise self._unexpected()
        ref = FieldRef(tok.text, tok.pos)
        self.i += 1
        op_tok = self.tok
        if op_tok.kind == "op":
            self.i += 1
            op = "!=" if op_tok.text == "<>" else op_tok.text
            return Comparison(ref, op, [self._literal()], op_tok.pos)
        if self._is_kw("LIKE"):
            self.i += 1
            lit = self._literal()
            if lit.kind != "string":
                raise _error(
                    "MALFORMED_QUERY", self.text, lit.pos, "LIKE requires a string literal"
                )
            return Comparison(ref, "LIKE", [lit], op_tok.pos)
        negate = False
        if self._is_kw("NOT") and self._is_kw("IN", 1):
            negate = True
            self.i += 1
        if self._is_kw("IN"):
            self.i += 1
            self._expect_punct("(")
            if self._is_kw("SELECT"):
                raise _error(
                    "MALFORMED_QUERY",
                    self.text,
                    self.tok.pos,
                    "unexpected token: SELECT (semi-joins are not supported by the sandbox)",
                )
            values = [self._literal()]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.i += 1
                values.append(self._literal())
            self._expect_punct(")")
            return Comparison(ref, "NOT IN" if negate else "IN", values, op_tok.pos)
        if self._is_kw("INCLUDES") or self._is_kw("EXCLUDES"):
            raise _error(
                "MALFORMED_QUERY",
                self.text,
                op_tok.pos,
                f"unexpected token: {op_tok.text} (not supported by the sandbox)",
            )
        raise self._unexpected()

    def _literal(self) -> Literal:
        tok = self.tok
        self.i += 1
        if tok.kind == "string":
            return Literal("string", None, tok.pos, tok.raw)
        if tok.kind == "number":
            return Literal("number", Decimal(tok.text), tok.pos, tok.text)
        if tok.kind == "date":
            try:
                return Literal("date", date.fromisoformat(tok.text).isoformat(), tok.pos, tok.text)
            except ValueError:
                raise _error(
                    "MALFORMED_QUERY",
                    self.text,
                    tok.pos,
                    f"line 1:{tok.pos} no viable alternative at character '{tok.text}'",
                ) from None
        if tok.kind == "datetime":
            try:
                return Literal(
                    "datetime", format_datetime(parse_datetime(tok.text)), tok.pos, tok.text
                )
            except ValueError:
                raise _error(
                    "MALFORMED_QUERY", self.text, tok.pos, f"unexpected token: {tok.text}"
                ) from None
        if tok.kind == "ident":
            word = tok.upper()
            if word == "NULL":
                return Literal("null", None, tok.pos, tok.text)
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", tok.pos, tok.text)
            if word in _DATE_LITERALS:
                n = None
                if word in ("LAST_N_DAYS", "NEXT_N_DAYS"):
                    self._expect_punct(":")
                    n = self._integer()
                return Literal("dateliteral", (word, n), tok.pos, tok.text)
        self.i -= 1
        raise self._unexpected()


def parse(text: str) -> Query:
    """Parse a SOQL statement into a :class:`Query` (syntax only, not yet bound)."""
    return _Parser(text).parse()


# --- binding ---------------------------------------------------------------------------------


class _Binder:
    def __init__(self, schema: Schema, text: str) -> None:
        self.schema = schema
        self.text = text

    def bind(self, query: Query, parent: SObjectType | None = None) -> None:
        """Resolve a (sub)query's object, fields and literals against the schema."""
        if parent is None:
            sobject = self.schema.get(query.from_name)
            if sobject is None:
                raise _error(
                    "INVALID_TYPE",
                    self.text,
                    query.from_pos,
                    f"sObject type '{query.from_name}' is not supported. If you are attempting "
                    "to use a custom object, be sure to append the '__c' after the entity name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                )
        else:
            children = {k.lower(): v for k, v in self.schema.children(parent.name).items()}
            child = children.get(query.from_name.lower())
            if child is None:
                raise _error(
                    "INVALID_TYPE",
                    self.text,
                    query.from_pos,
                    f"Didn't understand relationship '{query.from_name}' in FROM part of query "
                    "call. If you are attempting to use a custom relationship, be sure to append "
                    "the '__r' after the custom relationship name. Please reference your WSDL or "
                    "the describe call for the appropriate names.",
                )
            sobject, query.child_field = child
        query.sobject = sobject
        seen: set[str] = set()
        counts = [i for i in query.items if isinstance(i, CountExpr)]
        if counts and len(query.items) > 1:
            raise _error(
                "MALFORMED_QUERY",
                self.text,
                counts[0].pos,
                "COUNT() and fields can't be combined in the sandbox",
            )
        for item in query.items:
            if isinstance(item, FieldRef):
                self.bind_ref(sobject, item)
                key = ".".join([*item.names, item.target.name if item.target else ""]).lower()
                if key in seen:
                    raise _error(
                        "MALFORMED_QUERY",
                        self.text,
                        item.pos,
                        f"duplicate field selected: {item.path}",
                    )
                seen.add(key)
            elif isinstance(item, Subquery):
                if parent is not None:
                    raise _error("MALFORMED_QUERY", self.text, item.pos, "nested subquery")
                self.bind(item.query, sobject)
            elif isinstance(item, CountExpr) and item.ref is not None:
                self.bind_ref(sobject, item.ref)
        if query.where is not None:
            self._bind_condition(sobject, query.where)
        for term in query.order:
            self.bind_ref(sobject, term.ref)
            assert term.ref.target is not None
            if term.ref.target.type == "textarea":
                raise _error(
                    "INVALID_FIELD",
                    self.text,
                    term.ref.pos,
                    f"field '{term.ref.target.name}' can not be sorted in a query call",
                )

    def bind_ref(self, sobject: SObjectType, ref: FieldRef) -> None:
        """Resolve a dotted field path to its relationship hops and final field."""
        parts = ref.path.split(".")
        current = [sobject]
        if (
            len(parts) > 1
            and parts[0].lower() == sobject.name.lower()
            and sobject.relationship(parts[0]) is None
        ):
            parts = parts[1:]
        for part in parts[:-1]:
            hop = current[0].relationship(part)
            if hop is None:
                raise _error(
                    "INVALID_FIELD",
                    self.text,
                    ref.pos,
                    f"Didn't understand relationship '{part}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' "
                    "after the custom relationship name. Please reference your WSDL or the "
                    "describe call for the appropriate names.",
                )
            ref.hops.append(hop)
            assert hop.relationship_name is not None
            ref.names.append(hop.relationship_name)
            targets = [self.schema.get(t) for t in hop.references]
            current = [t for t in targets if t is not None]
        name = parts[-1]
        found = [t.field(name) for t in current]
        if any(f is None for f in found) or not found:
            entity = current[0].name if len(current) == 1 else "Name"
            raise _error(
                "INVALID_FIELD",
                self.text,
                ref.pos,
                f"No such column '{name}' on entity '{entity}'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        ref.target = found[0]

    def _bind_condition(self, sobject: SObjectType, cond: Any) -> None:
        if isinstance(cond, BoolOp):
            for item in cond.items:
                self._bind_condition(sobject, item)
            return
        assert isinstance(cond, Comparison)
        self.bind_ref(sobject, cond.ref)
        target = cond.ref.target
        assert target is not None
        if target.type == "textarea":
            raise _error(
                "INVALID_FIELD",
                self.text,
                cond.ref.pos,
                f"field '{target.name}' can not be filtered in a query call",
            )
        for lit in cond.values:
            self._check_literal(target, cond.op, lit)

    def _check_literal(self, target: Field, op: str, lit: Literal) -> None:
        t = target.type

        def _wrong(kind: str, quoted: bool) -> SalesforceError:
            how = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            return _error(
                "INVALID_FIELD",
                self.text,
                lit.pos,
                f"value of filter criterion for field '{target.name}' must be of "
                f"type {kind} and {how}",
            )

        if lit.kind == "null":
            if op not in ("=", "!=", "IN", "NOT IN"):
                raise _error("MALFORMED_QUERY", self.text, lit.pos, "unexpected token: null")
            return
        if op == "LIKE" and t not in _STRING_TYPES and t not in ("id", "reference"):
            raise _error(
                "INVALID_FIELD", self.text, lit.pos, f"invalid operator on {t} field: LIKE"
            )
        if t in ("id", "reference"):
            if lit.kind != "string":
                raise _wrong("id", True)
            if op != "LIKE":
                try:
                    chars = decode_string(lit.raw)
                except ValueError as exc:
                    raise self._bad_escape(lit, str(exc)) from None
                value = "".join(c for c, _ in chars)
                if not ids.is_valid(value):
                    raise _error(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        self.text,
                        lit.pos,
                        f"invalid ID field: {value}",
                    )
                lit.value = ids.to18(value)
            else:
                lit.value = self._like(lit)
            return
        if t in _STRING_TYPES:
            if lit.kind != "string":
                raise _wrong("string", True)
            lit.value = self._like(lit) if op == "LIKE" else self._string(lit)
            return
        if t in NUMERIC_TYPES:
            if lit.kind != "number":
                raise _wrong("number", False)
            return
        if t == "boolean":
            if lit.kind != "boolean":
                raise _wrong("boolean", False)
            return
        if t == "date":
            if lit.kind not in ("date", "dateliteral"):
                raise _wrong("date", False)
            return
        if t == "datetime":
            if lit.kind not in ("datetime", "dateliteral"):
                raise _wrong("dateTime", False)
            return

    def _bad_escape(self, lit: Literal, seq: str) -> SalesforceError:
        return _error(
            "MALFORMED_QUERY",
            self.text,
            lit.pos,
            f"Invalid string literal '{lit.raw}'. Illegal character sequence '{seq}' "
            "in string literal.",
        )

    def _string(self, lit: Literal) -> str:
        try:
            return "".join(c for c, _ in decode_string(lit.raw))
        except ValueError as exc:
            raise self._bad_escape(lit, str(exc)) from None

    def _like(self, lit: Literal) -> re.Pattern[str]:
        try:
            chars = decode_string(lit.raw, like=True)
        except ValueError as exc:
            raise self._bad_escape(lit, str(exc)) from None
        pattern = []
        for ch, escaped in chars:
            if ch == "%" and not escaped:
                pattern.append(".*")
            elif ch == "_" and not escaped:
                pattern.append(".")
            else:
                pattern.append(re.escape(ch))
        return re.compile("".join(pattern), re.IGNORECASE | re.DOTALL)


# --- evaluation -----------------------------------------------------------------------------

Resolver = Callable[[str, str], tuple[str, dict[str, Any]] | None]

#: ``candidates(type_name, include_deleted, field_name, values)``: the records whose field
#: equals (``==``) one of *values*, in the same order ``rows`` gives them.
Candidates = Callable[[str, bool, str, list[Any]], list[dict[str, Any]]]

#: Field types whose ``=`` compares the stored value with the literal as is (``==``): an
#: equality index on the raw value finds exactly the records such a comparison accepts.
_EXACT_TYPES = frozenset({"id", "reference"})


def index_conjunct(where: Any) -> tuple[str, list[Any]] | None:
    """A ``(field name, values)`` that every row matching *where* must hold, or None.

    Only a top-level conjunct qualifies (the whole condition, or one item of a top-level
    AND), only ``=`` or ``IN`` on an id or reference field of the queried object itself (no
    relationship hops) with string literals: those compare ``record[field] == literal``
    exactly, so records outside the index's answer can never pass the full condition, which
    is still evaluated on every candidate.
    """
    if where is None:
        return None
    items = where.items if isinstance(where, BoolOp) and where.op == "AND" else [where]
    for cond in items:
        if (
            isinstance(cond, Comparison)
            and cond.op in ("=", "IN")
            and not cond.ref.hops
            and cond.ref.target is not None
            and cond.ref.target.type in _EXACT_TYPES
            and cond.values
            and all(lit.kind == "string" and isinstance(lit.value, str) for lit in cond.values)
        ):
            return cond.ref.target.name, [lit.value for lit in cond.values]
    return None


@dataclass
class QueryResult:
    """Evaluated rows (already shaped like the REST response) and the total count."""

    records: list[dict[str, Any]]
    total_size: int
    sobject: str


class Evaluator:
    """Runs bound queries against the sandbox store."""

    def __init__(
        self,
        schema: Schema,
        rows: Callable[[str, bool], list[dict[str, Any]]],
        lookup: Callable[[str, str], dict[str, Any] | None],
        today: date,
        record_url: Callable[[str, str], str],
        output_value: Callable[[Field, Any], Any],
        candidates: Candidates | None = None,
    ):
        self.schema = schema
        self.rows = rows
        self.lookup = lookup
        self.today = today
        self.record_url = record_url
        self.output_value = output_value
        self.candidates = candidates

    def _source(self, query: Query, include_deleted: bool) -> list[dict[str, Any]]:
        """The rows to evaluate *query*'s WHERE on: narrowed through an index when a
        conjunct allows it (see :func:`index_conjunct`), else every row."""
        assert query.sobject is not None
        narrowing = index_conjunct(query.where) if self.candidates is not None else None
        if narrowing is None:
            return self.rows(query.sobject.name, include_deleted)
        assert self.candidates is not None
        field_name, values = narrowing
        return self.candidates(query.sobject.name, include_deleted, field_name, values)

    def run(self, query: Query, *, include_deleted: bool = False) -> QueryResult:
        """Evaluate a bound top-level query."""
        assert query.sobject is not None
        rows = self._source(query, include_deleted)
        selected = self._select(query, rows)
        counts = [i for i in query.items if isinstance(i, CountExpr)]
        if counts:
            count = counts[0]
            if count.ref is None:
                return QueryResult([], len(selected), query.sobject.name)
            n = sum(1 for r in selected if self._value(r, count.ref) is not None)
            agg = {"attributes": {"type": "AggregateResult"}, count.alias or "expr0": n}
            return QueryResult([agg], 1, "AggregateResult")
        out = [self._shape(query, r) for r in selected]
        return QueryResult(out, len(out), query.sobject.name)

    def _select(self, query: Query, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if query.where is not None:
            rows = [r for r in rows if self._test(r, query.where)]
        if query.order:
            rows = self._sort(rows, query.order)
        if query.offset:
            rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        return rows

    def _sort(self, rows: list[dict[str, Any]], order: list[OrderItem]) -> list[dict[str, Any]]:
        for term in reversed(order):
            present = [r for r in rows if self._value(r, term.ref) is not None]
            missing = [r for r in rows if self._value(r, term.ref) is None]
            present.sort(
                key=lambda r, t=term: _sort_key(self._value(r, t.ref)), reverse=term.descending
            )
            rows = present + missing if term.nulls_last else missing + present
        return rows

    def _value(self, record: dict[str, Any] | None, ref: FieldRef) -> Any:
        current = record
        for hop in ref.hops:
            if current is None:
                return None
            target_id = current.get(hop.name)
            current = self.lookup(hop.name, target_id) if target_id else None
        if current is None:
            return None
        assert ref.target is not None
        return current.get(ref.target.name)

    def _test(self, record: dict[str, Any], cond: Any) -> bool:
        if isinstance(cond, BoolOp):
            if cond.op == "AND":
                return all(self._test(record, c) for c in cond.items)
            if cond.op == "OR":
                return any(self._test(record, c) for c in cond.items)
            return not self._test(record, cond.items[0])
        value = self._value(record, cond.ref)
        target = cond.ref.target
        assert target is not None
        if cond.op == "LIKE":
            return value is not None and cond.values[0].value.fullmatch(str(value)) is not None
        if cond.op in ("IN", "NOT IN"):
            hit = any(self._compare(target, value, "=", lit) for lit in cond.values)
            return hit if cond.op == "IN" else not hit
        return self._compare(target, value, cond.op, cond.values[0])

    def _compare(self, target: Field, value: Any, op: str, lit: Literal) -> bool:
        if lit.kind == "null":
            return (value is None) if op == "=" else (value is not None)
        if lit.kind == "dateliteral":
            start, end = self._date_range(lit, target.type)
            if value is None:
                return op == "!="
            inside = start <= value < end
            return {
                "=": inside,
                "!=": not inside,
                "<": value < start,
                "<=": value < end,
                ">": value >= end,
                ">=": value >= start,
            }[op]
        if value is None:
            return op == "!="
        if target.type in _STRING_TYPES:
            left, right = str(value).lower(), str(lit.value).lower()
        elif target.type in NUMERIC_TYPES:
            left, right = Decimal(str(value)), lit.value
        else:
            left, right = value, lit.value
        if op == "=":
            return left == right
        if op == "!=":
            return left != right
        if target.type == "boolean":
            raise SalesforceError("MALFORMED_QUERY", f"invalid operator on boolean field: {op}")
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]

    def _date_range(self, lit: Literal, field_type: str) -> tuple[str, str]:
        word, n = lit.value
        today = self.today
        if word == "TODAY":
            start, end = today, today + timedelta(days=1)
        elif word == "YESTERDAY":
            start, end = today - timedelta(days=1), today
        elif word == "TOMORROW":
            start, end = today + timedelta(days=1), today + timedelta(days=2)
        elif word == "LAST_N_DAYS":
            start, end = today - timedelta(days=n), today + timedelta(days=1)
        else:  # NEXT_N_DAYS
            start, end = today + timedelta(days=1), today + timedelta(days=n + 1)
        if field_type == "date":
            return start.isoformat(), end.isoformat()
        return (
            format_datetime(datetime(start.year, start.month, start.day, tzinfo=UTC)),
            format_datetime(datetime(end.year, end.month, end.day, tzinfo=UTC)),
        )

    def _shape(self, query: Query, record: dict[str, Any]) -> dict[str, Any]:
        assert query.sobject is not None
        out: dict[str, Any] = {
            "attributes": {
                "type": query.sobject.name,
                "url": self.record_url(query.sobject.name, record["Id"]),
            }
        }
        for item in query.items:
            if isinstance(item, FieldRef):
                self._put(out, record, item)
            elif isinstance(item, Subquery):
                sub = item.query
                assert sub.sobject is not None and sub.child_field is not None
                parent_key = sub.child_field.name
                source = (
                    self.rows(sub.sobject.name, False)
                    if self.candidates is None
                    else self.candidates(sub.sobject.name, False, parent_key, [record["Id"]])
                )
                children = [r for r in source if r.get(parent_key) == record["Id"]]
                children = self._select(sub, children)
                name = sub.child_field.child_relationship
                assert name is not None
                out[name] = (
                    None
                    if not children
                    else {
                        "totalSize": len(children),
                        "done": True,
                        "records": [self._shape(sub, c) for c in children],
                    }
                )
        return out

    def _put(self, out: dict[str, Any], record: dict[str, Any], ref: FieldRef) -> None:
        node = out
        current: dict[str, Any] | None = record
        for hop, name in zip(ref.hops, ref.names, strict=True):
            target_id = current.get(hop.name) if current is not None else None
            current = self.lookup(hop.name, target_id) if target_id else None
            if current is None:
                node.setdefault(name, None)
                return
            existing = node.get(name)
            if not isinstance(existing, dict):
                found = self.schema.by_prefix(current["Id"][:3])
                assert found is not None
                existing = {
                    "attributes": {
                        "type": found.name,
                        "url": self.record_url(found.name, current["Id"]),
                    }
                }
                node[name] = existing
            node = existing
        assert ref.target is not None and current is not None
        node[ref.target.name] = self.output_value(ref.target, current.get(ref.target.name))


def _sort_key(value: Any) -> Any:
    if isinstance(value, str):
        return (0, value.lower())
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float | Decimal):
        return (2, Decimal(str(value)))
    return (3, str(value))


def compile_query(schema: Schema, text: str) -> Query:
    """Parse and bind *text* against *schema*; raises SalesforceError with SOQL's messages."""
    query = parse(text)
    _Binder(schema, text).bind(query)
    return query
