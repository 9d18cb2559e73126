"""The generic order commands (core/src/omsbridge/cli/orders.py) against the Salesforce sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sf_backend_helpers import line, sale

from omsbridge import wire
from omsbridge.cli.orders import cancel, order, post, search


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("omsbridge")
    for command in (post, search, order, cancel):
        group.add_command(command)
    return group


@pytest.fixture
def setup(sf_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("SF_PASSWORD", "sandbox-password")
    monkeypatch.setenv("SF_SECRET", "sandbox-consumer-secret")
    (tmp_path / "omsbridge.toml").write_text(f"""
[merchants.SHOPNOW]
backend = "salesforce"
locale = "en_US"
region = "US"

[merchants.SHOPNOW.salesforce]
url_base = "{sf_sandbox.url}"
allow_insecure_sandbox_url = true
username = "integration@omsbridge.sandbox"
password = {{ env = "SF_PASSWORD" }}
client_id = "3MVG9omsbridgeSandboxConsumerKey"
client_secret = {{ env = "SF_SECRET" }}
""")
    return ["--config", str(tmp_path / "omsbridge.toml"), "--merchant", "SHOPNOW", "--json"]


def run(cli: click.Group, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, list(args))
    try:
        return result.exit_code, json.loads(result.output)
    except ValueError:  # pragma: no cover - shown on failure
        raise AssertionError(result.output) from result.exception


def test_post_search_order_cancel(cli: click.Group, setup: list[str], tmp_path: Path) -> None:
    txn = tmp_path / "sale.json"
    txn.write_text(wire.dumps(sale([line(1, "A", "2"), line(2, "B")], txn_id="CLI-1")))
    code, posted = run(cli, "post", str(txn), *setup)
    assert code == 0 and posted["created"] is True and posted["order_number"]
    code, again = run(cli, "post", str(txn), *setup)
    assert code == 0 and again["created"] is False
    code, page = run(cli, "search", "--order-number", posted["order_number"], *setup)
    assert code == 0 and page["hits"][0]["order_number"] == posted["order_number"]
    code, detail = run(cli, "order", posted["order_number"], *setup)
    assert code == 0 and [ln["sku"] for ln in detail["lines"]] == ["A", "B"]
    code, error = run(cli, "cancel", posted["order_number"], "--reason", "x", *setup)
    assert code == 1 and error["error"] == "Conflict"  # take-with goods: nothing to cancel
    code, error = run(cli, "order", "NOPE", *setup)
    assert code == 1 and error["error"] == "NotFound"


def test_bad_transaction_file(cli: click.Group, setup: list[str], tmp_path: Path) -> None:
    txn = tmp_path / "bad.json"
    txn.write_text('{"transaction_id": "X"}')
    code, error = run(cli, "post", str(txn), *setup)
    assert code == 1 and error["error"] == "InvalidTransaction" and error["issues"]
