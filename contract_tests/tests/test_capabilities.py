"""Scenarios gated on a flavour capability are skipped, with the reason, where it is missing."""

from __future__ import annotations

import pytest


def test_a_missing_flavour_skips_its_scenario_with_the_reason(kit: pytest.Pytester) -> None:
    result = kit.runpytest(
        "--oms-backend", "memory-no-unreferenced", "-ra", "-k", "return_without_receipt"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*SKIPPED*backend 'memory-no-unreferenced' does not declare capability "
            "POST_UNREFERENCED_RETURN (post:return:unreferenced)*"
        ]
    )
    declared = kit.runpytest("--oms-backend", "memory", "-k", "return_without_receipt")
    declared.assert_outcomes(passed=1)


def test_leaving_out_a_flavour_makes_no_operation_unsupported(kit: pytest.Pytester) -> None:
    result = kit.runpytest(
        "--oms-backend", "memory-no-unreferenced", "-ra", "-k", "unsupported_operations"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*declares every operation: nothing is unsupported*"])
