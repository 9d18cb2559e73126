"""The ``omsbridge`` command: backends, config check, validate, schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from paths import EXAMPLES, ROOT
from test_config import GOOD

from omsbridge import plugins
from omsbridge.cli import cli


@pytest.fixture
def run(pm, monkeypatch):
    """Invoke the CLI in-process with only the test plugin installed."""
    monkeypatch.setattr(plugins, "_default", pm)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_backends_json(run):
    result = run("backends", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == ["memory", "other"]
    assert rows[0]["capabilities"] == ["order:detail", "post:return", "post:sale"]


def test_backends_text(run):
    result = run("backends")
    assert "memory  (local)  in-memory test backend" in result.output


def test_config_check_ok(run, tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    (tmp_path / "c.toml").write_text(GOOD)
    result = run("config", "check", str(tmp_path / "c.toml"))
    assert result.exit_code == 0
    assert "ok, 2 merchant(s)" in result.output


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t,
            "merchants.SHOPNOW.memory.api_key: environment variable SHOPNOW_KEY is not set",
        ),
        (
            lambda t: t.replace('backend = "other"', 'backend = "sap"'),
            "merchants.ACME.backend: unknown backend 'sap'; installed backends: memory, other",
        ),
        (
            lambda t: t + "\n[merchants.ACME.memory]\nendpoint = 'x'\n",
            "merchants.ACME: settings for memory as well as other",
        ),
        (
            lambda t: t.replace('region = "US"', 'region = "US"\nsurprise = 1'),
            "merchants.SHOPNOW.surprise: unknown key",
        ),
        (
            lambda t: t.replace('endpoint = "http://127.0.0.1:9"\n', ""),
            "merchants.SHOPNOW.memory.endpoint: is required",
        ),
    ],
    ids=["missing-secret", "unknown-backend", "dual-mode", "unknown-key", "missing-key"],
)
def test_config_check_refuses(run, tmp_path, monkeypatch, edit, expected):
    monkeypatch.delenv("SHOPNOW_KEY", raising=False)
    (tmp_path / "c.toml").write_text(edit(GOOD))
    result = run("config", "check", str(tmp_path / "c.toml"))
    assert result.exit_code == 1
    assert expected in result.output


def test_config_check_json(run, tmp_path, monkeypatch):
    monkeypatch.delenv("SHOPNOW_KEY", raising=False)
    (tmp_path / "c.toml").write_text(GOOD)
    result = run("config", "check", "--json", str(tmp_path / "c.toml"))
    assert result.exit_code == 1
    assert json.loads(result.output)["problems"][0]["path"] == "merchants.SHOPNOW.memory.api_key"


def test_validate_accepts_every_example(run):
    files = sorted(str(p) for p in EXAMPLES.glob("*.json"))
    assert len(files) >= 12
    result = run("validate", *files)
    assert result.exit_code == 0, result.output
    assert f"{len(files)} valid, 0 invalid" in result.output


BROKEN = Path(__file__).parent / "data" / "broken"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("negative-quantity.json", "lines[1].quantity: must be > 0, got -1"),
        ("tenders-short.json", "tenders: add up to 40.00 but the total is 43.43"),
        ("too-precise.json", "lines[0].unit_price: must have at most 2 decimal places, got 19.999"),
        (
            "return-too-many.json",
            "lines[0].quantity: returns 5 but only 3 were bought on the original line",
        ),
        ("naive-time.json", "created_at: must include a timezone offset"),
    ],
)
def test_validate_rejects_broken_examples_with_paths(run, name, expected):
    result = run("validate", str(BROKEN / name))
    assert result.exit_code == 1
    assert f"{BROKEN / name}: {expected}" in result.output


def test_validate_json_lines(run, tmp_path):
    good = json.loads((EXAMPLES / "sale-cash.json").read_text())
    bad = dict(good, total="1.00")
    (tmp_path / "day.jsonl").write_text(
        json.dumps(good) + "\n\n" + json.dumps(bad) + "\nnot json\n"
    )
    result = run("validate", "--json", str(tmp_path / "day.jsonl"))
    assert result.exit_code == 1
    rows = json.loads(result.output)
    assert [(r["source"].rsplit(":", 1)[1], r["ok"]) for r in rows] == [
        ("1", True),
        ("3", False),
        ("4", False),
    ]
    assert rows[2]["errors"][0].startswith("not valid JSON")


def test_every_command_has_help_with_example(run):
    def walk(group, prefix):
        for name, command in group.commands.items():
            yield [*prefix, name], command
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])

    for path, command in walk(cli, []):
        result = run(*path, "--help")
        assert result.exit_code == 0
        if not hasattr(command, "commands") or path == ["sandbox"]:
            assert "Example" in result.output, path


def test_console_script_runs():
    """The installed entry point works as a process (plugins load or warn, never crash)."""
    result = subprocess.run(
        [sys.executable, "-c", "from omsbridge.cli import main; main(['--help'])"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "validate" in result.stdout


def test_plugins_add_commands_and_sandboxes(pm, monkeypatch):
    import click

    from omsbridge import cli as cli_module
    from omsbridge import hookimpl

    class Extra:
        @hookimpl
        def omsbridge_register_commands(self, cli):
            @cli.command(name="hello-test")
            def hello():
                """Say hello.

                Example: omsbridge hello-test"""
                click.echo("hello from a plugin")

        @hookimpl
        def omsbridge_register_sandboxes(self, register):
            @click.command(name="fake-test")
            def fake():
                """Run the fake emulator."""
                click.echo("fake sandbox up")

            register(fake)

    pm.register(Extra())
    monkeypatch.setattr(plugins, "_default", pm)
    monkeypatch.setattr(cli_module, "_plugins_added", False)
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main(["hello-test"])
    assert exit_info.value.code == 0
    runner = CliRunner()
    assert runner.invoke(cli, ["sandbox", "fake-test"]).output == "fake sandbox up\n"
    assert runner.invoke(cli, ["hello-test"]).output == "hello from a plugin\n"
    cli.commands.pop("hello-test")
    cli.commands["sandbox"].commands.pop("fake-test")  # type: ignore[attr-defined]
