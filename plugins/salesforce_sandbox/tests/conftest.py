"""Fixtures of the sandbox tests (helpers live in sf_sandbox_helpers.py)."""

from __future__ import annotations

from typing import Any

import pytest
from sf_sandbox_helpers import Api, in_process_client

from omsbridge_salesforce_sandbox import SalesforceSandbox, SandboxServer

pytest_plugins = ["omsbridge_salesforce_sandbox.pytest_plugin"]


@pytest.fixture
def api(sf_sandbox_demo: SandboxServer) -> Any:
    """A REST client on a served demo org (real HTTP on loopback)."""
    with sf_sandbox_demo.client() as http:
        yield Api(http, sf_sandbox_demo.sandbox)


@pytest.fixture
def demo_app() -> Any:
    """An in-process demo org and a REST client on it (fast; no socket)."""
    sandbox = SalesforceSandbox(seed="demo", long_poll_timeout=0.3)
    http = in_process_client(sandbox)
    try:
        yield Api(http, sandbox)
    finally:
        http.close()
        sandbox.close()
    assert not sandbox.internal_errors, sandbox.internal_errors[0]
