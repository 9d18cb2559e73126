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
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from typing import Any, TypeVar, get_args

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
from omsbridge.model._checks import join
from omsbridge.model.tenders import TENDER_TYPES, Tender

T = TypeVar("T")

__all__ = [
    "converter",
    "dumps",
    "issues_from",
    "loads",
    "new_converter",
    "structure",
    "unstructure",
]

_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


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
    raise ValueError(f'must be a decimal number such as "12.50", got {value!r}')


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
    raise ValueError(
        f"must be an ISO 8601 date-time such as 2026-11-22T10:15:00+01:00, got {value!r}"
    )


def _structure_date(value: Any, _: type) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"must be an ISO 8601 date such as 2026-11-22, got {value!r}")


def _strict(kind: type, label: str) -> Callable[[Any, type], Any]:
    def hook(value: Any, _: type) -> Any:
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        raise ValueError(f"must be {label}, got {value!r}")

    return hook


def _structure_enum(value: Any, cls: type[Enum]) -> Enum:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in cls)  # type: ignore[attr-defined]
        raise ValueError(f"must be one of {choices}, got {value!r}") from None


def new_converter() -> cattrs.Converter:
    """A fresh converter for the native format; add hooks to it without touching :data:`converter`."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_unstructure_hook(Decimal, _unstructure_decimal)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(date, _structure_date)
    conv.register_unstructure_hook(date, date.isoformat)
    # Predicates, not singledispatch: a StrEnum is a str subclass and must keep its own hook.
    conv.register_structure_hook_func(lambda t: t is str, _strict(str, "a string"))
    conv.register_structure_hook_func(lambda t: t is int, _strict(int, "a whole number"))
    conv.register_structure_hook_func(lambda t: t is bool, _strict(bool, "true or false"))
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
                raise ValueError(f"must be an object, got {type(value).__name__}")
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
            raise ValueError(f"must be an object, got {type(value).__name__}")
        tag = value.get("type")
        if tag not in tags:
            raise FieldError("type", f"must be one of {', '.join(tags)}, got {tag!r}")
        body = {k: v for k, v in value.items() if k != "type"}
        return conv.structure(body, tags[tag])

    plain = {cls: unstructure_attrs(cls) for cls in get_args(Tender)}

    def unstructure_tender(value: Any) -> dict[str, Any]:
        return {"type": value.tag, **plain[type(value)](value)}

    conv.register_structure_hook_func(lambda t: t == Tender, structure_tender)
    for cls in plain:
        conv.register_unstructure_hook(cls, unstructure_tender)
    return conv


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


def structure(data: Any, cls: type[T]) -> T:
    """Build a model object from plain data; :class:`InvalidTransaction` lists every bad field."""
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


def loads(text: str | bytes, cls: type[T]) -> T:
    """Parse native JSON into ``cls``. Numbers become Decimal, never float."""
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidTransaction([Issue("", f"not valid JSON: {exc}")]) from None
    return structure(data, cls)


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Write a model object as native JSON."""
    return json.dumps(unstructure(obj), indent=indent, ensure_ascii=False)
