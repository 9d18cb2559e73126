"""The POS's native JSON format: one cattrs converter every plugin reuses.

Amounts are written as strings (``"12.50"``) so no reader turns them into floats; both strings
and JSON numbers are accepted on the way in. Times are ISO 8601 with an offset. Fields equal to
their default are left out, so the JSON stays small and round-trips unchanged.

>>> from omsbridge import wire
>>> txn = wire.loads(text, Transaction)      # InvalidTransaction naming every bad field
>>> text = wire.dumps(txn)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from omsbridge.errors import FieldError, InvalidTransaction, Issue
from omsbridge.model._checks import describe, join
from omsbridge.model.tenders import TENDER_TYPES, Tender

T = TypeVar("T")

__all__ = [
    "MAX_DEPTH",
    "converter",
    "describe",
    "dumps",
    "issues_from",
    "loads",
    "new_converter",
    "parse",
    "structure",
    "unstructure",
]

# re.ASCII: Decimal() also reads Arabic-Indic and other digits, JSON numbers are ASCII. (The
# pattern text is what the JSON Schema publishes, where \d is ASCII already.)
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$", re.ASCII)

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted; a transaction needs about six levels."""

# What the format calls each object, for "expected an array of line objects, got a number".
_NOUNS = {
    "Transaction": "transaction",
    "LineItem": "line",
    "TaxLine": "tax",
    "Adjustment": "adjustment",
    "Charge": "charge",
    "CardTender": "tender",
    "CashTender": "tender",
    "DigitalWalletTender": "tender",
    "GiftCardTender": "tender",
    "Customer": "customer",
    "Address": "address",
    "Fulfillment": "fulfillment",
    "OriginalLine": "original-line",
}


class _Expected(ValueError):
    """A value of the wrong JSON kind; its message is in the format's words."""

    def __init__(self, expected: str, value: Any) -> None:
        super().__init__(f"expected {expected}, got {describe(value)}")


def _noun(tp: Any) -> str:
    """What the format calls a value of type ``tp`` (for an array's items, plural)."""
    name = getattr(tp, "__name__", "")
    if tp == Tender or name in _NOUNS:
        return f"{_NOUNS.get(name, 'tender')} objects"
    if tp is Decimal:
        return "decimal numbers"
    if tp is str:
        return "strings"
    if attrs.has(tp):
        return "objects"
    return "values"


def _one(tp: Any) -> str:
    """The singular, with its article: ``a line object``, ``an address object``."""
    noun = _NOUNS.get(getattr(tp, "__name__", ""), "")
    noun = f"{noun} object" if noun else "an object"
    if noun.startswith("an "):
        return noun
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _structure_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
            pass
    if isinstance(value, float):  # only from Python callers: JSON numbers are read as Decimal
        raise ValueError(
            f'expected a decimal number such as "12.50", got a float ({value!r}), '
            "which cannot hold money exactly"
        )
    raise _Expected('a decimal number such as "12.50"', value)


def _unstructure_decimal(value: Decimal) -> str:
    return format(value, "f")


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise _Expected("an ISO 8601 date-time such as 2026-11-22T10:15:00+01:00", value)


def _structure_date(value: Any, _: type) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _Expected("an ISO 8601 date such as 2026-11-22", value)


def _strict(kind: type, label: str) -> Callable[[Any, type], Any]:
    def hook(value: Any, _: type) -> Any:
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        raise _Expected(label, value)

    return hook


def _structure_float(value: Any, _: type) -> float:
    """A number (settings such as timeouts); never a string or true/false."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = float(value)
        if number == number and abs(number) != float("inf"):
            return number
    raise _Expected("a finite number", value)


def _structure_enum(value: Any, cls: type[Enum]) -> Enum:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in cls)  # type: ignore[attr-defined]
        shown = repr(value) if isinstance(value, str) else describe(value)
        raise ValueError(f"must be one of {choices}, got {shown}") from None


def new_converter() -> cattrs.Converter:
    """A fresh converter for the native format; add hooks to it without touching :data:`converter`."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_unstructure_hook(Decimal, _unstructure_decimal)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(date, _structure_date)
    conv.register_unstructure_hook(date, date.isoformat)
    # Class hooks (cattrs' own primitives take priority over predicate hooks, and would turn 5
    # into "5" and "Allocated" into a list of letters); a StrEnum keeps its own, more specific
    # hook registered below.
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(int, _strict(int, "a whole number"))
    conv.register_structure_hook(bool, _strict(bool, "true or false"))
    conv.register_structure_hook(float, _structure_float)
    # singledispatch on the enum bases: cattrs' str hook would otherwise claim every StrEnum.
    conv.register_structure_hook(Enum, _structure_enum)
    conv.register_structure_hook(StrEnum, _structure_enum)
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, Enum), lambda e: e.value
    )

    def structure_attrs(cls: type) -> Callable[[Any, type], Any]:
        attrs.resolve_types(cls)
        inner: Callable[[Any, type], Any] = make_dict_structure_fn(cls, conv)
        known = {a.alias or a.name for a in attrs.fields(cls)}

        def hook(value: Any, _: type) -> Any:
            if not isinstance(value, Mapping):
                raise _Expected(_one(cls), value)
            bad_keys = [k for k in value if not isinstance(k, str)]
            if bad_keys:  # only possible from Python callers: JSON keys are strings
                raise _Expected("an object with string keys", value)
            extra = set(value) - known
            if not extra:
                return inner(value, cls)
            # Report unknown keys *and* the problems of the known ones, not just the first.
            found: list[Exception] = [ForbiddenExtraKeysError(None, cls, extra)]
            try:
                inner({k: v for k, v in value.items() if k in known}, cls)
            except ClassValidationError as exc:
                found += exc.exceptions
            except Exception as exc:
                found.append(exc)
            raise ClassValidationError(f"While structuring {cls.__name__}", found, cls)

        return hook

    conv.register_structure_hook_factory(attrs.has, structure_attrs)

    def unstructure_attrs(cls: type) -> Callable[[Any], Any]:
        attrs.resolve_types(cls)
        return make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True)

    conv.register_unstructure_hook_factory(attrs.has, unstructure_attrs)

    tags = {cls.tag: cls for cls in TENDER_TYPES}

    def structure_tender(value: Any, _: type) -> Any:
        if not isinstance(value, Mapping):
            raise _Expected("a tender object", value)
        tag = value.get("type")
        if not isinstance(tag, str) or tag not in tags:
            shown = repr(tag) if isinstance(tag, str) else describe(tag)
            if "type" not in value:
                shown = "nothing"
            raise FieldError("type", f"must be one of {', '.join(tags)}, got {shown}")
        body = {k: v for k, v in value.items() if k != "type"}
        return conv.structure(body, tags[tag])

    plain = {cls: unstructure_attrs(cls) for cls in get_args(Tender)}

    def unstructure_tender(value: Any) -> dict[str, Any]:
        return {"type": value.tag, **plain[type(value)](value)}

    conv.register_structure_hook_func(lambda t: t == Tender, structure_tender)
    _register_containers(conv)
    for cls in plain:
        conv.register_unstructure_hook(cls, unstructure_tender)
    return conv


def _is_sequence(tp: Any) -> bool:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (list, Sequence):
        return len(args) == 1
    return origin is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_mapping(tp: Any) -> bool:
    return get_origin(tp) in (dict, Mapping) and len(get_args(tp)) == 2


def _register_containers(conv: cattrs.Converter) -> None:
    """Arrays and objects that check their JSON kind first: cattrs would iterate a string into
    letters, or fail inside Python (``'int' object is not iterable``)."""

    def structure_sequence(value: Any, tp: Any) -> Any:
        item_type = get_args(tp)[0]
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
            raise _Expected(f"an array of {_noun(item_type)}", value)
        out: list[Any] = []
        errors: list[Exception] = []
        for i, item in enumerate(value):
            try:
                out.append(conv.structure(item, item_type))
            except Exception as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"Structuring {tp} @ index {i}", i, item_type),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
        return tuple(out) if get_origin(tp) in (tuple, Sequence) else out

    def structure_mapping(value: Any, tp: Any) -> Any:
        key_type, value_type = get_args(tp)
        if not isinstance(value, Mapping):
            raise _Expected(f"an object of {_noun(value_type)}", value)
        out: dict[Any, Any] = {}
        errors: list[Exception] = []
        for key, item in value.items():
            try:
                if key_type is str and not isinstance(key, str):
                    raise _Expected("a string key", key)
                out[key] = conv.structure(item, value_type)
            except Exception as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    AttributeValidationNote(f"Structuring {tp} @ key {key!r}", str(key), tp),
                ]
                errors.append(exc)
        if errors:
            raise ClassValidationError(f"While structuring {tp!r}", errors, dict)
        return out

    conv.register_structure_hook_func(_is_sequence, structure_sequence)
    conv.register_structure_hook_func(_is_mapping, structure_mapping)


converter = new_converter()
"""The converter for the native JSON format (forbids unknown keys, reports every problem)."""


def issues_from(exc: BaseException, path: str = "") -> list[Issue]:
    """Flatten a cattrs validation error (and model errors inside it) into path-named issues."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return [Issue(join(path, key), "unknown field") for key in sorted(exc.extra_fields)]
    if isinstance(exc, ClassValidationError | IterableValidationError):
        found: list[Issue] = []
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            if isinstance(note, AttributeValidationNote):
                found += issues_from(inner, join(path, note.name))
            elif isinstance(note, IterableValidationNote):
                found += issues_from(inner, f"{path}[{note.index}]")
            else:  # pragma: no cover - cattrs only attaches the two note kinds above
                found += issues_from(inner, path)
        for inner in without:
            found += issues_from(inner, path)
        return found
    if isinstance(exc, ExceptionGroup):
        return [issue for inner in exc.exceptions for issue in issues_from(inner, path)]
    if isinstance(exc, InvalidTransaction):
        return [Issue(join(path, i.path), i.message) for i in exc.issues]
    if isinstance(exc, FieldError):
        return [Issue(join(path, exc.field), str(exc))]
    if isinstance(exc, KeyError):
        return [Issue(path, "is required")]
    return [Issue(path, str(exc) or type(exc).__name__)]


def _too_deep(data: Any) -> str | None:
    """The path of the first array or object nested deeper than :data:`MAX_DEPTH`, if any.

    Walked with an explicit stack: recursion is exactly what such input is built to break.
    """
    if not isinstance(data, _CONTAINERS):
        return None
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth >= MAX_DEPTH:
            return path
        # Only containers are pushed (a leaf cannot be too deep), their paths built then.
        if isinstance(node, dict | Mapping):
            stack += [
                (v, join(path, str(k)), depth + 1)
                for k, v in node.items()
                if isinstance(v, _CONTAINERS)
            ]
        else:
            stack += [
                (v, f"{path}[{i}]", depth + 1)
                for i, v in enumerate(node)
                if isinstance(v, _CONTAINERS)
            ]
    return None


_CONTAINERS = (dict, list, tuple, Mapping)


def structure(data: Any, cls: type[T]) -> T:
    """Build a model object from plain data; :class:`InvalidTransaction` lists every bad field."""
    deep = _too_deep(data)
    if deep is not None:
        where = deep if len(deep) <= 80 else deep[:60] + "..."
        raise InvalidTransaction(
            [Issue(where, f"expected at most {MAX_DEPTH} levels of nested arrays and objects")]
        )
    try:
        return converter.structure(data, cls)
    except InvalidTransaction:
        raise
    except (ClassValidationError, IterableValidationError, ValueError, TypeError) as exc:
        raise InvalidTransaction(issues_from(exc)) from None


def unstructure(obj: Any) -> Any:
    """Turn a model object into plain JSON-ready data (defaults left out)."""
    return converter.unstructure(obj)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse(text: str | bytes) -> Any:
    """Parse one JSON document (UTF-8 when bytes) into plain data with Decimal numbers.

    :class:`InvalidTransaction` when it is not UTF-8, not JSON, or nested deeper than
    :data:`MAX_DEPTH`; never a ``RecursionError``.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidTransaction(
                [
                    Issue(
                        "",
                        f"expected UTF-8 text, got byte 0x{text[exc.start]:02x} at offset {exc.start}",
                    )
                ]
            ) from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidTransaction(
            [Issue("", f"expected at most {MAX_DEPTH} levels of nested arrays and objects")]
        ) from None
    except ValueError as exc:
        raise InvalidTransaction([Issue("", f"not valid JSON: {exc}")]) from None


def loads(text: str | bytes, cls: type[T]) -> T:
    """Parse native JSON into ``cls``. Numbers become Decimal, never float."""
    return structure(parse(text), cls)


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Write a model object as native JSON."""
    return json.dumps(unstructure(obj), indent=indent, ensure_ascii=False)
