"""JSON Schema for the native JSON format, generated from the attrs model (never written by hand).

``omsbridge schema`` prints it; ``docs/schema/transaction.schema.json`` is the committed copy and
a test fails when it is stale.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Union, get_args, get_origin

import attrs

from omsbridge.model.tenders import Tender
from omsbridge.wire import _NUMBER

__all__ = ["json_schema"]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(root: type, *, schema_id: str | None = None) -> dict[str, Any]:
    """Return the JSON Schema of ``root`` (an attrs model class), with every nested class in ``$defs``."""
    defs: dict[str, Any] = {}
    body = _Builder(defs).ref(root)
    schema: dict[str, Any] = {"$schema": _DIALECT}
    if schema_id:
        schema["$id"] = schema_id
    schema.update(body)
    schema["$defs"] = dict(sorted(defs.items()))
    return schema


class _Builder:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def ref(self, cls: type) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: stops recursion on self-reference
            self.defs[name] = self._object(cls)
        return {"$ref": f"#/$defs/{name}"}

    def _object(self, cls: type) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        tag = getattr(cls, "tag", None)
        if tag is not None and cls in get_args(Tender):
            props["type"] = {"const": tag}
            required.append("type")
        for field in attrs.fields(cls):
            props[field.name] = self.type(hints[field.name])
            if field.default is attrs.NOTHING:
                required.append(field.name)
        out: dict[str, Any] = {
            "type": "object",
            "description": inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0],
            "properties": props,
            "additionalProperties": False,
        }
        if required:
            out["required"] = required
        return out

    def type(self, tp: Any) -> dict[str, Any]:
        if tp == Tender:
            return {"oneOf": [self.ref(c) for c in get_args(Tender)]}
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            inner = self.type(members[0]) if len(members) == 1 else self.type(Union[tuple(members)])  # noqa: UP007
            return {"anyOf": [inner, {"type": "null"}]} if type(None) in get_args(tp) else inner
        if origin is tuple:
            return {"type": "array", "items": self.type(get_args(tp)[0])}
        if origin in (Mapping, dict, typing.Mapping):
            return {"type": "object", "additionalProperties": self.type(get_args(tp)[1])}
        if tp is Decimal:
            return {"type": ["string", "number"], "pattern": _NUMBER.pattern}
        if tp is datetime:
            return {"type": "string", "format": "date-time"}
        if tp is date:
            return {"type": "string", "format": "date"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is str:
            return {"type": "string"}
        if isinstance(tp, type) and issubclass(tp, Enum):
            return {"enum": [m.value for m in tp]}
        if attrs.has(tp):
            return self.ref(tp)
        raise TypeError(f"no JSON Schema mapping for {tp!r}")  # pragma: no cover
