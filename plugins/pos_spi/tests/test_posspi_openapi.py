"""The OpenAPI document: valid, generated schemas not stale, and served in full by the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from omsbridge.cli.schema_cmd import transaction_schema_text
from omsbridge.model import Transaction
from omsbridge.schema import json_schema
from omsbridge_posspi.openapi import embedded_schema, model_schemas
from omsbridge_posspi.server import SpiApp

DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "pos-spi-openapi.yaml"
REFRESH = "run: python -m omsbridge_posspi.openapi docs/pos-spi-openapi.yaml"
SPI_OPERATIONS = {
    "POST_ORDER",
    "SEARCH_ORDER",
    "GET_ORDER_DETAIL",
    "BORIS_GET_ORDER_DETAIL",
    "CANCEL_ORDER",
    "CANCEL_LINES",
    "LIST_FULFILLMENT_ORDERS",
    "GET_FULFILLMENT_ORDER",
    "UPDATE_FULFILLMENT",
    "FULFILLMENT_EVENTS",
    "OAUTH_TOKEN",
    "HEALTH_CHECK",
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_embedded_transaction_schema_equals_the_generated_one(doc: dict[str, Any]) -> None:
    generated = json_schema(Transaction)
    generated.pop("$schema")
    assert embedded_schema(doc["components"]["schemas"], "Transaction") == generated, REFRESH
    # ...which is also what `omsbridge schema` prints.
    printed = json.loads(transaction_schema_text())
    assert {k: v for k, v in printed.items() if k not in ("$schema", "$id")} == generated


def test_every_generated_schema_is_current(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name, schema in model_schemas().items():
        assert schemas.get(name) == schema, f"components.schemas.{name} is stale; {REFRESH}"


def test_operation_ids_name_the_spi_operations(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in doc["paths"].values() for op in _operations(item)]
    assert len(ids) == len(set(ids))
    assert set(ids) == SPI_OPERATIONS


def test_every_documented_operation_is_served_and_nothing_else(doc: dict[str, Any]) -> None:
    documented = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    app = SpiApp(admin=False)
    served = {
        (
            method,
            rule.rule.replace("<ref>", "{order_id}").replace("<fo_id>", "{fulfillment_order_id}"),
        )
        for rule in app._routes.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS") and not rule.rule.startswith("/__admin__/")
    }
    assert served == documented


def test_errors_are_documented_with_the_error_shape(doc: dict[str, Any]) -> None:
    for name in ("BadRequest", "Unauthorized", "NotFound", "Conflict", "Rejected", "RateLimited"):
        content = doc["components"]["responses"][name]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert "Retry-After" in doc["components"]["responses"]["RateLimited"]["headers"]
    error = doc["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["code", "message"]
    assert "field" in error["properties"]


def test_line_numbering_is_documented(doc: dict[str, Any]) -> None:
    text = doc["info"]["description"]
    assert "LineNumber 1 -> 2" in text
    assert "original.order_id" in text and "original.line_number" in text


def _operations(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        op for method, op in item.items() if method in ("get", "post", "put", "patch", "delete")
    ]
