"""Fixtures of the export-job tests against the Salesforce sandbox (sandbox fixtures come from
the sandbox's pytest plugin, loaded by the distribution's tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sf_export_helpers import PASSWORD_ENV, SECRET_ENV

from omsbridge_salesforce_sandbox import CLIENT_SECRET, PASSWORD


@pytest.fixture(autouse=True)
def sf_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's demo credentials, where configs (and subprocesses) read them."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
