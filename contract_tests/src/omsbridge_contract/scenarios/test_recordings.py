"""The backend's committed cassettes: free of secrets, and each one belongs to a scenario."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from omsbridge_contract.cassettes import scan_cassette
from omsbridge_contract.registry import SCENARIOS, ScenarioInfo, scenario

if TYPE_CHECKING:
    from omsbridge_contract.plugin import Suite


def _cassettes(suite: Suite) -> list[Path]:
    if suite.cassette_dir is None:
        pytest.skip(
            f"backend {suite.backend_name!r} records no HTTP (its harness has no cassette_dir)"
        )
    found = sorted(suite.cassette_dir.glob("*.yaml"))
    if not found:
        pytest.skip(f"no cassettes recorded yet in {suite.cassette_dir}")
    return found


@scenario(
    "no cassette of the backend holds a token, password, API key, cookie or tenant URL",
    area="recordings",
)
def test_cassettes_have_no_secrets(oms_scenario: ScenarioInfo, oms_suite: Suite) -> None:
    findings = [finding for path in _cassettes(oms_suite) for finding in scan_cassette(path)]
    assert not findings, "secrets in cassettes:\n" + "\n".join(f"  {f}" for f in findings)


@scenario(
    "every cassette of the backend is named after a scenario (no stale recordings)",
    area="recordings",
)
def test_cassettes_belong_to_scenarios(oms_scenario: ScenarioInfo, oms_suite: Suite) -> None:
    stale = [path.name for path in _cassettes(oms_suite) if path.stem not in SCENARIOS]
    assert not stale, f"cassettes of no scenario (delete them or re-record): {stale}"
