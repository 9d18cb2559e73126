"""``omsbridge listen`` and ``omsbridge fulfil`` against the pos-spi reference server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from omsbridge.cli.omni_cmd import fulfil, listen

server_module = pytest.importorskip("omsbridge_posspi.server")


@pytest.fixture
def spi() -> Iterator[tuple[object, str]]:
    app = server_module.SpiApp()
    handle = server_module.serve(app)
    yield app, handle.url
    handle.stop()
    app.store.close()


@pytest.fixture
def config(tmp_path: Path, spi: tuple[object, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEST_SPI_KEY", server_module.DEFAULT_API_KEY)
    path = tmp_path / "omsbridge.toml"
    path.write_text(
        '[store]\npath = "state.db"\n\n[merchants.ACME]\nbackend = "pos-spi"\n\n'
        f'[merchants.ACME.pos-spi]\nbase_url = "{spi[1]}"\n'
        'auth = { type = "api_key", api_key = { env = "TEST_SPI_KEY" } }\n'
    )
    return path


def run(command: object, *args: str) -> object:
    return CliRunner().invoke(command, list(args), catch_exceptions=False)  # type: ignore[arg-type]


def test_listen_prints_imported_orders_and_resumes(config: Path, spi: tuple[object, str]) -> None:
    app = spi[0]
    first = run(listen, "--config", str(config), "--duration", "0.3", "--wait", "0.1")
    assert first.exit_code == 0, first.output
    assert "listening for ACME" in first.stderr and "0 fulfillment order(s)" in first.stderr
    # Sold online while nobody listened: the stored checkpoint brings them in.
    pickup = app.seed_online_order("STORE-1", kind="PICKUP").fulfillment_order  # type: ignore[attr-defined]
    ship = app.seed_online_order("STORE-2", kind="SHIP_FROM_STORE").fulfillment_order  # type: ignore[attr-defined]
    result = run(
        listen,
        "--config",
        str(config),
        "--merchant",
        "ACME",
        "--duration",
        "1",
        "--wait",
        "0.1",
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["fulfillment_order"]["fulfillment_order_id"] for r in rows] == [
        pickup.fulfillment_order_id,
        ship.fulfillment_order_id,
    ]
    assert rows[0]["merchant_id"] == "ACME"
    assert rows[1]["fulfillment_order"]["kind"] == "SHIP_FROM_STORE"
    assert "2 fulfillment order(s) imported" in result.stderr
    again = run(listen, "--config", str(config), "--duration", "0.5", "--wait", "0.1")
    assert again.stdout == ""  # handled before: nothing twice


def test_listen_text_output(config: Path, spi: tuple[object, str]) -> None:
    app = spi[0]
    run(listen, "--config", str(config), "--duration", "0.2", "--wait", "0.1")
    app.seed_online_order("STORE-9", kind="PICKUP", order_number="WEB-77")  # type: ignore[attr-defined]
    result = run(listen, "--config", str(config), "--duration", "0.8", "--wait", "0.1")
    (line,) = result.stdout.splitlines()
    assert line.startswith("ACME FO-") and "PICKUP ALLOCATED store=STORE-9 order=WEB-77" in line


def test_fulfil_reports_each_step(config: Path, spi: tuple[object, str]) -> None:
    app = spi[0]
    fo = app.seed_online_order("STORE-1", kind="PICKUP").fulfillment_order  # type: ignore[attr-defined]
    base = ["--config", str(config), "--merchant", "ACME", fo.fulfillment_order_id]
    result = run(fulfil, *base, "pick")
    assert result.exit_code == 0 and result.stdout == f"{fo.fulfillment_order_id}: PICK reported\n"
    line = fo.lines[0]
    result = run(
        fulfil, *base, "CANCEL", "--line", f"{line.line_id}:1", "--reason", "Damaged", "--json"
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "ok": True,
        "fulfillment_order_id": fo.fulfillment_order_id,
        "action": "CANCEL",
    }
    assert app.store.fulfillment_order(fo.fulfillment_order_id).lines[0].quantity_cancelled == 1  # type: ignore[attr-defined]
    for action in ("READY_FOR_PICKUP", "PICKED_UP"):
        assert run(fulfil, *base, action).exit_code == 0
    assert app.store.fulfillment_order(fo.fulfillment_order_id).status == "PICKED_UP"  # type: ignore[attr-defined]


def test_fulfil_errors(config: Path, spi: tuple[object, str]) -> None:
    base = ["--config", str(config), "--merchant", "ACME"]
    missing_reason = run(fulfil, *base, "FO-1", "CANCEL", "--json")
    assert missing_reason.exit_code == 1
    body = json.loads(missing_reason.stdout)
    assert body["error"] == "InvalidTransaction" and body["issues"][0]["path"] == "reason"
    unknown = run(fulfil, *base, "FO-NOPE", "PICK")
    assert unknown.exit_code == 1 and "NotFound" in unknown.stderr
    assert run(fulfil, *base, "FO-1", "DANCE").exit_code == 2
    assert run(fulfil, *base, "FO-1", "CANCEL", "--line", "oops", "--reason", "x").exit_code == 2
