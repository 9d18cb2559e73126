"""The catalogue and the documents agree; the small public pieces behave as documented."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import httpx
import pytest

from omsbridge import hookimpl
from omsbridge.plugins import PluginLoadWarning, new_plugin_manager
from omsbridge_contract import Fault, Harness, HttpxTimeouts
from omsbridge_contract.harness import overrides
from omsbridge_contract.registry import SCENARIO_MODULES, catalogue_markdown, load_catalogue

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_docs_list_every_scenario_as_the_catalogue_does() -> None:
    text = (DOCS / "contract-suite.md").read_text(encoding="utf-8")
    section = re.search(r"<!-- scenarios:start -->\n(.*)<!-- scenarios:end -->", text, re.S)
    assert section, "docs/contract-suite.md lost its scenarios section"
    assert section.group(1) == catalogue_markdown(), (
        "the scenario table is stale: regenerate it with `python -m omsbridge_contract`"
    )


def test_every_scenario_is_well_described() -> None:
    catalogue = load_catalogue()
    assert len(catalogue) >= 45
    for scenario_id, info in catalogue.items():
        assert scenario_id.startswith("test_") and scenario_id == info.id
        assert info.summary and info.area, scenario_id
    flows = [
        "test_sale_cash",
        "test_sale_card",
        "test_sale_digital_wallet",
        "test_sale_split_tender",
        "test_in_store_order_pickup_later",
        "test_endless_aisle_order",
        "test_mixed_cart_order",
        "test_return_with_receipt",
        "test_return_without_receipt",
        "test_partial_return",
        "test_exchange",
        "test_cancel_order",
        "test_cancel_one_line",
        "test_search_by_order_number",
        "test_search_by_email",
        "test_search_by_last_name",
        "test_search_by_customer_id",
        "test_search_paging",
        "test_order_detail",
        "test_boris_return_online_order",
        "test_fulfillment_orders_bopis",
        "test_fulfillment_orders_bofis",
        "test_bopis_status_updates",
        "test_post_idempotent_repost",
        "test_fault_server_error",
        "test_fault_timeout",
        "test_fault_auth_failure",
    ]
    missing = [f for f in flows if f not in catalogue]
    assert not missing, f"flows without a scenario: {missing}"
    assert SCENARIO_MODULES[-1] == "test_recordings.py", "the recordings checks run last"


def test_the_plugin_author_guide_shows_the_opt_in_and_the_hook() -> None:
    text = (DOCS / "plugin-author-guide.md").read_text(encoding="utf-8")
    for needed in (
        'pytest_plugins = ["omsbridge_contract.plugin"]',
        "def omsbridge_contract_harnesses(register):",
        "@hookimpl(optionalhook=True)",
        "def omsbridge_register_backends(register):",
        "[project.entry-points.omsbridge]",
        "--oms-backend",
        "--record-mode=rewrite",
    ):
        assert needed in text, f"the guide does not show {needed!r}"


def test_httpx_timeouts_arm_and_disarm() -> None:
    timeouts = HttpxTimeouts()
    original = httpx.HTTPTransport.__dict__["handle_request"]
    timeouts.arm()
    try:
        with httpx.Client() as client, pytest.raises(httpx.ReadTimeout):
            client.get("http://127.0.0.1:9/")
        assert timeouts.timeouts == 1 and timeouts.armed
    finally:
        timeouts.disarm()
    assert httpx.HTTPTransport.__dict__["handle_request"] is original
    assert not timeouts.armed


def test_harness_defaults_are_explicit() -> None:
    class Bare(Harness):
        backend = "bare"

    harness = Bare(live=False, workdir=Path("."))
    with pytest.raises(NotImplementedError):
        harness.settings()
    with pytest.raises(NotImplementedError):
        harness.order_count()
    assert not overrides(harness, "seed_online_order")
    assert harness.faults == frozenset() and Fault.TIMEOUT not in harness.faults
    assert harness.merchant().merchant_id == "CONTRACT"


def test_harness_registration_isolates_a_failing_plugin() -> None:
    from omsbridge_contract.plugin import collect_harnesses
    from omsbridge_contract.testing import MemoryHarness

    class Good:
        @staticmethod
        @hookimpl(optionalhook=True)
        def omsbridge_contract_harnesses(register):  # type: ignore[no-untyped-def]
            register(MemoryHarness)

    class Broken:
        @staticmethod
        @hookimpl(optionalhook=True)
        def omsbridge_contract_harnesses(register):  # type: ignore[no-untyped-def]
            raise ImportError("omsbridge_contract is too old")

    class Wrong:
        @staticmethod
        @hookimpl(optionalhook=True)
        def omsbridge_contract_harnesses(register):  # type: ignore[no-untyped-def]
            register(object)

    pm = new_plugin_manager()
    pm.register(Good(), name="good")
    pm.register(Broken(), name="broken")
    pm.register(Wrong(), name="wrong")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = collect_harnesses(pm)
        collect_harnesses(pm)  # the hookspec is added once, however often this runs
    assert found == {"memory": MemoryHarness}
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert any("'broken'" in m and "too old" in m for m in messages), messages
    assert any("'wrong'" in m and "not a subclass" in m for m in messages), messages
