"""Every ``omsbridge`` command the operator guide shows, run as written against a real outbox.

The guide is what operators copy; a command it shows that crashes (``export list`` with its
default ``--state open`` once did) is a defect, so each invocation is extracted from the
markdown and run, never retyped here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from faulty import make_sales
from paths import ROOT
from test_export_posspi import write_config

from omsbridge.cli import cli
from omsbridge.store import SqliteStore

server_module = pytest.importorskip("omsbridge_posspi.server")

GUIDE = ROOT / "docs" / "operator-guide.md"


def guide_invocations() -> list[str]:
    """``omsbridge ...`` commands of the guide: code-block lines and inline code spans."""
    text = GUIDE.read_text(encoding="utf-8")
    found: list[str] = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.startswith("omsbridge "):
                found.append(line.split("  #")[0].strip())
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [span for span in re.findall(r"`(omsbridge [^`]+)`", prose)]
    expanded: list[str] = []
    for command in found:
        # ``[--merchant SHOPNOW]`` is optional: run it with and without.
        optional = re.search(r"\[([^\]]+)\]", command)
        if optional:
            expanded.append(re.sub(r"\s*\[[^\]]+\]", "", command))
            expanded.append(command.replace(optional[0], optional[1]))
        else:
            expanded.append(command)
    return list(dict.fromkeys(expanded))


def test_the_guide_shows_the_commands_it_documents():
    commands = guide_invocations()
    # A change to the extraction that finds nothing must not pass as "all commands ran".
    assert any(c.startswith("omsbridge export list") for c in commands)
    assert any(c.startswith("omsbridge worker") for c in commands)
    assert len(commands) >= 12


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    """A config with merchants SHOPNOW and B on the pos-spi reference server, an outbox
    holding a dead letter, a pending entry and a posted one."""
    monkeypatch.setenv("TEST_SPI_KEY", server_module.DEFAULT_API_KEY)
    app = server_module.SpiApp()
    handle = server_module.serve(app)
    config = write_config(
        tmp_path / "omsbridge.toml", handle.url, {"SHOPNOW": "key", "B": "key"}, timeout=2
    )
    monkeypatch.setenv("OMSBRIDGE_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    store = SqliteStore(tmp_path / "outbox.db")
    first, second, third = make_sales(3, "SHOPNOW")
    dead = store.enqueue("SHOPNOW", first, error=RuntimeError("refused"), dead=True)
    pending = store.enqueue("SHOPNOW", second)
    store.enqueue("B", third)
    yield {"config": config, "ids": (dead.entry_id, pending.entry_id), "store": store}
    store.close()
    handle.stop()
    app.store.close()


def _argv(command: str, ids: tuple[int, int], port: int | None = None) -> list[str]:
    words = shlex.split(command.replace("…", "omsbridge.toml"))[1:]
    mapped = {"42": str(ids[0]), "43": str(ids[1])}
    if port is not None:
        mapped["9464"] = str(port)
    return [mapped.get(word, word) for word in words]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "command", [c for c in guide_invocations() if not c.startswith("omsbridge worker")]
)
def test_guide_command_runs(command, outbox):
    argv = _argv(command, outbox["ids"])
    result = CliRunner().invoke(cli, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{command!r} raised {result.exception!r}\n{result.output}"
    )
    assert result.exit_code == 0, f"{command!r} exited {result.exit_code}:\n{result.output}"
    assert "Traceback" not in result.output


def test_export_list_defaults_show_open_entries(outbox):
    """The default (``--state open``) lists pending and dead entries, not the done ones."""
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "list", "--config", str(outbox["config"]), "--json"])
    assert result.exit_code == 0, result.output
    states = sorted(e["state"] for e in json.loads(result.stdout))
    assert states == ["dead", "pending", "pending"]
    result = runner.invoke(cli, ["export", "list", "--state", "all", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


@pytest.mark.parametrize(
    "command", [c for c in guide_invocations() if c.startswith("omsbridge worker")]
)
def test_guide_worker_command_runs_and_stops_on_sigterm(command, outbox, tmp_path):
    argv = _argv(command, outbox["ids"], port=_free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "omsbridge", *argv, "--interval", "0.2", "--event-wait", "0.2"],
        cwd=tmp_path,
        env={**os.environ, "OMSBRIDGE_CONFIG": str(outbox["config"])},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Running means posting: wait until the pending entries are done.
        deadline = time.monotonic() + 30
        while _pending(outbox["store"]):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the worker posted nothing"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert "Traceback" not in output


def _pending(store: SqliteStore) -> int:
    from datetime import UTC, datetime

    return store.stats(datetime.now(UTC)).total("pending")
