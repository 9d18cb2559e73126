"""``omsbridge serve`` in process (werkzeug's test client): routes, auth, isolation, 202, admin,
operations, config errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from posspi_support import sale
from serve_support import ACME_SECRET, ADMIN_KEY, POS_EU_KEY, set_env, write_config
from werkzeug.test import Client

from omsbridge import wire
from omsbridge.errors import ConfigError
from omsbridge_posspi.serve import ServeApp, create_app, openapi_document
from omsbridge_posspi.server import ServerHandle, SpiApp, serve

DOC = Path(__file__).resolve().parents[3] / "docs" / "pos-spi-openapi.yaml"
EU = {"X-API-Key": POS_EU_KEY}

# Every merchant route of the SPI, with a body where it takes one.
SPI_ROUTES = [
    ("POST", "orders", wire.unstructure(sale("T-ISO"))),
    ("GET", "orders?customer_id=C-7", None),
    ("GET", "orders/T-ISO", None),
    ("GET", "orders/T-ISO/boris", None),
    ("POST", "orders/T-ISO/cancel", {"reason": "test"}),
    (
        "POST",
        "orders/T-ISO/cancel-lines",
        {"lines": [{"line_number": 1, "quantity": "1"}], "reason": "x"},
    ),
    ("GET", "fulfillment-orders", None),
    ("GET", "fulfillment-orders/FO-1", None),
    ("POST", "fulfillment-orders/FO-1/updates", {"fulfillment_order_id": "FO-1", "action": "PICK"}),
    ("GET", "fulfillment-events?wait=0", None),
]


@pytest.fixture
def acme_server() -> Iterator[tuple[SpiApp, ServerHandle]]:
    app = SpiApp()
    with serve(app) as handle:
        yield app, handle
    app.store.close()


@pytest.fixture
def serve_app(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    app: SpiApp,
    server: ServerHandle,
    acme_server: tuple[SpiApp, ServerHandle],
) -> Iterator[ServeApp]:
    set_env(monkeypatch)
    config = write_config(tmp_path, server.url, acme_server[1].url)
    serve_app = create_app(config)
    yield serve_app
    serve_app.bridge.close()


@pytest.fixture
def client(serve_app: ServeApp) -> Client:
    return Client(serve_app)


def _call(
    client: Client,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
):
    return client.open(path, method=method, json=body, headers=headers or {})


def _acme_token(client: Client) -> dict[str, str]:
    answer = client.post(
        "/merchants/ACME/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "acme",
            "client_secret": ACME_SECRET,
        },
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {"Authorization": f"Bearer {answer.json['access_token']}"}


def test_post_through_serve_is_created_then_replayed(client: Client, app: SpiApp) -> None:
    txn = wire.unstructure(sale("T-1"))
    first = _call(
        client, "POST", "/merchants/SHOPNOW/orders", txn, {**EU, "Idempotency-Key": "T-1"}
    )
    assert first.status_code == 201, first.json
    assert first.headers["Location"] == f"/merchants/SHOPNOW/orders/{first.json['order_id']}"
    again = _call(client, "POST", "/merchants/SHOPNOW/orders", txn, EU)
    assert again.status_code == 200 and again.json["created"] is False
    assert again.headers["Idempotent-Replayed"] == "true"
    assert app.order_count() == 1
    detail = _call(client, "GET", "/merchants/SHOPNOW/orders/T-1", headers=EU)
    assert detail.status_code == 200 and detail.json["order_id"] == first.json["order_id"]


@pytest.mark.parametrize(("method", "path", "body"), SPI_ROUTES)
def test_a_key_for_one_merchant_never_reaches_another(
    client: Client,
    app: SpiApp,
    acme_server: tuple[SpiApp, ServerHandle],
    method: str,
    path: str,
    body: object,
) -> None:
    acme_app = acme_server[0]
    # pos-eu (SHOPNOW only) on ACME, and pos-acme's token on SHOPNOW: the same 404 as an
    # unknown merchant, and neither backend server hears of it.
    for merchant, headers in (("ACME", EU), ("SHOPNOW", _acme_token(client)), ("NOPE", EU)):
        answer = _call(client, method, f"/merchants/{merchant}/{path}", body, headers)
        assert answer.status_code == 404, (merchant, answer.json)
        assert answer.json["code"] == "UNKNOWN_MERCHANT"
    assert app.requests == [] and acme_app.requests == []
    # No credentials, a wrong key, the admin key: 401 in the contract's error shape.
    for headers in (
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": ADMIN_KEY},
        {"Authorization": "Bearer x.1.y"},
    ):
        answer = _call(client, method, f"/merchants/SHOPNOW/{path}", body, headers)
        assert answer.status_code == 401 and answer.json["code"] == "UNAUTHORIZED", headers
    assert app.requests == []
    # The right client reaches its merchant's server.
    _call(client, method, f"/merchants/SHOPNOW/{path}", body, EU)
    assert len(app.requests) >= 1 and acme_app.requests == []


def test_oauth_token_reaches_its_merchant_and_refuses_bad_secrets(
    client: Client, acme_server: tuple[SpiApp, ServerHandle]
) -> None:
    bad = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "acme", "client_secret": "no"},
    )
    assert bad.status_code == 401 and bad.json == {"error": "invalid_client"}
    grant = client.post("/oauth/token", data={"grant_type": "password"})
    assert grant.status_code == 400
    answer = _call(
        client, "GET", "/merchants/ACME/orders?customer_id=C-7", headers=_acme_token(client)
    )
    assert answer.status_code == 200, answer.json
    assert acme_server[0].requests == [("GET", "/orders")]


def test_expired_token_is_refused(serve_app: ServeApp, client: Client) -> None:
    headers = _acme_token(client)
    serve_app.auth._clock = lambda: 10**12  # far in the future: every token has expired
    answer = _call(client, "GET", "/merchants/ACME/orders", headers=headers)
    assert answer.status_code == 401 and answer.json["code"] == "TOKEN_EXPIRED"


def test_backend_down_answers_202_with_the_outbox_entry(client: Client, app: SpiApp) -> None:
    app.inject_fault("error", status=503, count=None)
    answer = _call(client, "POST", "/merchants/SHOPNOW/orders", wire.unstructure(sale("T-Q")), EU)
    assert answer.status_code == 202, answer.json
    body = answer.json
    assert body["state"] == "pending" and body["transaction_id"] == "T-Q"
    assert body["cause"]["status"] == 503
    entry_id = body["entry_id"]
    admin = {"X-API-Key": ADMIN_KEY}
    shown = _call(client, "GET", f"/admin/outbox/{entry_id}", headers=admin)
    assert shown.status_code == 200 and shown.json["transaction_id"] == "T-Q"
    assert shown.json["state"] == "pending" and shown.json["transaction"]["transaction_id"] == "T-Q"
    listed = _call(client, "GET", "/admin/outbox?state=pending&merchant=SHOPNOW", headers=admin)
    assert [e["entry_id"] for e in listed.json["items"]] == [entry_id]
    retried = _call(client, "POST", f"/admin/outbox/{entry_id}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json["state"] == "pending"
    # A POS key is not the admin key, and the admin key is not a POS key.
    assert _call(client, "GET", "/admin/outbox", headers=EU).status_code == 401
    assert _call(client, "GET", "/admin/outbox/999999", headers=admin).status_code == 404
    assert _call(client, "GET", "/admin/outbox?state=lost", headers=admin).json["field"] == "state"
    app.clear_faults()
    # The POS posting again settles it: created once, the entry done.
    again = _call(client, "POST", "/merchants/SHOPNOW/orders", wire.unstructure(sale("T-Q")), EU)
    assert again.status_code == 201
    assert _call(client, "GET", f"/admin/outbox/{entry_id}", headers=admin).json["state"] == "done"
    assert app.order_count() == 1


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"kind": "rate_limit", "retry_after": 7}, 429, "RATE_LIMITED"),
        ({"kind": "error", "status": 503}, 503, "SERVER_ERROR"),
    ],
)
def test_read_errors_keep_their_class(
    client: Client, app: SpiApp, fault: dict, status: int, code: str
) -> None:
    app.inject_fault(**fault, count=None)
    answer = _call(client, "GET", "/merchants/SHOPNOW/orders/T-1", headers=EU)
    assert answer.status_code == status and answer.json["code"] == code
    if status == 429:
        assert answer.headers["Retry-After"] == "7"


def test_bad_input_names_the_field(client: Client, app: SpiApp) -> None:
    body = wire.unstructure(sale("T-BAD"))
    body["lines"][0]["quantity"] = "-x"
    answer = _call(client, "POST", "/merchants/SHOPNOW/orders", body, EU)
    assert answer.status_code == 400 and answer.json["field"].startswith("lines[0].quantity")
    mismatch = _call(
        client,
        "POST",
        "/merchants/SHOPNOW/orders",
        wire.unstructure(sale("T-2")),
        {**EU, "Idempotency-Key": "T-3"},
    )
    assert mismatch.status_code == 400 and mismatch.json["code"] == "IDEMPOTENCY_KEY_MISMATCH"
    not_json = client.post("/merchants/SHOPNOW/orders", data=b"{", headers=EU)
    assert not_json.status_code == 400
    assert app.requests == []


def test_operations_endpoints_and_request_ids(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready"}
    with caplog.at_level(logging.INFO, logger="omsbridge.serve"):
        answer = client.get(
            "/merchants/SHOPNOW/orders/T-0", headers={**EU, "X-Request-Id": "req-42"}
        )
        generated = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert answer.status_code == 404 and answer.headers["X-Request-Id"] == "req-42"
    assert generated.headers["X-Request-Id"] != "bad id with spaces"
    lines = [r.getMessage() for r in caplog.records if r.name == "omsbridge.serve"]
    assert any("req-42" in line and "pos-eu" in line for line in lines), lines
    assert not any(POS_EU_KEY in line for line in caplog.text.splitlines())
    metrics = client.get("/metrics").get_data(as_text=True)
    assert (
        'omsbridge_serve_requests_total{method="GET",route="/merchants/<merchant_id>/orders/<ref>",status="404"} 1.0'
        in metrics
    )
    assert "omsbridge_outbox_pending" in metrics or "omsbridge_serve_request_seconds" in metrics


def test_served_openapi_is_the_document_in_docs(client: Client) -> None:
    served = client.get("/openapi.yaml")
    assert served.status_code == 200
    assert served.get_data() == DOC.read_bytes() == openapi_document()


def test_readyz_fails_when_the_store_does_not_answer(serve_app: ServeApp, client: Client) -> None:
    serve_app.add_ready_check(lambda: "the store does not answer: OperationalError")
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json["problems"]


def test_config_errors_name_their_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: ServerHandle
) -> None:
    set_env(monkeypatch)
    config = write_config(tmp_path, server.url, server.url)
    text = config.read_text().replace('merchants = ["SHOPNOW"]', 'merchants = ["SHOPNOW", "GHOST"]')
    text = text.replace("workers = 1", "workers = 0").replace(
        'api_key = { env = "TEST_ADMIN_KEY" }', 'api_key = "s3cr3t-lit"'
    )
    text += '\n[serve.clients.empty]\nmerchants = ["*"]\n'
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        create_app(config)
    found = [f"{i.path}: {i.message}" for i in caught.value.issues]
    assert any(
        f.startswith("serve.clients.pos-eu.merchants[1]: no merchant 'GHOST'") for f in found
    ), found
    assert any(f.startswith("serve.workers: must be a whole number") for f in found), found
    assert any(f.startswith("serve.admin.api_key: must be a secret reference") for f in found), (
        found
    )
    assert any(f.startswith("serve.clients.empty: give api_key") for f in found), found
    assert "s3cr3t-lit" not in json.dumps(found)


def test_pos_backend_meets_the_oms_error_class_of_a_queued_post(
    serve_app: ServeApp, app: SpiApp
) -> None:
    """The pos-spi backend (the POS) on serve: a 202 raises what the OMS answered, with a note
    naming serve's outbox entry; posting again during the outage keeps the one entry."""
    from omsbridge import Secret
    from omsbridge.errors import RateLimited
    from omsbridge.spi import MerchantContext
    from omsbridge_posspi import PosSpiBackend, PosSpiConfig, SpiAuth

    with serve(serve_app) as handle:
        pos = PosSpiBackend(
            PosSpiConfig(
                f"{handle.url}/merchants/SHOPNOW", SpiAuth(api_key=Secret(POS_EU_KEY, "t"))
            ),
            MerchantContext("SHOPNOW"),
        )
        app.inject_fault("rate_limit", retry_after=7, count=None)
        with pytest.raises(RateLimited) as first:
            pos.post(sale("T-RL"))
        with pytest.raises(RateLimited) as second:
            pos.post(sale("T-RL"))
        pos.close()
    assert first.value.retry_after == 7
    notes = " ".join(first.value.__notes__)
    entries = serve_app.bridge.store.entries(merchant_id="SHOPNOW")
    assert [e.transaction_id for e in entries] == ["T-RL"], entries
    assert f"outbox entry {entries[0].entry_id}" in notes
    assert f"outbox entry {entries[0].entry_id}" in " ".join(second.value.__notes__)
    assert app.order_count() == 0


def test_a_body_too_large_is_refused(client: Client, app: SpiApp) -> None:
    answer = client.post(
        "/merchants/SHOPNOW/orders",
        data=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        headers={**EU, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413 and answer.json["code"] == "BODY_TOO_LARGE"
    assert app.requests == []
