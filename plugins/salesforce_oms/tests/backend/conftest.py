"""Fixtures of the Salesforce backend tests (the sandbox fixtures come from the sandbox plugin)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sf_backend_helpers import MERCHANT, config

from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce.config import CustomField

# sf_sandbox / sf_sandbox_demo come from omsbridge_salesforce_sandbox.pytest_plugin, loaded by
# the distribution's tests/conftest.py.


@pytest.fixture
def backend(sf_sandbox) -> Iterator[SalesforceBackend]:  # type: ignore[no-untyped-def]
    """A backend for merchant SHOPNOW20140910 on an empty sandbox org."""
    b = SalesforceBackend(config(sf_sandbox.url), MERCHANT)
    yield b
    b.close()


@pytest.fixture
def demo_backend(sf_sandbox_demo) -> Iterator[SalesforceBackend]:  # type: ignore[no-untyped-def]
    """A backend for merchant DEMO on the demo org (stores, gateways, BOPIS orders)."""
    from omsbridge import MerchantContext

    b = SalesforceBackend(
        config(
            sf_sandbox_demo.url,
            custom_fields=[CustomField("warehouseID__c")],
            payment_gateway_name="DemoGateway",
            cash_payment_gateway_name="CashPOS",
            return_window_days=14,
        ),
        MerchantContext("DEMO", "en_US", "US", "USD"),
    )
    yield b
    b.close()
