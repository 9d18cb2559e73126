"""The ``salesforce`` sandbox command: options, a real process, restart with a state file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from omsbridge_salesforce_sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from omsbridge_salesforce_sandbox.cli import command


def _start(*args: str) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "omsbridge_salesforce_sandbox.cli", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = ""
    while "control" not in banner:  # the banner ends with the control endpoint line
        line = process.stdout.readline()
        if not line:
            raise AssertionError(banner + (process.stderr.read() if process.stderr else ""))
        banner += line
    match = re.search(r"listening on (http\S+)", banner)
    assert match, banner
    return process, match.group(1), banner


def _stop(process: subprocess.Popen[str], url: str) -> None:
    assert httpx.post(f"{url}/__sandbox__/shutdown").json() == {"stopping": True}
    process.communicate(timeout=10)
    assert process.returncode == 0


def _token(url: str) -> str:
    response = httpx.post(
        f"{url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "username": USERNAME,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_command_name_and_options() -> None:
    assert command.name == "salesforce"
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--port",
        "--host",
        "--seed",
        "--state",
        "--token-lifetime",
        "--latency-ms",
        "--error-rate",
        "--api-budget",
        "--fault",
        "--tls",
        "--page-size",
    ):
        assert option in result.output
    refused = CliRunner().invoke(command, ["--host", "0.0.0.0"])
    assert refused.exit_code != 0  # loopback only
    bad_fault = CliRunner().invoke(command, ["--fault", '{"kind": "nope"}'])
    assert bad_fault.exit_code != 0 and "unknown fault kind" in bad_fault.output


def test_cli_process_with_flags_and_state_file(tmp_path: Path) -> None:
    state = tmp_path / "org.sqlite"
    fault = json.dumps({"kind": "error", "status": 503, "path": "*/limits", "count": 1})
    process, url, banner = _start(
        "--seed",
        "demo",
        "--state",
        str(state),
        "--api-budget",
        "50",
        "--token-lifetime",
        "600",
        "--fault",
        fault,
    )
    try:
        token = _token(url)
        headers = {"Authorization": f"Bearer {token}"}
        info = httpx.get(f"{url}/__sandbox__/info").json()
        assert info["options"]["token_lifetime"] == 600
        assert info["credentials"]["username"] == USERNAME
        assert httpx.get(f"{url}/services/data/v62.0/limits", headers=headers).status_code == 503
        limits = httpx.get(f"{url}/services/data/v62.0/limits", headers=headers)
        assert limits.json()["DailyApiRequests"]["Max"] == 50
        created = httpx.post(
            f"{url}/services/data/v62.0/sobjects/Account",
            headers=headers,
            json={"Name": "Kept across processes"},
        ).json()
    finally:
        _stop(process, url)
    assert "client id" in banner and CLIENT_ID in banner
    process, url, _ = _start("--state", str(state))
    try:
        headers = {"Authorization": f"Bearer {token}"}  # the old token survives the restart
        got = httpx.get(
            f"{url}/services/data/v62.0/sobjects/Account/{created['id']}", headers=headers
        )
        assert got.status_code == 200 and got.json()["Name"] == "Kept across processes"
        stores = httpx.get(
            f"{url}/services/data/v62.0/query",
            headers=headers,
            params={"q": "SELECT COUNT() FROM Location WHERE warehouseID__c LIKE 'store%'"},
        )
        assert stores.json()["totalSize"] == 2
        shake = httpx.post(
            f"{url}/cometd/62.0",
            headers=headers,
            json=[
                {
                    "channel": "/meta/connect",
                    "clientId": "from-before-the-restart",
                    "connectionType": "long-polling",
                }
            ],
        ).json()
        assert shake[0]["error"] == "403::Unknown client"
    finally:
        _stop(process, url)


def test_through_the_omsbridge_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "omsbridge", "sandbox", "salesforce", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Salesforce Order Management sandbox" in result.stdout
    assert "--seed" in result.stdout and "--org-profile" in result.stdout


def test_org_profile_option() -> None:
    process, url, banner = _start("--org-profile", "som-minimal", "--seed", "demo")
    try:
        assert "profile: som-minimal" in banner
        info = httpx.get(f"{url}/__sandbox__/info").json()
        assert info["org_profile"] == "som-minimal"
        assert info["merchant_settings"]["order_summary_creation"] == "connect"
        headers = {"Authorization": f"Bearer {_token(url)}"}
        query = httpx.get(
            f"{url}/services/data/v62.0/query",
            headers=headers,
            params={"q": "SELECT CurrencyIsoCode FROM Order"},
        )
        assert query.status_code == 400 and query.json()[0]["errorCode"] == "INVALID_FIELD"
    finally:
        _stop(process, url)
    bad = subprocess.run(
        [sys.executable, "-m", "omsbridge_salesforce_sandbox.cli", "--org-profile", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "som-minimal" in bad.stderr
