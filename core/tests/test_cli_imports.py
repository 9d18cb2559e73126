"""What the command line imports at start-up: ``--help`` and ``validate`` load no backend,
emulator, HTTP client, cryptography or rich (issue 16). Checked through ``sys.modules`` in a
fresh interpreter, never by timing."""

from __future__ import annotations

import json
import subprocess
import sys

from paths import EXAMPLES

_PROBE = """
import contextlib, io, json, sys
from omsbridge.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""

# Third-party packages that only a backend, an emulator or a pretty printer needs.
_HEAVY = {"httpx", "requests", "cryptography", "jwt", "rich", "werkzeug"}
_PLUGIN_PACKAGES = ("omsbridge_salesforce", "omsbridge_posspi", "omsbridge_salesforce_sandbox")
# What loading a plugin's entry point and listing its commands may import: the package (its
# ``__init__`` is lazy), the entry-point module, its hookspecs and its command modules.
_LIGHT_PLUGIN_PARTS = {"plugin", "hookspecs", "cli"}


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
