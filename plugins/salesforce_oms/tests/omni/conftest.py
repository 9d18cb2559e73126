"""Fixtures of the omnichannel tests: a demo sandbox with the ship-to-store receipt field, a web
shop, the POS plugin, and a bridge whose config points at the sandbox."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from omni_helpers import RECEIVED_FIELD, Pos, WebShop, bridge_for, config_file

from omsbridge import Bridge
from omsbridge_salesforce_sandbox import SalesforceSandbox, SandboxServer, custom_field
from omsbridge_salesforce_sandbox.seed import CLIENT_SECRET, PASSWORD


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """A demo org (0.3 s long polls) with a received-quantity field on FO line items."""
    sandbox = SalesforceSandbox(
        seed="demo",
        long_poll_timeout=0.3,
        custom_fields={"FulfillmentOrderLineItem": [custom_field(RECEIVED_FIELD, "double")]},
    )
    running = SandboxServer(sandbox, close_sandbox=True).start()
    yield running
    running.stop()
    assert not sandbox.internal_errors, sandbox.internal_errors[0]


@pytest.fixture
def shop(server: SandboxServer) -> Iterator[WebShop]:
    """Places online orders and plays the org's flows."""
    web = WebShop(server)
    yield web
    web.close()


@pytest.fixture
def pos() -> Pos:
    """The POS platform's plugin."""
    return Pos()


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_SANDBOX_PW", PASSWORD)
    monkeypatch.setenv("SF_SANDBOX_SECRET", CLIENT_SECRET)


@pytest.fixture
def config(tmp_path: Path, server: SandboxServer) -> Path:
    """The merchant DEMO on the sandbox, importing Allocated fulfillment orders."""
    return config_file(
        tmp_path / "omsbridge.toml",
        server.url,
        statuses_to_process=["Allocated"],
        delivery_methods={"ONLINE-SHIP_FROM_STORE": "Standard Shipping"},
    )


@pytest.fixture
def bridge(config: Path, pos: Pos) -> Iterator[Bridge]:
    """A bridge on that config with the POS plugin registered."""
    with bridge_for(config, pos) as bridge:
        yield bridge
