"""The reference server over plain HTTP: auth, idempotency headers, admin controls, the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from posspi_support import make_backend, sale

from omsbridge import wire
from omsbridge.registry import BackendRegistry
from omsbridge_posspi import PosSpiBackend
from omsbridge_posspi.server import DEFAULT_API_KEY, ServerHandle, SpiApp, serve

AUTH = {"X-API-Key": DEFAULT_API_KEY}


@pytest.fixture
def http(server: ServerHandle) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def test_health_needs_no_credentials(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}


def test_missing_credentials(http: httpx.Client) -> None:
    answer = http.get("/orders", params={"email": "a@b.co"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "UNAUTHORIZED"
    assert "Bearer" in answer.headers["WWW-Authenticate"]


def test_post_answers_201_then_200_replayed(http: httpx.Client) -> None:
    body = wire.unstructure(sale("T-1"))
    headers = {**AUTH, "Idempotency-Key": "T-1"}
    first = http.post("/orders", json=body, headers=headers)
    assert first.status_code == 201
    assert first.headers["Location"] == f"/orders/{first.json()['order_id']}"
    # Same body, other key order and number spelling: still the same transaction.
    respelled = {k: body[k] for k in reversed(list(body))}
    respelled["total"] = "20.0"
    respelled["tenders"] = [{**respelled["tenders"][0], "amount": 20}]
    again = http.post("/orders", json=respelled, headers=headers)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**first.json(), "created": False}


def test_idempotency_key_must_be_the_transaction_id(http: httpx.Client, app: SpiApp) -> None:
    answer = http.post(
        "/orders", json=wire.unstructure(sale("T-1")), headers={**AUTH, "Idempotency-Key": "T-2"}
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "IDEMPOTENCY_KEY_MISMATCH"
    assert answer.json()["field"] == "transaction_id"
    assert app.store.search  # nothing was written:
    assert http.get("/orders/T-1", headers=AUTH).status_code == 404


def test_invalid_json_and_unknown_fields(http: httpx.Client) -> None:
    broken = http.post("/orders", content=b"{not json", headers=AUTH)
    assert broken.status_code == 400
    assert broken.json()["code"] == "INVALID_REQUEST"
    body = {**wire.unstructure(sale("T-1")), "colour": "red"}
    unknown = http.post("/orders", json=body, headers=AUTH)
    assert unknown.status_code == 400
    assert unknown.json()["field"] == "colour"
    assert unknown.json()["issues"] == [{"path": "colour", "message": "unknown field"}]


def test_unknown_endpoint_and_method(http: httpx.Client) -> None:
    assert http.get("/nope", headers=AUTH).json()["code"] == "NO_SUCH_ENDPOINT"
    answer = http.delete("/orders", headers=AUTH)
    assert answer.status_code == 405


def test_token_endpoint(http: httpx.Client, app: SpiApp) -> None:
    wrong_grant = http.post("/oauth/token", data={"grant_type": "password"})
    assert (wrong_grant.status_code, wrong_grant.json()) == (
        400,
        {"error": "unsupported_grant_type"},
    )
    basic = http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("pos", "dev-client-secret")
    )
    token = basic.json()["access_token"]
    assert basic.json()["expires_in"] == 3600
    assert (
        http.get("/fulfillment-orders", headers={"Authorization": f"Bearer {token}"}).json() == []
    )
    app.expire_tokens()
    expired = http.get("/fulfillment-orders", headers={"Authorization": f"Bearer {token}"})
    assert (expired.status_code, expired.json()["code"]) == (401, "TOKEN_EXPIRED")


def test_admin_controls_over_http(http: httpx.Client, app: SpiApp) -> None:
    seeded = http.post(
        "/__admin__/seed-online-order",
        json={
            "store_id": "STORE-3",
            "kind": "SHIP_FROM_STORE",
            "lines": [{"sku": "SKU-9", "quantity": "1", "unit_price": "99.90", "name": "Lamp"}],
            "customer": {"email": "ann@example.com"},
            "order_number": "WEB-1",
        },
    )
    assert seeded.status_code == 201
    fo = seeded.json()["fulfillment_order"]
    assert (fo["store_id"], fo["kind"], fo["total"]) == ("STORE-3", "SHIP_FROM_STORE", "99.90")
    assert seeded.json()["order"]["order_number"] == "WEB-1"

    status = http.post(
        f"/__admin__/fulfillment-orders/{fo['fulfillment_order_id']}/status", json={"status": "X"}
    )
    assert status.json()["status"] == "X"

    fault = http.post("/__admin__/faults", json={"kind": "error", "status": 500, "count": 1})
    assert fault.status_code == 201
    assert http.get("/fulfillment-orders", headers=AUTH).status_code == 500
    assert http.get("/fulfillment-orders", headers=AUTH).status_code == 200
    http.post("/__admin__/faults", json={"kind": "rate_limit", "retry_after": 3})
    limited = http.get("/fulfillment-orders", headers=AUTH)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    http.post("/__admin__/faults", json={"kind": "error", "count": 5})
    assert http.delete("/__admin__/faults").status_code == 204
    assert http.get("/fulfillment-orders", headers=AUTH).status_code == 200
    assert http.post("/__admin__/faults", json={"kind": "meteor"}).status_code == 400

    assert http.post("/__admin__/reset").status_code == 204
    assert http.get("/fulfillment-orders", headers=AUTH).json() == []


def test_admin_can_be_switched_off() -> None:
    app = SpiApp(admin=False)
    with serve(app) as server:
        answer = httpx.post(f"{server.url}/__admin__/reset")
    assert answer.status_code == 404


def test_file_database_keeps_orders_across_restarts(tmp_path: Path) -> None:
    db = str(tmp_path / "spi.db")
    txn = sale("T-1")
    for attempt in range(2):
        app = SpiApp(db)
        with serve(app) as server:
            spi = make_backend(server.url)
            assert spi.post(txn).created is (attempt == 0)
            spi.close()
        app.store.close()


def test_plugin_registers_backend_and_sandbox() -> None:
    registry = BackendRegistry.from_plugins()
    assert registry.get("pos-spi") is PosSpiBackend
    from omsbridge.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    result = CliRunner().invoke(cli, ["sandbox", "pos-spi", "--help"])
    assert result.exit_code == 0, result.output
    assert "--port" in result.output and "--state" in result.output


def test_sandbox_command_serves_until_interrupted(tmp_path: Path) -> None:
    script = (
        # Ctrl-C as a terminal delivers it, even when this test runs in a background job
        # (a shell starts those with SIGINT ignored, and the child would inherit that).
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from omsbridge.cli import main; "
        "sys.exit(main(['sandbox', 'pos-spi', '--port', '0', '--seed-store', 'S1']))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = [proc.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        url = lines[1].split(" on ")[1].split()[0]
        deadline = time.monotonic() + 5
        while True:
            try:
                found = httpx.get(f"{url}/fulfillment-orders", headers=AUTH).json()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert [fo["store_id"] for fo in found] == ["S1"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=5)
    assert json.dumps(lines)  # the banner was printed
    assert "seeded order" in lines[0]


def test_seed_for_boris_and_stats_over_http(http: httpx.Client) -> None:
    seeded = http.post(
        "/__admin__/seed-online-order",
        json={
            "kind": None,
            "fulfilled": True,
            "placed_at": "2026-11-01T10:00:00-08:00",
            "order_number": "WEB-BORIS-1",
        },
    ).json()
    assert "fulfillment_order" not in seeded
    order = seeded["order"]
    assert order["placed_at"] == "2026-11-01T10:00:00-08:00"
    assert order["lines"][0]["fulfillment_method"] == "ONLINE-DEFAULT"
    boris = http.get("/orders/WEB-BORIS-1/boris", headers=AUTH).json()
    assert boris["return_by"] == "2026-12-01"
    assert http.get("/__admin__/stats").json()["orders"] == 1
    missing_store = http.post("/__admin__/seed-online-order", json={"kind": "PICKUP"})
    assert (missing_store.status_code, missing_store.json()["field"]) == (400, "store_id")


def test_fault_until_cleared(http: httpx.Client, app: SpiApp) -> None:
    http.post("/__admin__/faults", json={"kind": "unauthorized", "count": None})
    for _ in range(3):
        assert http.get("/fulfillment-orders", headers=AUTH).status_code == 401
    app.clear_faults()
    assert http.get("/fulfillment-orders", headers=AUTH).status_code == 200
    assert app.order_count() == 0


def test_unexpected_failure_answers_the_error_shape(
    http: httpx.Client, app: SpiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.store, "fulfillment_orders", broken)
    answer = http.get("/fulfillment-orders", headers=AUTH)
    assert answer.status_code == 500
    assert answer.json() == {
        "code": "INTERNAL_ERROR",
        "message": "the server failed; try again later",
    }


def _answer(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, what is left) of one HTTP answer read from ``sock``."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection; read so far: {buffer!r}"
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        rest += chunk
    return head, rest[:length], rest[length:]


def test_connection_stays_open_between_requests(server: ServerHandle) -> None:
    """HTTP/1.1 keep-alive: several requests on one TCP connection (a client pays one connect,
    not one per request), even after an answer whose request body the app did not read."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        unread = b"x" * 300  # the app rejects the path without reading this body
        sock.sendall(
            b"POST /nope HTTP/1.1\r\nHost: spi\r\nX-API-Key: " + DEFAULT_API_KEY.encode()
            + b"\r\nContent-Length: 300\r\n\r\n" + unread
        )  # fmt: skip
        head, body, left = _answer(sock, b"")
        assert head.startswith(b"HTTP/1.1 404"), head
        assert b"connection: close" not in head.lower()
        assert json.loads(body)["code"] == "NO_SUCH_ENDPOINT"
        for _ in range(2):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: spi\r\n\r\n")
            head, body, left = _answer(sock, left)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert json.loads(body) == {"status": "ok"}
