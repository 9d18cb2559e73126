"""Docs stay true: every hook documented with its signature and tested; the schema is fresh."""

from __future__ import annotations

import inspect
import json
import re

import jsonschema
import pytest
from paths import EXAMPLES, ROOT

from omsbridge import hookspecs
from omsbridge.cli.schema_cmd import transaction_schema_text

DOCS = ROOT / "docs"
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("omsbridge_"))


def test_there_are_hooks():
    assert "omsbridge_register_backends" in HOOKS and len(HOOKS) >= 8


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_signature(hook):
    text = (DOCS / "hooks.md").read_text()
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"### `{hook}({params})`" in text, f"docs/hooks.md lacks a heading for {hook}({params})"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    tests = [p for p in (ROOT / "core" / "tests").glob("test_*.py") if p.name != "test_docs.py"]
    assert any(re.search(rf"\b{hook}\b", p.read_text()) for p in tests), f"no test uses {hook}"


def test_committed_schema_is_fresh():
    committed = (DOCS / "schema" / "transaction.schema.json").read_text()
    assert committed == transaction_schema_text(), (
        "docs/schema/transaction.schema.json is stale: run `omsbridge schema > "
        "docs/schema/transaction.schema.json`"
    )


def test_examples_match_the_schema():
    schema = json.loads(transaction_schema_text())
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES.glob("*.json"):
        errors = list(validator.iter_errors(json.loads(path.read_text())))
        assert not errors, f"{path.name}: {errors[0].message}"


def test_schema_rejects_an_unknown_field():
    schema = json.loads(transaction_schema_text())
    data = json.loads((EXAMPLES / "sale-cash.json").read_text())
    data["lines"][0]["colour"] = "red"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data))


def test_every_example_flow_is_documented():
    text = (DOCS / "native-format.md").read_text()
    for path in EXAMPLES.glob("*.json"):
        assert path.name in text, f"docs/native-format.md does not mention {path.name}"


def _api_reference_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gen_api_reference", ROOT / "scripts" / "gen_api_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_page_is_fresh():
    generator = _api_reference_module()
    committed = (DOCS / "api-reference.md").read_text(encoding="utf-8")
    assert committed == generator.render(), (
        "docs/api-reference.md is stale: run python scripts/gen_api_reference.py"
    )


READ_SIDE = ("OrderDetail", "OrderLine", "OrderHit", "OrderPage", "OrderQuery", "Payment",
             "Shipment", "PostResult", "CancelLine", "CancelResult")  # fmt: skip


@pytest.mark.parametrize("name", READ_SIDE)
def test_read_side_fields_are_documented(name):
    import attrs

    import omsbridge

    cls = getattr(omsbridge, name)
    docs = _api_reference_module()._field_docs(cls)
    undocumented = [f.name for f in attrs.fields(cls) if not docs.get(f.name)]
    assert not undocumented, f"{name}: fields without a docstring under them: {undocumented}"
