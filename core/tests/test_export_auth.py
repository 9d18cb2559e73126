"""A refused login pauses the merchant, loudly, and never kills an entry (issue 11, item 10)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import attrs
import pytest
from faulty import OMS, FaultyPlugin, config_text, make_sales
from test_export_job import FAST, assert_exactly_once, oms

from omsbridge import Bridge
from omsbridge.export import ExportJob, ExportSettings
from omsbridge.export.metrics import prometheus_text, stats_dict
from omsbridge.outbox import Queued
from omsbridge.store import AttemptOutcome, EntryState, PauseKind

AUTH = ExportSettings(
    claim_size=20,
    lease_seconds=30,
    concurrency=4,
    policy=attrs.evolve(FAST, auth_pause_initial=0.2, auth_pause_max=5),
)


@pytest.fixture
def make_bridge(tmp_path, pm):
    OMS.clear()
    pm.register(FaultyPlugin(), name="faulty-plugin")
    made: list[Bridge] = []

    def make(merchants: dict[str, str]) -> Bridge:
        path = tmp_path / "omsbridge.toml"
        path.write_text(config_text(merchants, "faulty"))
        made.append(Bridge.from_config(path, plugin_manager=pm))
        return made[-1]

    yield make
    for bridge in made:
        bridge.close()
    OMS.clear()


def _errors_about_login(records) -> list[logging.LogRecord]:
    return [r for r in records if r.levelno >= logging.ERROR and "LOGIN REFUSED" in r.getMessage()]


def test_refused_login_pauses_the_merchant_and_no_entry_dies(make_bridge, caplog):
    bridge = make_bridge({"A": "a", "B": "b"})
    refused, fine = oms("a"), oms("b")
    refused.refuse_login = True
    sales_a, sales_b = make_sales(10, "A"), make_sales(5, "B")
    bridge.store.enqueue_many([("A", t) for t in sales_a] + [("B", t) for t in sales_b])
    caplog.set_level(logging.INFO, logger="omsbridge")

    report = ExportJob(bridge, settings=AUTH).run()

    by_merchant = {m.merchant_id: m for m in report.merchants}
    assert by_merchant["B"].posted == 5, "one merchant's refused login slowed another"
    assert_exactly_once(fine, sales_b)
    a = by_merchant["A"]
    assert (a.auth_failed, a.dead, a.posted) == (1, 0, 0)
    assert "invalid_grant" in (a.login_refused or "")
    assert refused.calls == 1, "the queue was walked one entry at a time against a bad login"
    entries = bridge.store.entries(states=list(EntryState), merchant_id="A", limit=100)
    assert {e.state for e in entries} == {EntryState.PENDING}
    assert all(e.attempts == 0 for e in entries), "a refused login used up an entry's attempts"
    [tried] = [e for e in entries if bridge.store.attempts(e.entry_id)]
    assert [x.outcome for x in bridge.store.attempts(tried.entry_id)] == [
        AttemptOutcome.AUTH_FAILED
    ]
    pause = bridge.store.merchant_pause("A")
    assert pause is not None and pause.kind == PauseKind.AUTH and pause.failures == 1
    assert len(_errors_about_login(caplog.records)) == 1

    # Said loudly: export stats (JSON and Prometheus) show the pause and why.
    figures = bridge.store.stats(datetime.now(UTC))
    [row] = [
        m for m in stats_dict(figures, datetime.now(UTC))["merchants"] if m["merchant_id"] == "A"
    ]
    assert row["pause"]["kind"] == "auth" and "invalid_grant" in row["pause"]["reason"]
    text = prometheus_text(figures, datetime.now(UTC))
    assert 'omsbridge_merchant_login_refused{merchant="A"} 1' in text
    assert 'omsbridge_merchant_login_refused{merchant="B"} 0' in text

    # While paused nothing is tried; after the pause the login is tried again, with a longer
    # pause, and no second ERROR line.
    ExportJob(bridge, settings=AUTH).run(["A"])
    assert refused.calls == 1
    time.sleep(0.25)
    report = ExportJob(bridge, settings=AUTH).run(["A"])
    assert refused.calls == 2 and report.merchants[0].auth_failed == 1
    second = bridge.store.merchant_pause("A")
    assert second is not None and second.failures == 2
    assert (second.until - datetime.now(UTC)).total_seconds() > 0.25  # backoff doubled: 0.4 s
    assert len(_errors_about_login(caplog.records)) == 1

    # The POS posting meanwhile: the sale waits in the outbox (pending), it is not a dead letter.
    [late] = make_sales(1, "A-LATE")
    with pytest.raises(Queued):
        bridge.for_merchant("A").post(late)
    assert bridge.store.find("A", late.transaction_id).state == EntryState.PENDING

    # The login works again: the merchant resumes by itself and everything is posted once.
    refused.refuse_login = False
    report = ExportJob(bridge, settings=AUTH).run(["A"], drain=True, deadline=time.monotonic() + 20)
    assert report.merchants[0].resumed
    assert bridge.store.merchant_pause("A") is None
    assert_exactly_once(refused, [*sales_a, late])
    assert bridge.store.stats(datetime.now(UTC)).total("dead") == 0
    done = bridge.store.entries(states=[EntryState.DONE], merchant_id="A", limit=100)
    assert all(e.attempts == 1 for e in done)
    assert any("merchant resumed" in r.getMessage() for r in caplog.records)
