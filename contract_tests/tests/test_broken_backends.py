"""The suite catches each deliberate defect, in the scenario meant to catch it."""

from __future__ import annotations

import pytest
from contract_kit_fakes import BROKEN

EXPECTED_MESSAGES = {
    "broken-double-post": "result.created must be False",
    "broken-float-money": "detail.totals.net must be a Decimal, got float",
    "broken-503": "expected TransientBackendError, got Rejected",
    "broken-raw-errors": "every backend error must be one of omsbridge.errors",
    "broken-silent-noop": "CANCEL_ITEMS (cancel:items) is not declared, so it must raise Unsupported",
    "broken-no-return-check": "expected Rejected, but nothing was raised",
}
# Defects every scenario that reads an order meets (the others fail one scenario, or two when the
# same fault scenario has a read variant).
WIDESPREAD = {"broken-float-money"}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_suite_catches_the_defect(kit: pytest.Pytester, name: str) -> None:
    _, scenario_id = BROKEN[name]
    result = kit.runpytest("--oms-backend", name, "--tb=short")
    failed = {
        line.split("::")[-1].split(" ")[0] for line in result.outlines if line.startswith("FAILED ")
    }
    assert scenario_id in failed, f"{scenario_id} did not catch {name}:\n{result.stdout.str()}"
    assert EXPECTED_MESSAGES[name] in result.stdout.str()
    if name not in WIDESPREAD:
        assert failed <= {scenario_id, f"{scenario_id}_on_read"}, (
            f"{name} has one defect, but these scenarios failed: {sorted(failed)}"
        )
    assert result.parseoutcomes()["passed"] > 20


def test_a_known_failure_is_a_strict_xfail_with_its_reason(kit: pytest.Pytester) -> None:
    result = kit.runpytest("--oms-backend", "broken-double-post-known", "-ra", "-k", "idempotent")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*test_post_idempotent_repost*ACME-123*"])
    fixed = kit.runpytest("--oms-backend", "memory", "-k", "idempotent")
    fixed.assert_outcomes(passed=1)
