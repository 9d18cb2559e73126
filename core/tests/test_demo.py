"""The demo runs a store day through whatever local servers plugins offer."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from omsbridge import hookimpl, plugins
from omsbridge.cli import cli
from omsbridge.demo import run_demo
from omsbridge.local import LocalServer


class LocalMemory:
    """Offers a 'local server' for the in-memory backend."""

    stopped = 0

    @hookimpl
    def omsbridge_register_local_servers(self, register):
        def start() -> LocalServer:
            return LocalServer(
                backend="memory",
                url="memory://",
                settings={"endpoint": "http://127.0.0.1:1", "api_key": {"env": "DEMO_MEMORY_KEY"}},
                environment={"DEMO_MEMORY_KEY": "demo-key"},
                stop=self._stop,
            )

        register("memory", start)

    def _stop(self) -> None:
        type(self).stopped += 1


@pytest.fixture
def demo_pm(pm, monkeypatch):
    pm.register(LocalMemory())
    monkeypatch.setattr(plugins, "_default", pm)
    return pm


def test_store_day_runs_and_skips_what_the_backend_lacks(demo_pm, tmp_path):
    before = LocalMemory.stopped
    report = run_demo(workdir=tmp_path, merchants=(("M1", "memory"), ("M2", "nowhere")))
    assert report.ok
    by_status = {o.step: o.status for o in report.outcomes}
    assert by_status["card sale"] == "ok"
    assert by_status["return with receipt"] == "ok"
    assert by_status["exchange"] == "skipped"  # MemoryBackend does not declare post:exchange
    assert by_status["order detail of the card sale"] == "ok"
    assert report.notes == ["M2 skipped: no local server for backend 'nowhere' is installed"]
    assert '[merchants.M1."memory"]' in (tmp_path / "omsbridge.toml").read_text()
    assert LocalMemory.stopped == before + 1


def test_demo_command_json(demo_pm, tmp_path, monkeypatch):
    monkeypatch.setattr("omsbridge.demo.runner.DEMO_MERCHANTS", (("M1", "memory"),))
    result = CliRunner().invoke(cli, ["demo", "--json", "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    assert {s["status"] for s in payload["steps"]} == {"ok", "skipped"}


def test_demo_fails_when_nothing_runs(pm, monkeypatch, tmp_path):
    monkeypatch.setattr(plugins, "_default", pm)
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(tmp_path)])
    assert result.exit_code == 1


def test_a_failed_step_fails_the_demo_and_skips_what_needs_it(demo_pm, tmp_path, monkeypatch):
    from fakes import MemoryBackend

    from omsbridge.errors import Rejected

    original = MemoryBackend.post

    def picky(self, txn):
        if txn.transaction_id.endswith("-002"):
            raise Rejected("card declined", code="DECLINED", backend="memory")
        return original(self, txn)

    monkeypatch.setattr(MemoryBackend, "post", picky)
    report = run_demo(workdir=tmp_path, merchants=(("M1", "memory"),))
    assert not report.ok
    outcome = {o.step: o for o in report.outcomes}
    assert outcome["card sale"].status == "failed"
    assert "Rejected: card declined" in (outcome["card sale"].error or "")
    assert outcome["return with receipt"].status == "skipped"
    assert outcome["return with receipt"].error == "needs the card_sale step, which failed"
    assert outcome["cash sale (anonymous)"].status == "ok"


def test_demo_config_quotes_keys_toml_does_not_allow_bare(tmp_path):
    # A backend's settings may carry mappings keyed by org values with spaces ("Wrong Item").
    import tomllib

    from omsbridge.demo.runner import write_config
    from omsbridge.local import LocalServer

    server = LocalServer(
        backend="x",
        url="http://127.0.0.1:1",
        settings={"change_reasons": {"Wrong Item": "Wrong Item", "plain": "v"}, "n": 1},
        stop=lambda: None,
    )
    path = tmp_path / "omsbridge.toml"
    write_config(path, {"M": server})
    table = tomllib.loads(path.read_text(encoding="utf-8"))["merchants"]["M"]["x"]
    assert table == {"change_reasons": {"Wrong Item": "Wrong Item", "plain": "v"}, "n": 1}
