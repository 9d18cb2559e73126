"""omsbridge-contract: one contract suite that every omsbridge backend must pass.

A backend plugin proves itself in three steps.

1. Write a harness next to the backend and register it from the plugin module that registers
   the backend (marked optional, so the plugin loads where this kit is not installed)::

       # omsbridge_mybackend/contract_harness.py
       from omsbridge_contract import Fault, Harness

       class MyHarness(Harness):
           backend = "my-backend"
           cassette_dir = Path(__file__).parents[2] / "tests" / "contract" / "cassettes"
           faults = frozenset({Fault.SERVER_ERROR, Fault.AUTH})

           def settings(self):
               return {"base_url": self.url, "api_key": {"env": "MY_KEY"}}

           def order_count(self):
               ...

       # omsbridge_mybackend/plugin.py
       @hookimpl(optionalhook=True)
       def omsbridge_contract_harnesses(register):
           from omsbridge_mybackend.contract_harness import MyHarness
           register(MyHarness)

2. Opt in with one line in the ``conftest.py`` of the directory you run the suite on::

       pytest_plugins = ["omsbridge_contract.plugin"]

3. Record once against a local server, commit the cassettes, and replay offline in CI::

       pytest tests/contract --oms-backend my-backend --record-mode=rewrite   # maintainers
       pytest tests/contract --oms-backend my-backend                         # CI, offline

Every scenario has a stable id (``test_sale_cash``...); :data:`SCENARIOS` lists them with what
each needs. A scenario the backend or harness cannot run is skipped with the reason shown.
:mod:`omsbridge_contract.testing` has a complete in-memory reference backend to compare with.
"""

import pytest

# Before the helper modules are imported, so their assertions report the values they compared.
pytest.register_assert_rewrite(
    "omsbridge_contract.checks",
    "omsbridge_contract.contract",
    "omsbridge_contract.scenarios",
    "omsbridge_contract.testing",
)

from omsbridge_contract.faults import HttpxTimeouts  # noqa: E402
from omsbridge_contract.harness import Fault, Harness, OnlineLine, OnlineOrder  # noqa: E402
from omsbridge_contract.registry import SCENARIOS, ScenarioInfo  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "SCENARIOS",
    "Fault",
    "Harness",
    "HttpxTimeouts",
    "OnlineLine",
    "OnlineOrder",
    "ScenarioInfo",
]
