"""Fixtures: one reference SPI server on 127.0.0.1 for the session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from posspi_support import make_backend

from omsbridge_posspi import PosSpiBackend
from omsbridge_posspi.server import ServerHandle, SpiApp, serve

_CONTRACT = Path(__file__).resolve().parent / "contract"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave ``contract/`` (the shared contract suite, run on its own with ``--oms-backend``)
    out of this suite unless it was named on the command line."""
    if collection_path.resolve() != _CONTRACT:
        return None
    named = (Path(arg.split("::")[0]).resolve() for arg in config.args)
    return not any(path.is_relative_to(_CONTRACT) for path in named)


@pytest.fixture(scope="session")
def _session_app() -> Iterator[tuple[SpiApp, ServerHandle]]:
    app = SpiApp()
    with serve(app) as server:
        yield app, server
    app.store.close()


@pytest.fixture
def app(_session_app: tuple[SpiApp, ServerHandle]) -> SpiApp:
    """The reference server's app, emptied for this test."""
    spi_app, _ = _session_app
    spi_app.reset()
    return spi_app


@pytest.fixture
def server(app: SpiApp, _session_app: tuple[SpiApp, ServerHandle]) -> ServerHandle:
    """The running reference server (already reset)."""
    return _session_app[1]


@pytest.fixture
def backend(server: ServerHandle) -> Iterator[PosSpiBackend]:
    """A pos-spi backend using the API key."""
    spi = make_backend(server.url)
    yield spi
    spi.close()
