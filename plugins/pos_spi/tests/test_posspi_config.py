"""The backend's settings as the config loader reads them: valid forms and errors with paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omsbridge import Secret
from omsbridge.config import parse_config
from omsbridge.errors import ConfigError
from omsbridge.registry import BackendRegistry
from omsbridge_posspi import AuthMethod, PosSpiBackend, PosSpiConfig, SpiAuth


@pytest.fixture
def registry() -> BackendRegistry:
    reg = BackendRegistry()
    reg.register(PosSpiBackend)
    return reg


def load(settings: dict[str, Any], registry: BackendRegistry, tmp_path: Path) -> PosSpiConfig:
    config = parse_config(
        {"merchants": {"SHOPNOW": {"backend": "pos-spi", "pos-spi": settings}}},
        base_dir=tmp_path,
        registry=registry,
    )
    return config.merchants["SHOPNOW"].settings  # type: ignore[no-any-return]


def problems(settings: dict[str, Any], registry: BackendRegistry, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(settings, registry, tmp_path)
    return [str(issue) for issue in caught.value.issues]


def test_api_key_config(
    registry: BackendRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPNOW_SPI_KEY", "k-123")
    settings = load(
        {
            "base_url": "https://oms.example.com/pos-spi/v1",
            "timeout": 4,
            "auth": {"type": "api_key", "api_key": {"env": "SHOPNOW_SPI_KEY"}},
        },
        registry,
        tmp_path,
    )
    assert settings.timeout == 4
    assert settings.auth.type == AuthMethod.API_KEY
    assert settings.auth.header == "X-API-Key"
    assert settings.auth.api_key == Secret("k-123")
    assert "k-123" not in repr(settings)


def test_oauth2_config_with_secret_file(registry: BackendRegistry, tmp_path: Path) -> None:
    (tmp_path / "spi-secret").write_text("s3cr3t\n")
    settings = load(
        {
            "base_url": "http://127.0.0.1:8766",
            "verify_tls": False,
            "auth": {
                "type": "oauth2",
                "token_url": "https://oms.example.com/oauth/token",
                "client_id": "pos",
                "client_secret": {"file": "spi-secret"},
                "scope": "orders",
            },
        },
        registry,
        tmp_path,
    )
    assert settings.auth.client_secret is not None
    assert settings.auth.client_secret.reveal() == "s3cr3t"
    assert settings.verify_tls is False


def test_bad_base_url(registry: BackendRegistry, tmp_path: Path) -> None:
    found = problems(
        {"base_url": "ftp://oms", "auth": {"api_key": {"env": "HOME"}}}, registry, tmp_path
    )
    assert found == [
        "merchants.SHOPNOW.pos-spi.base_url: must be an http:// or https:// URL such as "
        "https://oms.example.com/pos-spi/v1, got 'ftp://oms'"
    ]


def test_literal_secret_is_refused_with_its_path(registry: BackendRegistry, tmp_path: Path) -> None:
    found = problems(
        {"base_url": "https://oms", "auth": {"api_key": "plain-text-key"}}, registry, tmp_path
    )
    assert len(found) == 1
    assert found[0].startswith("merchants.SHOPNOW.pos-spi.auth.api_key: must be a secret reference")
    assert "plain-text-key" not in found[0]


def test_missing_env_var(registry: BackendRegistry, tmp_path: Path) -> None:
    found = problems(
        {"base_url": "https://oms", "auth": {"api_key": {"env": "NO_SUCH_VAR_FOR_SPI"}}},
        registry,
        tmp_path,
    )
    assert found == [
        "merchants.SHOPNOW.pos-spi.auth.api_key: environment variable NO_SUCH_VAR_FOR_SPI is not set"
    ]


def test_incomplete_oauth2(registry: BackendRegistry, tmp_path: Path) -> None:
    found = problems(
        {"base_url": "https://oms", "auth": {"type": "oauth2", "client_id": "pos"}},
        registry,
        tmp_path,
    )
    assert found == [
        'merchants.SHOPNOW.pos-spi.auth: token_url is required with type = "oauth2"; '
        'client_secret is required with type = "oauth2"'
    ]


def test_unknown_key_and_bad_timeout(registry: BackendRegistry, tmp_path: Path) -> None:
    assert problems(
        {"base_url": "https://oms", "auth": {"api_key": {"env": "HOME"}}, "timout": 3},
        registry,
        tmp_path,
    ) == ["merchants.SHOPNOW.pos-spi.timout: unknown field"]
    assert problems(
        {"base_url": "https://oms", "auth": {"api_key": {"env": "HOME"}}, "timeout": 0},
        registry,
        tmp_path,
    ) == ["merchants.SHOPNOW.pos-spi.timeout: must be a number of seconds > 0, got 0.0"]


def test_unknown_auth_type(registry: BackendRegistry, tmp_path: Path) -> None:
    (found,) = problems({"base_url": "https://oms", "auth": {"type": "basic"}}, registry, tmp_path)
    assert found.startswith("merchants.SHOPNOW.pos-spi.auth.type: ")
    assert "basic" in found


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="api_key is required"):
        SpiAuth()
    with pytest.raises(ValueError, match="only apply with"):
        SpiAuth(api_key=Secret("k"), client_id="pos")
