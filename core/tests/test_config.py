"""The config file: every refusal names its path, and all problems come at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fakes import MemorySettings

from omsbridge.config import Secret, load_config
from omsbridge.errors import ConfigError

GOOD = """
[store]
path = "state/omsbridge.db"

[merchants.SHOPNOW]
backend = "memory"
locale = "en_US"
region = "US"
currency = "USD"

[merchants.SHOPNOW.memory]
endpoint = "http://127.0.0.1:9"
api_key = { env = "SHOPNOW_KEY" }

[merchants.ACME]
backend = "other"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "omsbridge.toml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str, registry) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), registry)
    return [str(i) for i in info.value.issues]


def test_good_config_loads(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("SHOPNOW_KEY", "k-123456")
    config = load_config(write(tmp_path, GOOD), registry)
    shopnow = config.merchants["SHOPNOW"]
    assert isinstance(shopnow.settings, MemorySettings)
    assert shopnow.settings.api_key.reveal() == "k-123456"
    assert config.store.path == tmp_path / "state" / "omsbridge.db"
    assert shopnow.context().locale == "en_US"
    assert config.merchants["ACME"].backend == "other"


def test_secret_never_shown(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("SHOPNOW_KEY", "k-123456")
    config = load_config(write(tmp_path, GOOD), registry)
    settings = config.merchants["SHOPNOW"].settings
    for text in (repr(settings), str(settings), repr(config), f"{settings.api_key}"):
        assert "k-123456" not in text
    assert "env:SHOPNOW_KEY" in repr(settings.api_key)


def test_secret_from_file(tmp_path, registry):
    (tmp_path / "key.txt").write_text("file-secret\n")
    text = GOOD.replace('{ env = "SHOPNOW_KEY" }', '{ file = "key.txt" }')
    config = load_config(write(tmp_path, text), registry)
    assert config.merchants["SHOPNOW"].settings.api_key == Secret("file-secret")


def test_missing_secret_variable(tmp_path, registry, monkeypatch):
    monkeypatch.delenv("SHOPNOW_KEY", raising=False)
    assert problems(tmp_path, GOOD, registry) == [
        "merchants.SHOPNOW.memory.api_key: environment variable SHOPNOW_KEY is not set"
    ]


def test_missing_secret_file(tmp_path, registry):
    text = GOOD.replace('{ env = "SHOPNOW_KEY" }', '{ file = "nope.txt" }')
    [found] = problems(tmp_path, text, registry)
    assert found.startswith("merchants.SHOPNOW.memory.api_key: cannot read secret file")


def test_literal_secret_refused(tmp_path, registry):
    text = GOOD.replace('{ env = "SHOPNOW_KEY" }', '"hunter2"')
    [found] = problems(tmp_path, text, registry)
    assert found == (
        'merchants.SHOPNOW.memory.api_key: must be a secret reference { env = "VAR" } or '
        '{ file = "path" }, not a literal string'
    )
    assert "hunter2" not in found


def test_dual_mode_refused(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    text = GOOD + '\n[merchants.SHOPNOW.other]\nurl = "http://127.0.0.1"\n'
    [found] = problems(tmp_path, text, registry)
    assert found.startswith("merchants.SHOPNOW: settings for other as well as memory")
    assert "dual mode" in found


def test_unknown_backend_lists_installed(tmp_path, registry):
    text = "[merchants.X]\nbackend = 'sap'\n"
    assert problems(tmp_path, text, registry) == [
        "merchants.X.backend: unknown backend 'sap'; installed backends: memory, other"
    ]


def test_unknown_and_missing_keys(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    text = GOOD.replace('endpoint = "http://127.0.0.1:9"', 'endpont = "x"').replace(
        'region = "US"', 'region = "US"\ncolour = "blue"'
    )
    found = problems(tmp_path, text, registry)
    assert "merchants.SHOPNOW.colour: unknown key" in found
    assert "merchants.SHOPNOW.memory.endpont: unknown field" in found


def test_missing_required_key(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    text = GOOD.replace('endpoint = "http://127.0.0.1:9"\n', "")
    assert problems(tmp_path, text, registry) == ["merchants.SHOPNOW.memory.endpoint: is required"]


def test_backend_validator_message_has_path(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    text = GOOD.replace('endpoint = "http://127.0.0.1:9"', 'endpoint = "x"\ntimeout = -1')
    assert problems(tmp_path, text, registry) == [
        "merchants.SHOPNOW.memory.timeout: must be > 0, got -1.0"
    ]


def test_all_problems_reported_at_once(tmp_path, registry, monkeypatch):
    monkeypatch.delenv("SHOPNOW_KEY", raising=False)
    text = GOOD + "\n[merchants.BAD]\nbackend = 'nope'\nlocale = 'english'\n[logging]\nlevel = 1\n"
    found = problems(tmp_path, text, registry)
    assert len(found) == 4, found
    assert "logging: unknown key (expected store, merchants, serve)" in found
    assert "merchants.BAD.locale: must look like en_US, got 'english'" in found


def test_not_toml(tmp_path, registry):
    [found] = problems(tmp_path, "merchants = [", registry)
    assert "is not valid TOML" in found


def test_no_merchants(tmp_path, registry):
    assert problems(tmp_path, "[store]\npath='x.db'\n", registry) == [
        "merchants: at least one [merchants.ID] table is required"
    ]


def test_unreadable_file(tmp_path, registry):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", registry)
