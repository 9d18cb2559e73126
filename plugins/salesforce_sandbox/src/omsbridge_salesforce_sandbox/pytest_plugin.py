"""pytest fixtures for the Salesforce OMS sandbox.

Load with ``pytest_plugins = ["omsbridge_salesforce_sandbox.pytest_plugin"]``.

* ``sf_sandbox`` — a fresh, empty org served on a free loopback port (a
  :class:`~omsbridge_salesforce_sandbox.server.SandboxServer`: ``.url``, ``.sandbox``,
  ``.token()``, ``.client()``);
* ``sf_sandbox_demo`` — the same with ``seed="demo"`` (products, stores, BOPIS orders);
* ``sf_sandbox_app`` — an in-process :class:`SalesforceSandbox` (no socket), for
  ``httpx.WSGITransport``.

* ``sf_sandbox_factory`` — starts servers with any options (several per test, e.g. one per
  org profile).

Options go through a marker: ``@pytest.mark.sf_sandbox(query_page_size=2, tls=True)``; the
org profile too: ``@pytest.mark.sf_sandbox(org_profile="som-minimal")``.
Fixtures default to a 0.5 s CometD long poll so streaming tests stay fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .app import SalesforceSandbox
from .server import SandboxServer

FIXTURE_DEFAULTS: dict[str, Any] = {"long_poll_timeout": 0.5}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``sf_sandbox`` marker."""
    config.addinivalue_line(
        "markers",
        "sf_sandbox(**options): options for the sf_sandbox* fixtures "
        "(SalesforceSandbox options, plus tls=True)",
    )


def _options(request: pytest.FixtureRequest, seed: str) -> tuple[dict[str, Any], bool]:
    options = dict(FIXTURE_DEFAULTS, seed=seed)
    marker = request.node.get_closest_marker("sf_sandbox")
    if marker is not None:
        options.update(marker.kwargs)
    tls = bool(options.pop("tls", False))
    return options, tls


def _served(request: pytest.FixtureRequest, seed: str) -> Iterator[SandboxServer]:
    options, tls = _options(request, seed)
    sandbox = SalesforceSandbox(**options)
    server = SandboxServer(sandbox, "127.0.0.1", 0, tls=tls, close_sandbox=True).start()
    try:
        yield server
    finally:
        server.stop()
    _no_internal_errors(sandbox)


@pytest.fixture
def sf_sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """A fresh empty sandbox org on a free loopback port."""
    yield from _served(request, "empty")


@pytest.fixture
def sf_sandbox_demo(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """A fresh demo-seeded sandbox org on a free loopback port."""
    yield from _served(request, "demo")


@pytest.fixture
def sf_sandbox_app(request: pytest.FixtureRequest) -> Iterator[SalesforceSandbox]:
    """An in-process sandbox org (a WSGI app; no socket), empty unless the marker says so."""
    options, _ = _options(request, "empty")
    sandbox = SalesforceSandbox(**options)
    try:
        yield sandbox
    finally:
        sandbox.close()
    _no_internal_errors(sandbox)


@pytest.fixture
def sf_sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
    """Start sandbox servers with any options, e.g. ``sf_sandbox_factory(org_profile=
    "som-minimal", seed="demo")``; every server started is stopped after the test."""
    servers: list[SandboxServer] = []

    def _start(*, tls: bool = False, **options: Any) -> SandboxServer:
        sandbox = SalesforceSandbox(**{**FIXTURE_DEFAULTS, **options})
        server = SandboxServer(sandbox, "127.0.0.1", 0, tls=tls, close_sandbox=True).start()
        servers.append(server)
        return server

    try:
        yield _start
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        _no_internal_errors(server.sandbox)


def _no_internal_errors(sandbox: SalesforceSandbox) -> None:
    # A sandbox bug answers 500 like Salesforce would; make sure it never goes unnoticed.
    if sandbox.internal_errors:
        pytest.fail("sandbox internal error:\n" + sandbox.internal_errors[0], pytrace=False)
