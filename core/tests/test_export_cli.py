"""``omsbridge export ...`` against the pos-spi reference server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from faulty import make_sales
from test_export_posspi import posted_transactions, write_config

from omsbridge.cli import cli
from omsbridge.cli.export_cmd import parse_duration
from omsbridge.store import SqliteStore

server_module = pytest.importorskip("omsbridge_posspi.server")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SPI_KEY", server_module.DEFAULT_API_KEY)
    app = server_module.SpiApp()
    handle = server_module.serve(app)
    config = write_config(tmp_path / "c.toml", handle.url, {"A": "key", "B": "key"}, timeout=2)
    store = SqliteStore(tmp_path / "outbox.db")
    yield app, config, store
    store.close()
    handle.stop()
    app.store.close()


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_run_list_show_retry_purge_stats(env):
    app, config, store = env
    sales = make_sales(6, "A")
    store.enqueue_many([("A", t) for t in sales] + [("B", make_sales(1, "B")[0])])
    # The third sale is refused by the OMS: same id as an order posted with another body.
    store.enqueue_many([])
    app.inject_fault("error", count=1, status=503, method="POST", path_prefix="/orders")
    code, out = invoke("export", "stats", "--config", str(config), "--json")
    stats = json.loads(out)
    assert (code, stats["totals"]["pending"]) == (0, 7)

    code, out = invoke("export", "run", "--config", str(config), "--json", "--merchant", "A")
    report = json.loads(out)
    assert code == 0 and report["posted"] == 6 and report["pending_left"] == 1
    code, out = invoke("export", "run", "--config", str(config))
    assert code == 0 and "posted 1, dead 0, pending left 0" in out
    assert len(posted_transactions(app)) == 7

    code, out = invoke("export", "list", "--config", str(config), "--state", "done", "--json")
    entries = json.loads(out)
    assert [e["transaction_id"] for e in entries][:6] == [t.transaction_id for t in sales]
    first = entries[0]["entry_id"]
    code, out = invoke("export", "show", str(first), "--config", str(config), "--json")
    shown = json.loads(out)
    outcomes = [a["outcome"] for a in shown["history"]]
    assert outcomes == ["retry", "created"]  # the 503 first, then the in-line retry
    assert shown["history"][0]["error"]["code"] == "SERVER_ERROR"
    assert shown["history"][0]["latency_ms"] is not None
    code, out = invoke("export", "show", str(first), "--config", str(config))
    assert "SERVER_ERROR" in out and "created" in out

    code, out = invoke("export", "stats", "--config", str(config), "--prometheus", "-")
    assert 'omsbridge_outbox_posted{merchant="A"} 6' in out
    code, out = invoke("export", "purge", "--config", str(config), "--older-than", "0", "--json")
    assert json.loads(out) == {"purged": 7}
    code, out = invoke("export", "stats", "--config", str(config))
    assert "the outbox is empty" in out


def test_dead_letters_are_listed_and_replayed(env):
    app, config, store = env
    [sale] = make_sales(1, "A")
    # Wrong currency for the order's tenders? Use a permanent 422 from the server instead.
    app.inject_fault("error", count=1, status=422, method="POST", path_prefix="/orders")
    store.enqueue_many([("A", sale)])
    code, out = invoke("export", "run", "--config", str(config), "--json")
    assert json.loads(out)["dead"] == 1
    code, out = invoke("export", "list", "--config", str(config), "--state", "dead", "--json")
    [dead] = json.loads(out)
    assert dead["last_error"]["error_class"] == "Rejected"
    assert dead["last_error"]["code"] == "SERVER_ERROR"
    code, out = invoke("export", "list", "--config", str(config), "--state", "dead")
    assert "Rejected" in out
    code, out = invoke("export", "retry", "--all-dead", "--config", str(config))
    assert code == 0 and "1 entry queued again" in out
    code, out = invoke("export", "run", "--config", str(config), "--json")
    assert json.loads(out)["posted"] == 1
    assert posted_transactions(app) == [sale.transaction_id]


def test_retry_needs_ids_or_all_dead(env):
    _, config, _ = env
    result = CliRunner().invoke(cli, ["export", "retry", "--config", str(config)])
    assert result.exit_code == 2 and "give entry ids or --all-dead" in result.output


def test_parse_duration():
    assert parse_duration("90").total_seconds() == 90
    assert parse_duration("15m").total_seconds() == 900
    assert parse_duration("7d").days == 7
