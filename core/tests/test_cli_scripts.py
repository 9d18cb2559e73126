"""The CLI for scripts and people: stdin, JSON lines, stable keys, uncut tables, one merchant,
OMSBRIDGE_CONFIG, search criteria, quiet HTTP logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import MemoryBackend
from faulty import make_sales
from test_config import GOOD

from omsbridge import plugins
from omsbridge.cli import cli
from omsbridge.model import OrderHit, OrderPage
from omsbridge.spi import Capability

ONE = GOOD.split("[merchants.ACME]")[0]


@pytest.fixture
def run(pm, monkeypatch):
    monkeypatch.setattr(plugins, "_default", pm)
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    runner = CliRunner()

    def invoke(*args: str, input: bytes | None = None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def one(tmp_path) -> Path:
    path = tmp_path / "one.toml"
    path.write_text(ONE)
    return path


def _sale_json() -> bytes:
    from omsbridge import wire

    return wire.dumps(make_sales(1, "SHOPNOW")[0]).encode()


def test_post_reads_stdin_and_merchant_may_be_left_out(run, one):
    result = run("post", "-", "--config", str(one), "--json", input=_sale_json())
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["created"] is True
    # Stable keys: a default (no order number) is written as null, not left out.
    assert set(answer) == {"transaction_id", "order_id", "order_number", "created"}
    assert answer["order_number"] is None


def test_merchant_is_needed_when_the_config_has_several(run, tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(GOOD)
    result = run("post", "-", "--config", str(path), input=_sale_json())
    assert result.exit_code == 2
    assert "--merchant is needed" in result.output and "SHOPNOW, ACME" in result.output


def test_config_from_the_environment_is_not_shown_as_required(run, one, monkeypatch):
    monkeypatch.setenv("OMSBRIDGE_CONFIG", str(one))
    help_text = run("order", "--help").output
    assert "--config FILE" in help_text and "required" not in help_text
    assert run("post", "-", "--json", input=_sale_json()).exit_code == 0
    monkeypatch.delenv("OMSBRIDGE_CONFIG")
    missing = run("order", "X")
    assert missing.exit_code == 2
    assert "give --config FILE or set OMSBRIDGE_CONFIG" in missing.output


def test_search_without_criteria_names_the_flags(run, one):
    result = run("search", "--config", str(one))
    assert result.exit_code == 2
    for flag in ("--order-number", "--email", "--last-name", "--customer-id", "--from", "--to"):
        assert flag in result.output


def test_search_prints_json_lines_with_every_key(run, one, monkeypatch):
    from datetime import UTC, datetime
    from decimal import Decimal

    when = datetime(2026, 11, 22, 10, tzinfo=UTC)
    common = {"placed_at": when, "currency": "USD", "status": "OPEN", "item_count": 1}
    hits = (
        OrderHit(order_id="O-1", order_number="N-1", total=Decimal("10.00"),
                 email="a@example.com", **common),
        OrderHit(order_id="O-2", order_number="N-2", total=Decimal("5.00"), **common),
    )  # fmt: skip
    monkeypatch.setattr(
        MemoryBackend, "capabilities", MemoryBackend.capabilities | {Capability.SEARCH_ORDERS}
    )
    monkeypatch.setattr(
        MemoryBackend, "search_orders", lambda self, q: OrderPage(hits, "c2"), raising=False
    )
    result = run("search", "--config", str(one), "--last-name", "Doe", "--nl")
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["order_id"] for x in lines] == ["O-1", "O-2"]
    assert set(lines[0]) == set(lines[1]), "every line has the same keys"
    assert lines[1]["email"] is None
    assert "more: --cursor c2" in result.stderr


def test_tables_are_not_cut_when_piped(run, one, tmp_path):
    from omsbridge.store import SqliteStore

    store = SqliteStore(one.parent / "state" / "omsbridge.db")
    [sale] = make_sales(1, "SHOPNOW")
    store.enqueue_many([("SHOPNOW", sale)])
    long_id = sale.transaction_id
    store.close()
    result = run("export", "list", "--config", str(one))
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()
    assert rows[0].split("\t")[:3] == ["id", "merchant", "transaction"]
    assert long_id in rows[1].split("\t"), "a piped table keeps every value whole"
    nl = run("export", "list", "--config", str(one), "--nl")
    assert json.loads(nl.stdout.splitlines()[0])["transaction_id"] == long_id


def test_http_request_lines_only_at_debug(run):
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    levels = root.level, httpx_log.level
    try:
        run("-v", "backends")
        assert not httpx_log.isEnabledFor(logging.INFO)
        run("-vv", "backends")
        assert httpx_log.isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(levels[0])
        httpx_log.setLevel(levels[1])


def test_backends_prints_json_lines(run):
    lines = [json.loads(x) for x in run("backends", "--nl").stdout.splitlines()]
    assert [x["name"] for x in lines] == ["memory", "other"]


def test_worker_at_info_does_not_log_each_http_request(run, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[store]\npath = "x.db"\n[merchants.A]\nbackend = "nope"\n')
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    levels = root.level, httpx_log.level
    httpx_log.setLevel(logging.NOTSET)
    try:
        result = run("worker", "--config", str(bad), "--log-level", "INFO")
        assert result.exit_code == 1  # the config is refused, after logging was set up
        assert root.isEnabledFor(logging.INFO)
        assert not httpx_log.isEnabledFor(logging.INFO)
    finally:
        root.setLevel(levels[0])
        httpx_log.setLevel(levels[1])
