"""The SPI's OpenAPI document: its model schemas are generated from the core classes.

``docs/pos-spi-openapi.yaml`` is written by hand except the ``components.schemas`` of the model
classes (:data:`MODEL_CLASSES` and everything they contain), which are pasted from
:func:`model_schemas` so the contract and the code cannot drift (a test compares them). After changing a model class, refresh the document::

    python -m omsbridge_posspi.openapi docs/pos-spi-openapi.yaml     # needs PyYAML
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omsbridge.model import (
    CancelResult,
    EventBatch,
    FulfillmentOrder,
    FulfillmentUpdate,
    OrderDetail,
    OrderPage,
    PostResult,
    Transaction,
)
from omsbridge.schema import json_schema
from omsbridge_posspi.messages import CancelLinesRequest, CancelOrderRequest, ErrorBody

__all__ = ["MODEL_CLASSES", "embedded_schema", "model_schemas", "refresh"]

MODEL_CLASSES: tuple[type, ...] = (
    Transaction,
    PostResult,
    OrderPage,
    OrderDetail,
    CancelOrderRequest,
    CancelLinesRequest,
    CancelResult,
    FulfillmentOrder,
    FulfillmentUpdate,
    EventBatch,
    ErrorBody,
)
"""The classes whose JSON Schemas (and every class they contain) the OpenAPI document holds."""

_LOCAL = "#/$defs/"
_COMPONENTS = "#/components/schemas/"


def _rewrite(node: Any, old: str, new: str) -> Any:
    """Copy a schema with every ``$ref`` prefix ``old`` changed to ``new``."""
    if isinstance(node, dict):
        return {
            key: (new + value[len(old) :])
            if key == "$ref" and isinstance(value, str) and value.startswith(old)
            else _rewrite(value, old, new)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(item, old, new) for item in node]
    return node


def model_schemas() -> dict[str, dict[str, Any]]:
    """Every generated schema by class name, as ``components.schemas`` entries.

    :func:`omsbridge.schema.json_schema` puts each class in ``$defs``; here they are merged into
    one set (a class used by several messages appears once) with references pointing at
    ``#/components/schemas/``.
    """
    merged: dict[str, dict[str, Any]] = {}
    for cls in MODEL_CLASSES:
        for name, body in json_schema(cls)["$defs"].items():
            merged[name] = _rewrite(body, _LOCAL, _COMPONENTS)
    return dict(sorted(merged.items()))


def embedded_schema(components: dict[str, Any], root: str) -> dict[str, Any]:
    """Rebuild the stand-alone JSON Schema of ``root`` from an OpenAPI document's
    ``components.schemas``: the inverse of :func:`model_schemas`, for the drift test."""
    defs: dict[str, Any] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in defs:
            continue
        defs[name] = _rewrite(components[name], _COMPONENTS, _LOCAL)
        todo += _refs(components[name])
    return {"$ref": _LOCAL + root, "$defs": dict(sorted(defs.items()))}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        found = (
            [ref[len(_COMPONENTS) :]]
            if isinstance(ref, str) and ref.startswith(_COMPONENTS)
            else []
        )
        return found + [inner for value in node.values() for inner in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def refresh(path: Path) -> None:
    """Rewrite the generated schemas of the OpenAPI document at ``path`` in place."""
    import yaml  # a development tool: PyYAML is in the test extra, not a runtime dependency

    class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML has no type hints
        pass

    def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _text)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document.setdefault("components", {}).setdefault("schemas", {}).update(model_schemas())
    path.write_text(
        yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True),
        encoding="utf-8",
    )


if __name__ == "__main__":
    refresh(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/pos-spi-openapi.yaml"))
