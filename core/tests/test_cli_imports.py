"""What the command line imports at start-up: ``--help`` and ``validate`` load no backend,
emulator, HTTP client, cryptography or rich (issue 16). Checked through ``sys.modules`` in a
fresh interpreter, never by timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from paths import EXAMPLES

_PROBE = """
import contextlib, io, json, sys
from omsbridge.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
# A module marked absent (None) was not imported.
print(json.dumps(sorted(k for k, v in sys.modules.items() if v is not None)))
"""

# Third-party packages that only a backend, an emulator or a pretty printer needs.
_HEAVY = {"httpx", "requests", "cryptography", "jwt", "rich", "werkzeug"}
_PLUGIN_PACKAGES = ("omsbridge_salesforce", "omsbridge_posspi", "omsbridge_salesforce_sandbox")
# What loading a plugin's entry point and listing its commands may import: the package (its
# ``__init__`` is lazy), the entry-point module, its hookspecs and its command modules
# (``omsbridge serve``'s lives in the lazy ``omsbridge_posspi.serve`` package).
_LIGHT_PLUGIN_PARTS = {"plugin", "hookspecs", "cli", "serve", "serve.cli", "webhooks_cli"}


def _imported(*argv: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    def heavy(module: str) -> bool:
        top, _, rest = module.partition(".")
        if top in _HEAVY:
            return True
        return top in _PLUGIN_PACKAGES and rest not in {"", *_LIGHT_PLUGIN_PARTS}

    return sorted(m for m in modules if heavy(m))


def test_help_imports_no_backend_emulator_or_model() -> None:
    modules = _imported("--help")
    assert _heavy(modules) == []
    # Not even the model or its converter: help needs neither.
    assert {"cattrs", "omsbridge.wire", "omsbridge.model"} & modules == set()
    # The plugins were loaded all the same (their commands are listed).
    assert "omsbridge_salesforce.plugin" in modules


def test_validate_imports_no_backend_or_emulator() -> None:
    modules = _imported("validate", str(EXAMPLES / "sale-card.json"))
    assert "omsbridge.wire" in modules  # it did validate
    assert _heavy(modules) == []


_POSSPI_CONFIG = """
[store]
path = "omsbridge.db"

[merchants.SPI]
backend = "pos-spi"

[merchants.SPI.pos-spi]
base_url = "http://127.0.0.1:9"
auth = { type = "api_key", api_key = { env = "OMSBRIDGE_TEST_SPI_KEY" } }
"""

_OPEN_MERCHANT = """
import json, sys
from omsbridge import Bridge
Bridge.from_config(sys.argv[1]).for_merchant("SPI")
print(json.dumps(sorted(sys.modules)))
"""


def test_a_merchant_imports_only_its_own_backend(tmp_path: Path) -> None:
    # What `omsbridge post` does before its first request: load the config, build the backend.
    config = tmp_path / "omsbridge.toml"
    config.write_text(_POSSPI_CONFIG)
    out = subprocess.run(
        [sys.executable, "-c", _OPEN_MERCHANT, str(config)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "OMSBRIDGE_TEST_SPI_KEY": "k"},
    ).stdout
    modules = set(json.loads(out.strip().splitlines()[-1]))
    assert "omsbridge_posspi.backend" in modules
    assert not {m for m in modules if m.startswith("omsbridge_salesforce.")} - {
        "omsbridge_salesforce.plugin",
        "omsbridge_salesforce.hookspecs",
        "omsbridge_salesforce.cli",
    }
    assert not {m for m in modules if m.startswith("omsbridge_salesforce_sandbox.")} - {
        "omsbridge_salesforce_sandbox.plugin"
    }


_POST_IMPORTS = """
import json, sys
from omsbridge.cli import _skip_httpx_cli
_skip_httpx_cli()  # what main() does first
import httpx
assert httpx.Client is not None and callable(httpx.main)
from omsbridge_salesforce.backend import SalesforceBackend
print(json.dumps(sorted(k for k, v in sys.modules.items() if v is not None)))
"""


def test_the_command_line_keeps_httpx_from_loading_its_own_cli_and_rich() -> None:
    # httpx imports its command-line client (rich, pygments) when they are installed; the
    # omsbridge command never runs it. Nor does posting need the event feeds' gRPC/Avro.
    out = subprocess.run(
        [sys.executable, "-c", _POST_IMPORTS], capture_output=True, text=True, check=True
    ).stdout
    modules = set(json.loads(out.strip().splitlines()[-1]))
    assert "httpx" in modules and "omsbridge_salesforce.backend" in modules
    assert {"rich", "pygments", "httpx._main"} & modules == set()
    assert {"grpc", "fastavro", "google.protobuf"} & modules == set()
