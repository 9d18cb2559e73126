"""Helpers for the ``omsbridge serve`` tests: a config of two merchants on two reference servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from omsbridge_posspi.server import DEFAULT_API_KEY

POS_EU_KEY = "pos-eu-key-0123456789"
ACME_SECRET = "acme-client-secret-0123"
ADMIN_KEY = "admin-key-0123456789"


def write_config(tmp_path: Path, shopnow_url: str, acme_url: str, *, port: int = 8780) -> Path:
    """SHOPNOW and ACME on their own SPI servers; client pos-eu (API key) may reach SHOPNOW
    only, client pos-acme (OAuth2) ACME only; an admin key."""
    path = tmp_path / "omsbridge.toml"
    path.write_text(
        f"""
[store]
path = "outbox.db"

[merchants.SHOPNOW]
backend = "pos-spi"
currency = "USD"
[merchants.SHOPNOW.pos-spi]
base_url = "{shopnow_url}"
timeout = 5
auth = {{ type = "api_key", api_key = {{ env = "TEST_SPI_KEY" }} }}

[merchants.ACME]
backend = "pos-spi"
[merchants.ACME.pos-spi]
base_url = "{acme_url}"
timeout = 5
auth = {{ type = "api_key", api_key = {{ env = "TEST_SPI_KEY" }} }}

[serve]
host = "127.0.0.1"
port = {port}
workers = 1
threads = 8
graceful_timeout = 10

[serve.clients.pos-eu]
api_key = {{ env = "TEST_POS_EU_KEY" }}
merchants = ["SHOPNOW"]

[serve.clients.pos-acme]
client_id = "acme"
client_secret = {{ env = "TEST_ACME_SECRET" }}
merchants = ["ACME"]

[serve.admin]
api_key = {{ env = "TEST_ADMIN_KEY" }}
""",
        encoding="utf-8",
    )
    return path


def set_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The secrets the config refers to, in the environment (also returned for subprocesses)."""
    values = {
        "TEST_SPI_KEY": DEFAULT_API_KEY,
        "TEST_POS_EU_KEY": POS_EU_KEY,
        "TEST_ACME_SECRET": ACME_SECRET,
        "TEST_ADMIN_KEY": ADMIN_KEY,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
