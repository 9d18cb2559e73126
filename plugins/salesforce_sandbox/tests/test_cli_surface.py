"""The CLI as a person meets it on the Salesforce sandbox: an error said once, the same sandbox
option names on both sandboxes, the advertised API version the one the demo uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from omsbridge.cli import _add_plugin_commands, cli
from omsbridge.demo.runner import write_config
from omsbridge.local import local_servers
from omsbridge_salesforce_sandbox import serve

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "transactions"


def test_a_refused_post_says_its_message_once(tmp_path):
    server = serve(seed="demo")
    try:
        info = server.sandbox.info(server.url)
        from omsbridge.local import LocalServer

        config = tmp_path / "c.toml"
        write_config(config, {"SF": LocalServer("salesforce", server.url, info["merchant_settings"],
                                                stop=lambda: None)})  # fmt: skip
        # The original (named by its POS order number) was never posted: Rejected, kept dead.
        done = subprocess.run(
            [sys.executable, "-m", "omsbridge", "post", str(EXAMPLE / "return-with-receipt.json"),
             "--config", str(config)],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, **info["environment"]}, cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.stop()
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("ORIGINAL_ORDER_NOT_FOUND") == 1, done.stderr
    assert "omsbridge export retry" in done.stderr  # the note, said once too
    assert done.stderr.count("omsbridge export retry") == 1


def test_both_sandboxes_take_the_same_option_names():
    _add_plugin_commands()
    for name in ("salesforce", "pos-spi"):
        result = CliRunner().invoke(cli, ["sandbox", name, "--help"])
        assert result.exit_code == 0, result.output
        for option in ("--host", "--port", "--state"):
            assert option in result.output, f"sandbox {name} lacks {option}"


def test_the_advertised_api_version_is_the_one_the_demo_uses():
    import httpx

    server = local_servers()["salesforce"]()
    try:
        info = httpx.get(f"{server.url}/__sandbox__/info").json()
        versions = httpx.get(f"{server.url}/services/data/").json()
    finally:
        server.stop()
    newest = max(versions, key=lambda v: float(v["version"]))["version"]
    # The banner (`omsbridge sandbox salesforce`) prints SandboxServer.api_version, the newest.
    assert info["api_version"] == newest
    assert server.settings["api_version"] == f"v{newest}", "the demo's merchant uses it"
