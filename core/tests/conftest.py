"""Core test fixtures: a plugin manager and registry with the in-memory test backends only."""

from __future__ import annotations

import json

import pytest
from fakes import MemoryPlugin
from paths import EXAMPLES

from omsbridge import BackendRegistry
from omsbridge.plugins import new_plugin_manager


@pytest.fixture
def pm():
    """A plugin manager with only the test plugin (no entry points loaded)."""
    manager = new_plugin_manager()
    manager.register(MemoryPlugin(), name="memory-plugin")
    return manager


@pytest.fixture
def registry(pm):
    """The registry built from the test plugin."""
    return BackendRegistry.from_plugins(pm)


@pytest.fixture
def example():
    """Load an example transaction as plain JSON data by file stem."""

    def load(name: str) -> dict:
        return json.loads((EXAMPLES / f"{name}.json").read_text())

    return load
