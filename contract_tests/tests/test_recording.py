"""Recording and replay: one cassette per scenario, scrubbed, replayed offline and exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from contract_kit_fakes import CLIENT_SECRET, TOKEN

from omsbridge_contract.cassettes import REDACTED, scan_cassette

SCENARIOS = "test_sale_cash or test_post_idempotent_repost or test_fault_server_error"
RECORDED = {"test_sale_cash", "test_post_idempotent_repost", "test_fault_server_error"}


def _run(kit: pytest.Pytester, cassettes: Path, *args: str, backend: str = "http-sales"):  # type: ignore[no-untyped-def]
    return kit.runpytest(
        "--oms-backend", backend, "--oms-cassettes", str(cassettes), "-k", SCENARIOS, *args
    )


@pytest.fixture
def recorded(kit: pytest.Pytester) -> Path:
    """Cassettes recorded against the live local server (``--record-mode=rewrite``)."""
    cassettes = kit.path / "cassettes"
    result = _run(kit, cassettes, "--record-mode=rewrite", "-ra")
    # test_fault_server_error_on_read needs order:detail, which http-sales does not offer.
    result.assert_outcomes(passed=3, skipped=1)
    return cassettes


def test_one_cassette_per_scenario(recorded: Path) -> None:
    assert {p.stem for p in recorded.glob("*.yaml")} == RECORDED


def test_secrets_are_scrubbed_on_both_sides(recorded: Path) -> None:
    text = (recorded / "test_sale_cash.yaml").read_text()
    assert CLIENT_SECRET not in text, "the client secret (request body) was recorded"
    assert TOKEN not in text, "the access token (response body / Authorization) was recorded"
    assert "refresh-token-value" not in text
    assert "acme-retail" not in text, "a tenant-identifying instance_url was recorded"
    assert "00Dxx0000001gPL" not in text and "set-cookie" not in text.lower()
    interactions = yaml.safe_load(text)["interactions"]
    token = next(i for i in interactions if i["request"]["uri"].endswith("/token"))
    assert f"client_secret={REDACTED}" in token["request"]["body"]
    assert f'"access_token":"{REDACTED}"' in token["response"]["body"]["string"]
    orders = next(i for i in interactions if i["request"]["uri"].endswith("/orders"))
    headers = {k.lower(): v for k, v in orders["request"]["headers"].items()}
    assert headers["authorization"] == [REDACTED]
    assert all(":9/" in i["request"]["uri"] for i in interactions), "loopback port not normalised"
    for path in recorded.glob("*.yaml"):
        assert scan_cassette(path) == [], f"secrets left in {path.name}"


def test_replay_runs_offline_without_the_server(kit: pytest.Pytester, recorded: Path) -> None:
    from contract_kit_fakes import HttpSalesHarness

    HttpSalesHarness.started.clear()
    result = _run(kit, recorded)
    result.assert_outcomes(passed=3, skipped=1)
    assert HttpSalesHarness.started == [False], "replay must not start the server"


def test_an_interaction_recorded_but_not_played_fails(kit: pytest.Pytester, recorded: Path) -> None:
    path = recorded / "test_sale_cash.yaml"
    data = yaml.safe_load(path.read_text())
    data["interactions"].append(data["interactions"][-1])  # a stale extra interaction
    path.write_text(yaml.safe_dump(data))
    result = _run(kit, recorded, "--tb=short")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*holds 1 interaction(s) the scenario never played*"])


def test_a_request_the_cassette_does_not_hold_fails(kit: pytest.Pytester, recorded: Path) -> None:
    path = recorded / "test_sale_cash.yaml"
    path.write_text(path.read_text().replace("CT-sale-cash-1", "CT-sale-cash-9"))
    result = _run(kit, recorded, "--tb=short")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*does not hold*", "*POST http://127.0.0.1:9/orders*"])


def test_replay_never_rewrites_a_cassette(kit: pytest.Pytester, recorded: Path) -> None:
    before = {p.name: p.read_bytes() for p in recorded.glob("*.yaml")}
    path = recorded / "test_sale_cash.yaml"
    data = yaml.safe_load(path.read_text())
    data["interactions"].append(data["interactions"][-1])
    path.write_text(yaml.safe_dump(data))
    before[path.name] = path.read_bytes()
    _run(kit, recorded)
    assert {p.name: p.read_bytes() for p in recorded.glob("*.yaml")} == before


def test_a_failing_scenario_saves_no_cassette(kit: pytest.Pytester) -> None:
    cassettes = kit.path / "cassettes"
    result = _run(kit, cassettes, "--record-mode=rewrite", backend="http-sales-double")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    assert {p.stem for p in cassettes.glob("*.yaml")} == RECORDED - {"test_post_idempotent_repost"}


def test_missing_cassette_fails_with_the_rerecord_command(kit: pytest.Pytester) -> None:
    # Before the backend or the harness sends anything: a harness whose reset() goes over HTTP
    # would otherwise fail inside vcrpy, whose advice (record_mode='once') does not apply here.
    result = _run(kit, kit.path / "empty", "--tb=short", "-k", "test_sale_cash")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*no cassette for scenario test_sale_cash at *empty/test_sale_cash.yaml: record it*",
            "*pytest . --oms-backend http-sales --oms-cassettes *empty"
            " --record-mode=rewrite -k test_sale_cash",
        ],
        consecutive=False,
    )
    assert "record_mode='once'" not in result.stdout.str()


def test_cassette_checks_run_on_the_backends_cassettes(
    kit: pytest.Pytester, recorded: Path
) -> None:
    (recorded / "test_renamed_long_ago.yaml").write_text("interactions: []\n")
    leaky = recorded / "test_sale_card.yaml"
    leaky.write_text(
        "interactions:\n- request: {uri: 'http://x/', headers: {Authorization: [Bearer abcdef123456]}}\n"
        "  response: {headers: {}, body: {string: ''}}\n"
    )
    result = kit.runpytest(
        "--oms-backend",
        "http-sales",
        "--oms-cassettes",
        str(recorded),
        "-k",
        "cassettes",
        "--tb=short",
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*unscrubbed credential header*"], consecutive=False)
    result.stdout.fnmatch_lines(["*test_renamed_long_ago.yaml*"], consecutive=False)


def test_a_harness_may_tolerate_a_background_request_on_replay(
    kit: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassettes = kit.path / "cassettes"
    args = ("--oms-backend", "http-sales-pinging", "--oms-cassettes", str(cassettes))
    kit.runpytest(*args, "-k", "test_sale_cash", "--record-mode=rewrite").assert_outcomes(passed=1)
    path = cassettes / "test_sale_cash.yaml"
    data = yaml.safe_load(path.read_text())
    data["interactions"] = [
        i for i in data["interactions"] if not i["request"]["uri"].endswith("/ping")
    ]
    path.write_text(yaml.safe_dump(data))
    kit.runpytest(*args, "-k", "test_sale_cash").assert_outcomes(passed=1)
    from contract_kit_fakes import HttpSalesPingingHarness

    monkeypatch.setattr(HttpSalesPingingHarness, "unrecorded_request_allowed", lambda *a: False)
    strict = kit.runpytest(*args, "-k", "test_sale_cash", "--tb=short")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*GET http://127.0.0.1:9/ping*"])
