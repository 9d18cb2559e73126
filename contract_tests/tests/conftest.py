"""The kit's own tests run pytest inside pytest (pytester) against fake backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import vcr.serialize  # noqa: F401
import yaml  # noqa: F401
from contract_kit_fakes import INNER_CONFTEST

# vcr and yaml are imported here, once: pytester's in-process runs forget the modules each run
# imported, and a second copy of yaml next to vcr's first one cannot load cassettes.

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    """The scenario markers, for tests that import the scenario modules outside a contract run."""
    config.addinivalue_line("markers", "oms_contract: an omsbridge contract-suite scenario")
    config.addinivalue_line("markers", "oms_scenario(info): the scenario's catalogue entry")


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
