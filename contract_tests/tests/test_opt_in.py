"""The opt-in: one conftest line and ``--oms-backend NAME`` run every scenario, nothing else."""

from __future__ import annotations

import re

import pytest

from omsbridge_contract.registry import SCENARIO_MODULES, SCENARIOS

# What the complete in-memory backend cannot run: nothing is unsupported, and it records no HTTP.
MEMORY_SKIPS = 3


def test_one_line_runs_every_scenario_against_the_reference_backend(kit: pytest.Pytester) -> None:
    result = kit.runpytest("--oms-backend", "memory", "-ra")
    result.assert_outcomes(passed=len(SCENARIOS) - MEMORY_SKIPS, skipped=MEMORY_SKIPS)
    result.stdout.fnmatch_lines(["*omsbridge contract: backend 'memory'*MemoryHarness*"])


def test_scenario_ids_are_the_catalogue(kit: pytest.Pytester) -> None:
    result = kit.runpytest("--oms-backend", "memory", "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    names = [line.split("::")[-1] for line in ids]
    assert sorted(names) == sorted(SCENARIOS), "collected scenarios differ from the catalogue"
    assert len(names) == len(set(names)), "a scenario id is used twice"
    modules = list(dict.fromkeys(line.split("::")[0].rsplit("/", 1)[-1] for line in ids))
    assert modules == list(SCENARIO_MODULES), "modules must run in catalogue order"


def test_without_the_option_nothing_is_added(kit: pytest.Pytester) -> None:
    kit.makepyfile(test_own="def test_own():\n    assert True\n")
    result = kit.runpytest()
    result.assert_outcomes(passed=1)


def test_the_line_in_a_subfolder_conftest_like_a_plugin_repo(pytester: pytest.Pytester) -> None:
    # A plugin's repo: its own unit tests next to tests/contract/conftest.py with the one line.
    from pathlib import Path

    from contract_kit_fakes import INNER_CONFTEST

    pytester.syspathinsert(Path(__file__).parent)
    pytester.mkpydir("tests")
    pytester.makepyfile(**{"tests/test_unit": "def test_unit():\n    assert 1 + 1 == 2\n"})
    contract = pytester.path / "tests" / "contract"
    contract.mkdir()
    (contract / "conftest.py").write_text(INNER_CONFTEST)
    result = pytester.runpytest("tests/contract", "--oms-backend", "memory")
    result.assert_outcomes(passed=len(SCENARIOS) - MEMORY_SKIPS, skipped=MEMORY_SKIPS)


def test_unknown_backend_is_a_usage_error_listing_the_installed_ones(kit: pytest.Pytester) -> None:
    result = kit.runpytest("--oms-backend", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*no backend named 'nope' is registered*memory*"])


def test_backend_without_harness_is_a_usage_error_saying_what_to_add(kit: pytest.Pytester) -> None:
    result = kit.runpytest("--oms-backend", "no-harness")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["*no plugin registers a contract harness*omsbridge_contract_harnesses*"]
    )


def test_missing_capabilities_are_skips_with_reasons(kit: pytest.Pytester) -> None:
    result = kit.runpytest("--oms-backend", "sales-only", "-ra")
    text = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, text
    assert outcomes["passed"] >= 8, text  # the sale scenarios and test_unsupported_operations_raise
    reasons = re.findall(r"SKIPPED \[\d+\] \S+: (.*)", text)
    assert sum(int(n) for n in re.findall(r"SKIPPED \[(\d+)\]", text)) == outcomes["skipped"]
    assert any("does not declare capability SEARCH_ORDERS (search)" in r for r in reasons), reasons
    assert any("does not declare capability GET_ORDER (order:detail)" in r for r in reasons), (
        reasons
    )
    assert any("MinimalHarness cannot inject fault" in r for r in reasons), reasons
    unsupported = kit.runpytest("--oms-backend", "sales-only", "-k", "unsupported_operations")
    unsupported.assert_outcomes(passed=1)


def test_faults_the_harness_cannot_inject_are_skips_with_reasons(kit: pytest.Pytester) -> None:
    # http-sales's harness injects 5xx only.
    result = kit.runpytest(
        "--oms-backend", "http-sales", "-ra", "-k", "fault_timeout or fault_auth"
    )
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*HttpSalesHarness cannot inject fault 'timeout'*",
            "*HttpSalesHarness cannot inject fault 'auth'*",
        ],
        consecutive=False,
    )


def test_only_the_one_line_uses_the_installed_backends(pytester: pytest.Pytester) -> None:
    # No hook, no fakes: the plugin manager is omsbridge's, loaded from the entry points.
    pytester.makeconftest('pytest_plugins = ["omsbridge_contract.plugin"]\n')
    result = pytester.runpytest("--oms-backend", "no-such-backend")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*no backend named 'no-such-backend' is registered*"])


def test_only_the_one_line_replays_an_installed_backend(pytester: pytest.Pytester) -> None:
    pytest.importorskip("omsbridge_posspi", reason="the pos-spi distribution is not installed")
    pytester.makeconftest('pytest_plugins = ["omsbridge_contract.plugin"]\n')
    result = pytester.runpytest("--oms-backend", "pos-spi", "-k", "test_sale_cash or cassettes")
    result.assert_outcomes(passed=3)


def test_variant_picks_the_harness_set_up_and_its_cassette_folder(kit: pytest.Pytester) -> None:
    result = kit.runpytest(
        *("--oms-backend", "variants", "--oms-variant", "beta", "-k", "registered"),
        "--record-mode=rewrite",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*cassettes */variant-cassettes/beta, record mode rewrite, variant beta"]
    )
    assert (kit.path / "variant-cassettes" / "beta").is_dir()
    assert (kit.path / "chosen-variant.txt").read_text(encoding="utf-8") == "beta"


def test_first_variant_is_the_default(kit: pytest.Pytester) -> None:
    result = kit.runpytest("--oms-backend", "variants", "-k", "registered", "--record-mode=rewrite")
    result.assert_outcomes(passed=1)
    assert (kit.path / "chosen-variant.txt").read_text(encoding="utf-8") == "alpha"


def test_unknown_variant_is_a_usage_error_listing_the_variants(kit: pytest.Pytester) -> None:
    result = kit.runpytest("--oms-backend", "variants", "--oms-variant", "gamma")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["*'gamma' is not one of VariantsHarness's variants (alpha, beta)*"]
    )


def test_variant_for_a_harness_without_variants_is_a_usage_error(kit: pytest.Pytester) -> None:
    result = kit.runpytest("--oms-backend", "memory", "--oms-variant", "alpha")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*MemoryHarness declares no variants*"])


def test_declared_capability_whose_harness_method_is_missing_fails(kit: pytest.Pytester) -> None:
    # "Declared means done": no quiet skip that blames the harness.
    result = kit.runpytest("--oms-backend", "half-done-fulfillment", "-k", "bopis")
    outcomes = result.parseoutcomes()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, outcomes
    assert outcomes.get("errors", 0) == 3 and not outcomes.get("skipped"), outcomes
    result.stdout.fnmatch_lines(
        [
            "*declares FULFILLMENT_ORDERS*HalfDoneFulfillmentHarness does not implement "
            "make_fulfillment_order()*or stop declaring the capability*"
        ]
    )
