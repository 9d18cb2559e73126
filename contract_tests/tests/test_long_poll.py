"""Long polls a backend sends from a background thread (``Harness.long_poll_paths``)."""

from __future__ import annotations

import pytest
import yaml


def test_an_unrecorded_long_poll_is_held_not_failed_on_replay(
    kit: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassettes = kit.path / "cassettes"
    args = ("--oms-backend", "http-sales-polling", "--oms-cassettes", str(cassettes))
    kit.runpytest(*args, "-k", "test_sale_cash", "--record-mode=rewrite").assert_outcomes(passed=1)
    recorded = yaml.safe_load((cassettes / "test_sale_cash.yaml").read_text())["interactions"]
    polls = [i for i in recorded if i["request"]["uri"].endswith("/poll")]
    # The poll the sale answered is recorded; the one still open at close is not.
    assert len(polls) == 1, [i["request"]["uri"] for i in recorded]

    kit.runpytest(*args, "-k", "test_sale_cash").assert_outcomes(passed=1)

    from contract_kit_fakes import HttpSalesPollingHarness

    monkeypatch.setattr(HttpSalesPollingHarness, "long_poll_paths", ())
    strict = kit.runpytest(*args, "-k", "test_sale_cash", "--tb=short")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*sent 1 request(s)*", "*GET http://127.0.0.1:9/poll*"])


def test_a_recorded_long_poll_must_still_be_played(kit: pytest.Pytester) -> None:
    cassettes = kit.path / "cassettes"
    args = ("--oms-backend", "http-sales-polling", "--oms-cassettes", str(cassettes))
    kit.runpytest(*args, "-k", "test_sale_cash", "--record-mode=rewrite").assert_outcomes(passed=1)
    path = cassettes / "test_sale_cash.yaml"
    data = yaml.safe_load(path.read_text())
    poll = next(i for i in data["interactions"] if i["request"]["uri"].endswith("/poll"))
    count = next(i for i in data["interactions"] if i["request"]["uri"].endswith("/count"))
    # A recorded poll answered after a request the scenario never sends: it waits its turn,
    # which never comes, and both are reported as never played (recorded polls are not excused).
    data["interactions"] += [count, poll]
    path.write_text(yaml.safe_dump(data))
    result = kit.runpytest(*args, "-k", "test_sale_cash", "--tb=short")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*holds 2 interaction(s) the scenario never played*",
            "*GET http://127.0.0.1:9/count*",
            "*GET http://127.0.0.1:9/poll*",
        ]
    )
