"""Each exit status of the table in ``omsbridge.cli.exit_codes``, produced by a real command
against the pos-spi reference server, and the table shown by ``--help`` and the operator guide."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from faulty import EXAMPLE
from paths import ROOT
from test_export_posspi import write_config

from omsbridge.cli import cli
from omsbridge.cli.exit_codes import ExitCode

server_module = pytest.importorskip("omsbridge_posspi.server")


@pytest.fixture
def spi(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SPI_KEY", server_module.DEFAULT_API_KEY)
    app = server_module.SpiApp()
    handle = server_module.serve(app)
    config = write_config(tmp_path / "c.toml", handle.url, {"M": "key"}, timeout=2)
    yield app, ["--config", str(config), "--merchant", "M"]
    handle.stop()
    app.store.close()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    # Every status comes from a deliberate exit, never from an exception escaping.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_ok(spi):
    _, base = spi
    assert run("post", str(EXAMPLE), *base)[0] == ExitCode.OK == 0


def test_fix_bad_input(spi, tmp_path):
    _, base = spi
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**json.loads(EXAMPLE.read_text()), "currency": "usd"}))
    code, output = run("post", str(broken), *base)
    assert code == ExitCode.FIX == 1 and "currency" in output


def test_usage_error_is_2_and_nothing_else_is(spi):
    _, base = spi
    assert run("post", str(EXAMPLE), *base, "--no-such-option")[0] == ExitCode.USAGE == 2
    assert run("post")[0] == ExitCode.USAGE


def test_queued(spi):
    app, base = spi
    app.inject_fault("error", count=10, status=503, method="POST", path_prefix="/orders")
    code, output = run("post", str(EXAMPLE), *base, "--json")
    assert code == ExitCode.QUEUED == 3 and json.loads(output)["queued"] is True


def test_retry_is_75_not_2(spi):
    app, base = spi
    app.inject_fault("error", count=10, status=503, method="GET")
    code, output = run("search", *base, "--last-name", "Freeman", "--json")
    assert code == ExitCode.RETRY == 75, output
    assert json.loads(output)["retryable"] is True


def _documented(text: str) -> dict[int, str]:
    return {
        int(code): meaning
        for code, meaning in re.findall(
            r"^\s*\|?\s*`?(\d+)`?\s*\|\s*(.+?)\s*\|?$", text, flags=re.M
        )
    }


def test_help_and_guide_list_every_code():
    help_text = CliRunner().invoke(cli, ["--help"]).output
    listed = {
        int(m)
        for m in re.findall(r"^\s+(\d+)\s{2,}", help_text.split("Exit status:")[1], flags=re.M)
    }
    assert listed == {int(c) for c in ExitCode}
    guide = (ROOT / "docs" / "operator-guide.md").read_text(encoding="utf-8")
    section = guide.split("## Exit status")[1].split("\n## ")[0]
    assert set(_documented(section)) == {int(c) for c in ExitCode}
