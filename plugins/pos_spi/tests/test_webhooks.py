# ruff: noqa: F811
"""Outgoing webhooks: Standard Webhooks signatures, delivery through the store's outbox, faults at
each step (receiver 500, timeout, lost answer, 429/503 Retry-After, 410 Gone, a sender killed
between send and mark-done), on SQLite and PostgreSQL, and no secret in logs, reprs or errors."""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from standardwebhooks import Webhook

# The fixtures come from webhook_support (arguments named as them are not redefinitions).
from webhook_support import SECRET, pg_server, receiver, store_url  # noqa: F401

from omsbridge.config import Secret, load_config
from omsbridge.errors import ConfigError
from omsbridge.model import (
    FulfillmentAction,
    FulfillmentKind,
    FulfillmentOrder,
    FulfillmentOrderLine,
    FulfillmentUpdate,
)
from omsbridge.store import WebhookState, open_store
from omsbridge.webhook_outbox import (
    message_id,
    record_fulfillment_order,
    record_fulfillment_update,
)
from omsbridge_posspi.serve.webhooks import DeliverySettings, WebhookSender, sign, signed_headers

FAST = DeliverySettings(schedule=(0.0, 0.0, 0.0), jitter=0.0, timeout=1.0, threads=1)
"""Retries due at once, four attempts, a one-second timeout."""


def _fo(status: str = "Allocated") -> FulfillmentOrder:
    return FulfillmentOrder(
        fulfillment_order_id="0a3FO0001",
        order_id="801ORD1",
        status=status,
        kind=FulfillmentKind.PICKUP,
        lines=(FulfillmentOrderLine("L1", "SKU-1", Decimal("2"), Decimal("19.99")),),
        currency="USD",
        store_id="STORE-7",
    )


def _config(tmp_path: Path, store: str, url: str, monkeypatch, extra: str = ""):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    path = tmp_path / "omsbridge.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [store]
            {store}
            [merchants.A]
            backend = "pos-spi"
            [merchants.A.pos-spi]
            base_url = "http://127.0.0.1:1"
            auth = {{ type = "api_key", api_key = {{ env = "HOME" }} }}
            [merchants.A.webhook]
            url = "{url}"
            secret = {{ env = "HOOK_SECRET" }}
            {extra}
            """
        )
    )
    return path, load_config(path)


# -- signing ------------------------------------------------------------------------------------


def test_signature_matches_the_specifications_test_vector():
    # The vector every reference library tests (libraries/*: test_sign_function and the like).
    assert (
        sign(Secret(SECRET), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_signed_headers_verify_with_the_reference_library():
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    body = '{"type":"fulfillment_order.created","data":{"a":"é"}}'
    now = int(time.time())
    headers = signed_headers(Secret(secret), "msg_abc", now, body)
    assert Webhook(secret).verify(body.encode(), headers) == {
        "type": "fulfillment_order.created",
        "data": {"a": "é"},
    }
    stamp = datetime.fromtimestamp(now, UTC)
    assert headers["webhook-signature"] == Webhook(secret).sign("msg_abc", stamp, body)
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify((body + " ").encode(), headers)


# -- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "path", "expected"),
    [
        ('url = "ftp://x"\nsecret = { env = "HOOK_SECRET" }', ".url", "http:// or https://"),
        ('secret = { env = "HOOK_SECRET" }', ".url", "is required"),
        ('url = "https://pos/h"\nsecret = "whsec_abc"', ".secret", "secret reference"),
        ('url = "https://pos/h"\nsecret = { env = "BAD_SECRET" }', ".secret", "no prefix"),
        ('url = "https://pos/h"\nsecret = { env = "SHORT_SECRET" }', ".secret", "24 to 64"),
        (
            'url = "https://pos/h"\nsecret = { env = "HOOK_SECRET" }\nevents = ["x.y"]',
            ".events",
            "unknown event type",
        ),
        (
            'url = "https://pos/h"\nsecret = { env = "HOOK_SECRET" }\nretries = 3',
            ".retries",
            "unknown key",
        ),
    ],
)
def test_config_errors_name_the_path_and_never_the_secret(
    tmp_path, monkeypatch, table, path, expected
):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("BAD_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw-no-prefix")
    monkeypatch.setenv("SHORT_SECRET", "whsec_" + base64.b64encode(b"short-key").decode())
    file = tmp_path / "c.toml"
    file.write_text(
        '[merchants.A]\nbackend = "pos-spi"\n[merchants.A.pos-spi]\nbase_url = "http://127.0.0.1:1"\n'
        'auth = { type = "api_key", api_key = { env = "HOME" } }\n'
        f"[merchants.A.webhook]\n{table}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    text = str(caught.value)
    assert f"merchants.A.webhook{path}" in text and expected in text, text
    for secret in (SECRET, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "short-key", "c2hvcnQta2V5"):
        assert secret not in text


def test_config_defaults_to_every_event_and_hides_the_secret(tmp_path, monkeypatch):
    _, config = _config(tmp_path, 'path = "s.db"', "https://pos.example/hooks", monkeypatch)
    hook = config.merchants["A"].webhook
    assert hook.url == "https://pos.example/hooks"
    assert hook.events == (
        "fulfillment_order.created",
        "fulfillment_order.updated",
        "fulfillment_order.status_reported",
    )
    for shown in (repr(hook), str(hook), repr(config), repr(config.merchants["A"])):
        assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in shown


# -- recording: one message per event ---------------------------------------------------------


def test_the_same_event_recorded_twice_is_one_message_created_then_updated(
    tmp_path, monkeypatch, store_url
):
    _, config = _config(tmp_path, store_url, "https://pos.example/hooks", monkeypatch)
    hook = config.merchants["A"].webhook
    with open_store(config.store) as store:
        first = record_fulfillment_order(store, "A", hook, _fo())
        # A listener that handles the batch again after a crash records it again: same message.
        assert record_fulfillment_order(store, "A", hook, _fo()) == first
        changed = record_fulfillment_order(store, "A", hook, _fo("Fulfilled"))
        assert changed != first
        update = FulfillmentUpdate("0a3FO0001", FulfillmentAction.READY_FOR_PICKUP)
        step = record_fulfillment_update(store, "A", hook, update)
        assert record_fulfillment_update(store, "A", hook, update) == step
        kept = store.webhooks(merchant_id="A")
        assert sorted(m.event_type for m in kept) == [
            "fulfillment_order.created",
            "fulfillment_order.status_reported",
            "fulfillment_order.updated",
        ]
        body = store.webhook(first).body
    assert '"type":"fulfillment_order.created"' in body and '"unit_price":"19.99"' in body
    assert "." not in first and first.startswith("msg_")


def test_events_not_subscribed_are_not_recorded(tmp_path, monkeypatch):
    _, config = _config(
        tmp_path,
        'path = "s.db"',
        "https://pos.example/hooks",
        monkeypatch,
        extra='events = ["fulfillment_order.status_reported"]',
    )
    hook = config.merchants["A"].webhook
    with open_store(config.store) as store:
        assert record_fulfillment_order(store, "A", hook, _fo()) is None
        assert store.webhooks() == []


# -- delivery and faults ------------------------------------------------------------------------


def _sender(config, store, settings=FAST, owner="w1"):
    return WebhookSender(config, store, owner, settings)


def test_delivery_is_signed_and_verified_by_the_receiver(
    tmp_path, monkeypatch, store_url, receiver
):
    _, config = _config(tmp_path, store_url, receiver.url, monkeypatch)
    with open_store(config.store) as store:
        msg = record_fulfillment_order(store, "A", config.merchants["A"].webhook, _fo())
        sender = _sender(config, store)
        assert sender.deliver_due() == 1
        assert sender.deliver_due() == 0
        done = store.webhook(msg)
        sender.close()
    [got] = receiver.received
    assert got.verified and got.message_id == msg
    assert got.body.decode() == done.body  # byte for byte what is stored
    assert done.state == WebhookState.DELIVERED and done.last_status == 200
    assert sender.deliveries.labels("delivered")._value.get() == 1


@pytest.mark.parametrize("fault", [500, "timeout", "drop", 302])
def test_a_failed_attempt_is_retried_with_the_same_id(
    tmp_path, monkeypatch, store_url, receiver, fault
):
    receiver.slow = 1.5  # longer than FAST.timeout
    receiver.script = [fault]
    _, config = _config(tmp_path, store_url, receiver.url, monkeypatch)
    with open_store(config.store) as store:
        msg = record_fulfillment_order(store, "A", config.merchants["A"].webhook, _fo())
        sender = _sender(config, store)
        assert sender.deliver_due() == 1
        failed = store.webhook(msg)
        assert failed.state == WebhookState.PENDING and failed.attempts == 1
        assert failed.last_status == (fault if isinstance(fault, int) else None)
        assert sender.deliver_due() == 1
        assert store.webhook(msg).state == WebhookState.DELIVERED
        sender.close()
    # Both attempts verified, both with one id: the receiver keeps the first it processed.
    assert receiver.ids() == [msg, msg] and all(r.verified for r in receiver.received)
    assert receiver.received[0].body == receiver.received[1].body


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_sets_the_next_attempt(tmp_path, monkeypatch, store_url, receiver, status):
    receiver.script = [("retry-after", status, 120)]
    _, config = _config(tmp_path, store_url, receiver.url, monkeypatch)
    with open_store(config.store) as store:
        msg = record_fulfillment_order(store, "A", config.merchants["A"].webhook, _fo())
        sender = _sender(config, store)
        before = datetime.now(UTC)
        sender.deliver_due()
        waiting = store.webhook(msg)
        assert waiting.state == WebhookState.PENDING and waiting.last_status == status
        assert waiting.next_attempt_at >= before + timedelta(seconds=119)
        assert sender.deliver_due() == 0  # not due: the schedule alone would retry at once
        sender.close()
    assert len(receiver.received) == 1


def test_the_last_failure_makes_a_dead_letter_that_replay_sends_again(
    tmp_path, monkeypatch, store_url, receiver
):
    receiver.script = [500, 500, 500, 500]
    path, config = _config(tmp_path, store_url, receiver.url, monkeypatch)
    with open_store(config.store) as store:
        msg = record_fulfillment_order(store, "A", config.merchants["A"].webhook, _fo())
        sender = _sender(config, store)
        for _ in range(5):
            sender.deliver_due()
        dead = store.webhook(msg)
        assert dead.state == WebhookState.DEAD and dead.attempts == FAST.attempts == 4
        runner = CliRunner()
        listed = runner.invoke(
            _cli(), ["webhooks", "list", "--config", str(path), "--state", "dead"]
        )
        assert listed.exit_code == 0 and msg in listed.output, listed.output
        shown = runner.invoke(_cli(), ["webhooks", "show", "--config", str(path), msg, "--json"])
        assert '"state": "dead"' in shown.output and '"fulfillment_order.created"' in shown.output
        replayed = runner.invoke(_cli(), ["webhooks", "replay", "--config", str(path), msg])
        assert replayed.exit_code == 0 and "1 message(s)" in replayed.output
        assert sender.deliver_due() == 1
        assert store.webhook(msg).state == WebhookState.DELIVERED
        # By time range: the delivered one goes again with --state any, same id.
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        again = runner.invoke(
            _cli(),
            ["webhooks", "replay", "--config", str(path), "--since", since, "--state", "any"],
        )
        assert "1 message(s)" in again.output, again.output
        assert sender.deliver_due() == 1
        soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        purged = runner.invoke(
            _cli(), ["webhooks", "purge", "--config", str(path), "--before", soon]
        )
        assert "1 message(s) deleted" in purged.output, purged.output
        assert store.webhook(msg) is None
        for text in (listed.output, shown.output, replayed.output, again.output):
            assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in text
        sender.close()
    assert receiver.ids() == [msg] * 6


def test_410_gone_disables_the_endpoint_until_enabled(tmp_path, monkeypatch, store_url, receiver):
    receiver.script = [410]
    path, config = _config(tmp_path, store_url, receiver.url, monkeypatch)
    with open_store(config.store) as store:
        msg = record_fulfillment_order(store, "A", config.merchants["A"].webhook, _fo())
        sender = _sender(config, store)
        assert sender.deliver_due() == 1
        assert sender.deliver_due() == 0  # disabled: not sent, still pending, not counted
        kept = store.webhook(msg)
        assert kept.state == WebhookState.PENDING and kept.attempts == 0
        assert "410" in store.webhook_endpoint_disabled("A", receiver.url)
        enabled = CliRunner().invoke(_cli(), ["webhooks", "enable", "--config", str(path), "A"])
        assert enabled.exit_code == 0 and "was disabled: 410 Gone" in enabled.output
        assert sender.deliver_due() == 1
        assert store.webhook(msg).state == WebhookState.DELIVERED
        sender.close()
    assert receiver.ids() == [msg, msg]


def _cli():
    from omsbridge.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    return cli


_KILLED_SENDER = """
import sys
from omsbridge.config import load_config
from omsbridge.store import open_store
from omsbridge_posspi.serve.webhooks import DeliverySettings, WebhookSender

config = load_config(sys.argv[1])
store = open_store(config.store)
settings = DeliverySettings(schedule=(0.0,), timeout=3.0, lease_seconds=8.0, batch=1, threads=1)
WebhookSender(config, store, "doomed", settings).deliver_due()
"""


def test_a_sender_killed_between_send_and_mark_done_sends_again_with_the_same_id(
    tmp_path, monkeypatch, store_url, receiver
):
    receiver.script = ["hold"]  # the receiver processes it, then answers only once released
    path, config = _config(tmp_path, store_url, receiver.url, monkeypatch)
    with open_store(config.store) as store:
        msg = record_fulfillment_order(store, "A", config.merchants["A"].webhook, _fo())
        child = subprocess.Popen([sys.executable, "-c", _KILLED_SENDER, str(path)])
        try:
            assert receiver.arrived.wait(30), "the sender never sent"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        receiver.release.set()
        assert child.returncode == -signal.SIGKILL
        # Never lost: still pending, leased by the dead sender until its lease runs out.
        kept = store.webhook(msg)
        assert kept.state == WebhookState.PENDING and kept.lease_owner == "doomed"
        sender = _sender(config, store, owner="w2")
        deadline = time.monotonic() + 30
        while sender.deliver_due() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.webhook(msg).state == WebhookState.DELIVERED
        sender.close()
    # At least once, one id: the receiver saw it twice and drops the second on webhook-id.
    assert receiver.ids() == [msg, msg] and all(r.verified for r in receiver.received)


def test_settings_keep_a_batch_within_one_lease():
    with pytest.raises(ValueError, match="lease_seconds"):
        DeliverySettings(timeout=30.0, lease_seconds=60.0, batch=8, threads=4)
    DeliverySettings(timeout=15.0, lease_seconds=60.0, batch=8, threads=4)


def test_no_secret_in_logs_reprs_or_errors(tmp_path, monkeypatch, receiver, caplog):
    receiver.script = [500, "drop", ("retry-after", 429, 0), 410]
    receiver.slow = 0.1
    _, config = _config(tmp_path, 'path = "s.db"', receiver.url, monkeypatch)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    caplog.set_level(logging.DEBUG)
    with open_store(config.store) as store:
        record_fulfillment_order(store, "A", config.merchants["A"].webhook, _fo())
        sender = _sender(config, store)
        shown = [repr(sender.config), repr(config.merchants["A"].webhook), repr(store)]
        for _ in range(4):
            sender.deliver_due()
        shown += [repr(m) for m in store.webhooks()]
        sender.close()
    assert len(receiver.received) == 4
    text = caplog.text + "\n".join(shown)
    assert "webhook" in caplog.text  # the log lines were written...
    for secret in (SECRET, SECRET.removeprefix("whsec_"), repr(key)):
        assert secret not in text  # ...without the secret
    with pytest.raises(TypeError) as caught:
        import pickle

        pickle.dumps(config.merchants["A"].webhook)
    assert SECRET.removeprefix("whsec_") not in str(caught.value)


# -- end to end: the worker imports a fulfillment order and pushes it ---------------------------


def test_the_worker_pushes_an_imported_order_and_its_steps(
    tmp_path, monkeypatch, receiver, server, app
):
    """The reference SPI server routes a web order to a store; the worker's listener imports it
    and its webhook task delivers it, signed, to the POS; a step reported through the bridge
    follows; the worker's /metrics counts the deliveries."""
    import threading

    from omsbridge import Bridge
    from omsbridge.listen import ListenerSettings
    from omsbridge.plugins import load_entry_point_plugins, new_plugin_manager
    from omsbridge.worker import Worker, WorkerSettings
    from omsbridge_posspi.server import DEFAULT_API_KEY

    monkeypatch.setenv("TEST_SPI_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    path = tmp_path / "omsbridge.toml"
    path.write_text(
        '[store]\npath = "state.db"\n\n[merchants.ACME]\nbackend = "pos-spi"\n\n'
        f'[merchants.ACME.pos-spi]\nbase_url = "{server.url}"\n'
        'auth = { type = "api_key", api_key = { env = "TEST_SPI_KEY" } }\n'
        f'[merchants.ACME.webhook]\nurl = "{receiver.url}"\nsecret = {{ env = "HOOK_SECRET" }}\n'
    )
    pm = new_plugin_manager()
    load_entry_point_plugins(pm)
    with Bridge.from_config(path, plugin_manager=pm) as bridge:
        settings = WorkerSettings(
            export=False, listener_settings=ListenerSettings(wait=0.2), http_port=0
        )
        worker = Worker(bridge, settings)
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while not (worker.listeners and worker.listeners[0].checkpoint):
                assert time.monotonic() < deadline, "the listener never started"
                time.sleep(0.05)
            app.seed_online_order("STORE-7", kind="PICKUP")
            while not receiver.received:
                assert time.monotonic() < deadline, "no webhook arrived"
                time.sleep(0.05)
            first = receiver.received[0]
            fo_id = json_body(first)["data"]["fulfillment_order"]["fulfillment_order_id"]
            bridge.for_merchant("ACME").update_fulfillment(
                FulfillmentUpdate(fo_id, FulfillmentAction.PICK)
            )
            while not any(
                json_body(r)["type"] == "fulfillment_order.status_reported"
                for r in receiver.received
            ):
                assert time.monotonic() < deadline, "the reported step never arrived"
                time.sleep(0.05)
            host, port = worker.http_address
            import httpx

            metrics = httpx.get(f"http://{host}:{port}/metrics").text
        finally:
            worker.stop()
            thread.join(15)
        assert not thread.is_alive()
    assert all(r.verified for r in receiver.received)
    assert json_body(first)["type"] == "fulfillment_order.created"
    assert 'omsbridge_webhook_deliveries_total{outcome="delivered"}' in metrics
    delivered = [
        line
        for line in metrics.splitlines()
        if line.startswith('omsbridge_webhook_deliveries_total{outcome="delivered"}')
    ]
    assert float(delivered[0].split()[-1]) >= 2


def json_body(received) -> dict:
    import json

    return json.loads(received.body)


def test_the_docs_example_headers_and_verification_snippet_are_right(monkeypatch):
    """docs/webhooks.md: the example signature is the signature of the example body, and the
    receivers' by-hand verification snippet accepts it (and rejects a changed body)."""
    import json
    import re

    docs = (Path(__file__).resolve().parents[3] / "docs" / "webhooks.md").read_text()
    blocks = re.findall(r"```(\w*)\n(.*?)```", docs, re.S)
    created = next(b for k, b in blocks if k == "json" and "fulfillment_order.created" in b)
    body = json.dumps(json.loads(created), separators=(",", ":"), ensure_ascii=False)
    headers = dict(
        line.split(": ", 1)
        for line in next(b for k, b in blocks if "webhook-signature:" in b).strip().splitlines()
    )
    stamp = int(headers["webhook-timestamp"])
    order = json.loads(created)["data"]["fulfillment_order"]
    assert message_id("SHOPNOW", "fulfillment_order", "0a3FO0001", order) == headers["webhook-id"]
    assert headers["webhook-signature"] == sign(Secret(SECRET), headers["webhook-id"], stamp, body)
    snippet = next(b for k, b in blocks if k == "python" and "def verify(" in b)
    scope: dict = {}
    exec(snippet, scope)
    monkeypatch.setattr(time, "time", lambda: stamp + 10.0)
    assert scope["verify"](SECRET, headers, body.encode())
    assert not scope["verify"](SECRET, headers, body.encode() + b" ")


def test_the_cli_states_are_the_stores():
    from omsbridge_posspi.webhooks_cli import STATES

    assert tuple(s.value for s in WebhookState) == STATES
