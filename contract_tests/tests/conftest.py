"""The kit's own tests run pytest inside pytest (pytester) against fake backends."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

INNER_CONFTEST = """
pytest_plugins = ["omsbridge_contract.plugin"]


def pytest_omsbridge_plugin_manager(config):
    from omsbridge.plugins import new_plugin_manager

    import contract_kit_fakes

    pm = new_plugin_manager()
    contract_kit_fakes.register_all(pm)
    return pm
"""
"""A third party's conftest: the one opt-in line, plus (for fakes that are not installed
through an entry point) the hook that hands the suite a plugin manager."""


@pytest.fixture
def kit(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory opted in to the contract suite, with every fake backend.

    Inner runs load no auto-discovered pytest plugins (as pytest-recording recommends for
    isolation): the contract plugin brings pytest-recording itself, which these runs also prove.
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.syspathinsert(Path(__file__).parent)  # for contract_kit_fakes
    pytester.makeconftest(INNER_CONFTEST)
    return pytester
