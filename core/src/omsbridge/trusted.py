"""Decoding a transaction that omsbridge itself wrote after checking it, without checking it again.

The outbox stores a transaction as the native JSON that :func:`omsbridge.wire.dumps` wrote for
an object whose constructor had checked every invariant. Decoding it through the converter
runs those checks once more (and cattrs' detailed validation around them): about 0.1 ms of a
1-line sale, the largest part of what the export job spends on an order besides the OMS call.
:func:`loads` builds the same objects directly, field by field, from that JSON:

* money stays exact (``Decimal`` from the stored string), times keep the offset they were
  written with (the POS's zone), enums, tuples and the tender kinds are rebuilt as the
  converter would;
* anything it does not expect (an unknown key, a value of another JSON kind, a tender tag it
  does not know) makes it fall back to :func:`omsbridge.wire.loads`, which checks everything
  and names every bad field. So a payload from elsewhere is never trusted blindly; only the
  model's cross-field invariants (totals, line numbers...) are not re-run, because the object
  they held for was the one written.

Use it only for JSON omsbridge wrote itself from a checked object (the outbox); input from
outside (files, HTTP bodies) goes through :func:`omsbridge.wire.loads`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs

from omsbridge import wire
from omsbridge.model.tenders import TENDER_TYPES, Tender

__all__ = ["loads", "loads_as_written"]

T = TypeVar("T")

_Build = Callable[[Any], Any]


class _Unexpected(Exception):
    """The JSON is not what wire.dumps writes: decode it the checked way instead."""


def loads(text: str | bytes, cls: type[T]) -> T:
    """Decode JSON that :func:`omsbridge.wire.dumps` wrote for a checked ``cls`` object,
    without re-running the model's checks; anything unexpected is decoded (and reported) by
    :func:`omsbridge.wire.loads` instead."""
    try:
        data = json.loads(text)
        return _builder(cls)(data)  # type: ignore[no-any-return]
    except Exception:
        return wire.loads(text, cls)


def loads_as_written(text: str | bytes, cls: type[T]) -> tuple[T, bool]:
    """:func:`loads`, also telling whether ``text`` was read as written (True) or needed the
    checked decode (False). When True, ``text`` holds the same values as
    :func:`omsbridge.wire.dumps` of the object (every key known, every value of the kind
    wire.dumps writes); only the spelling may differ: layout, key order, escapes, a field equal
    to its default written out. So it can be sent in place of a fresh encoding."""
    try:
        data = json.loads(text)
        return _builder(cls)(data), True
    except Exception:
        return wire.loads(text, cls), False


_BUILDERS: dict[Any, _Build] = {}


def _builder(tp: Any) -> _Build:
    found = _BUILDERS.get(tp)
    if found is None:
        found = _BUILDERS[tp] = _make(tp)
    return found


def _make(tp: Any) -> _Build:
    if tp == Tender:
        return _tender
    if tp is Decimal:
        return _decimal
    if tp is datetime:
        return _datetime
    if tp is date:
        return _date
    if tp in (str, int, bool):
        return _exactly(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _enum(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, UnionType) and len(args) == 2 and NoneType in args:
        inner = _builder(next(a for a in args if a is not NoneType))
        return lambda value: None if value is None else inner(value)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _builder(args[0])
        return lambda value: tuple([item(v) for v in _array(value)])
    if origin in (dict, Mapping) and args == (str, str):
        return _string_map
    if attrs.has(tp):
        return _attrs_builder(tp)
    raise TypeError(f"no trusted decoding for {tp!r}")  # a model change this module missed


def _attrs_builder(cls: type) -> _Build:
    """A function building ``cls`` from its JSON object, one statement per field.

    Generated (as attrs and cattrs do for their own hooks) because a loop over the fields costs
    about twice as much per object, and this decode is the export's largest share of CPU.
    """
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    known = frozenset(f.alias or f.name for f in fields)
    namespace: dict[str, Any] = {
        "new": object.__new__,
        "cls": cls,
        "known": known,
        "Unexpected": _Unexpected,
        "setter": object.__setattr__.__get__,
    }
    body = [
        "def build(data):",
        "    if type(data) is not dict or not known.issuperset(data):",
        "        raise Unexpected",
        "    obj = new(cls)",
        "    put = setter(obj)",
    ]
    for index, f in enumerate(fields):
        key = f.alias or f.name
        namespace[f"make{index}"] = _builder(f.type)
        given = f"put({f.name!r}, make{index}(data[{key!r}]))"
        default = f.default
        if default is attrs.NOTHING:
            body.append(f"    {given}")  # a KeyError when it is missing: not as written
            continue
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            if default.takes_self:  # not used by the model; decode it the checked way
                raise TypeError(f"{cls.__name__}.{f.name}: a default that takes self")
            namespace[f"default{index}"] = default.factory
            fallback = f"put({f.name!r}, default{index}())"
        else:
            namespace[f"default{index}"] = default
            fallback = f"put({f.name!r}, default{index})"
        body += [f"    if {key!r} in data:", f"        {given}", "    else:", f"        {fallback}"]
    body.append("    return obj")
    exec(compile("\n".join(body), f"<trusted build {cls.__qualname__}>", "exec"), namespace)
    build: _Build = namespace["build"]
    return build


def _tender(value: Any) -> Any:
    if type(value) is not dict:
        raise _Unexpected
    kind = _TENDERS.get(value.get("type"))  # type: ignore[arg-type]
    if kind is None:
        raise _Unexpected
    return _builder(kind)({k: v for k, v in value.items() if k != "type"})


_TENDERS = {cls.tag: cls for cls in TENDER_TYPES}


def _decimal(value: Any) -> Decimal:
    # wire.dumps writes amounts as strings; a JSON number would have been parsed as a float.
    if type(value) is not str:
        raise _Unexpected
    return Decimal(value)


def _datetime(value: Any) -> datetime:
    if type(value) is not str:
        raise _Unexpected
    return datetime.fromisoformat(value)


def _date(value: Any) -> date:
    if type(value) is not str:
        raise _Unexpected
    return date.fromisoformat(value)


def _enum(cls: type[Enum]) -> _Build:
    # The member by its value, as cls(value) finds it first, without Enum.__call__'s overhead
    # (about 0.7 us a field); any other value is not as written.
    members = dict(cls._value2member_map_)

    def member(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):
            raise _Unexpected from None

    return member


def _exactly(kind: type) -> _Build:
    def check(value: Any) -> Any:
        if type(value) is not kind:
            raise _Unexpected
        return value

    return check


def _array(value: Any) -> list[Any]:
    if type(value) is not list:
        raise _Unexpected
    return value


def _string_map(value: Any) -> dict[str, str]:
    if type(value) is not dict or not all(type(v) is str for v in value.values()):
        raise _Unexpected
    return dict(value)
