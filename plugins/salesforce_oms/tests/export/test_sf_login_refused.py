"""A rejected login (the integration user's password changed, tokens revoked) against the
sandbox: the merchant is paused and shown as such, no entry dies or spends an attempt, and
the queue is posted exactly once as soon as the login works again."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sf_export_helpers import make_sales, orders_by_external_id, write_config

from omsbridge import Bridge
from omsbridge.cli import cli
from omsbridge.export import ExportJob, ExportSettings, RetryPolicy
from omsbridge.store import EntryState, PauseKind, SqliteStore
from omsbridge_salesforce_sandbox import USERNAME

POLICY = RetryPolicy(
    inline_wait_initial=0.005,
    inline_wait_max=0.02,
    backoff_initial=0.05,
    backoff_max=0.3,
    auth_pause_initial=0.3,
    auth_pause_max=1.0,
)


def _set_password(sandbox: Any, password: str) -> str:
    users = sandbox.auth.users
    old = users[USERNAME.lower()]
    users[USERNAME.lower()] = dataclasses.replace(old, password=password)
    sandbox.auth.clear_tokens()  # sessions die with the password, as Salesforce does
    return str(old.password)


def test_refused_login_pauses_then_resumes_with_nothing_lost(
    sf_sandbox: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sb = sf_sandbox.sandbox
    config = write_config(tmp_path / "omsbridge.toml", sf_sandbox.url, ["SHOP"])
    store = SqliteStore(tmp_path / "outbox.db")
    bridge = Bridge.from_config(config, store=store)
    sales = make_sales(12, "L")
    store.enqueue_many([("SHOP", t) for t in sales[:6]])
    settings = ExportSettings(claim_size=5, policy=POLICY)
    ExportJob(bridge, settings=settings).run()  # logs in and posts the first six
    real_password = _set_password(sb, "changed-by-an-admin")
    store.enqueue_many([("SHOP", t) for t in sales[6:]])

    report = ExportJob(bridge, settings=settings).run()
    [shop] = report.merchants
    # One composite request carried the claimed entries: each is put back, none dies.
    assert shop.auth_failed >= 1 and (shop.dead, shop.posted) == (0, 0)
    refusals = [r for r in caplog.records if "LOGIN REFUSED" in r.getMessage()]
    assert [r.levelname for r in refusals] == ["ERROR"]
    assert "invalid_grant" in (shop.login_refused or "")
    pending = store.entries(states=[EntryState.PENDING], limit=100)
    assert len(pending) == 6 and all(e.attempts == 0 for e in pending)
    pause = store.merchant_pause("SHOP")
    assert pause is not None and pause.kind == PauseKind.AUTH

    # `export stats` says so, as text and JSON.
    runner = CliRunner()
    text = runner.invoke(cli, ["export", "stats", "--config", str(config)])
    assert text.exit_code == 0 and "LOGIN REFUSED" in text.output, text.output
    data = json.loads(
        runner.invoke(cli, ["export", "stats", "--config", str(config), "--json"]).stdout
    )
    [row] = data["merchants"]
    assert row["pause"]["kind"] == "auth" and "invalid_grant" in row["pause"]["reason"]
    prom = runner.invoke(cli, ["export", "stats", "--config", str(config), "--prometheus", "-"])
    assert 'omsbridge_merchant_login_refused{merchant="SHOP"} 1' in prom.output

    # Still refused after the pause: tried again, still nothing dead or counted.
    time.sleep(0.35)
    ExportJob(bridge, settings=settings).run()
    again = store.merchant_pause("SHOP")
    assert again is not None and again.failures == 2
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1, "ERROR once only"
    assert store.stats(datetime.now(UTC)).total("dead") == 0

    _set_password(sb, real_password)
    report = ExportJob(bridge, settings=settings).run(drain=True, deadline=time.monotonic() + 30)
    assert report.merchants[0].resumed
    assert store.merchant_pause("SHOP") is None
    held = orders_by_external_id(sf_sandbox.url)
    assert sorted(held) == sorted(t.transaction_id for t in sales), "lost or doubled"
    assert all(e.attempts == 1 for e in store.entries(states=[EntryState.DONE], limit=100))
    bridge.close()
    store.close()


@pytest.fixture(autouse=True)
def _no_leftover_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMSBRIDGE_CONFIG", raising=False)
