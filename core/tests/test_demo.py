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
    report = run_demo(workdir=tmp_path, backends=("memory", "nowhere"))
    assert report.ok
    by_status = {o.step: o.status for o in report.outcomes}
    assert by_status["card sale"] == "ok"
    assert by_status["return with receipt"] == "ok"
    assert by_status["exchange"] == "skipped"  # MemoryBackend does not declare post:exchange
    assert by_status["order detail of the card sale"] == "ok"
    assert "DEMO_NOWHERE skipped: no local server for backend 'nowhere' is installed" in (
        report.notes
    )
    assert '[merchants.DEMO_MEMORY."memory"]' in (tmp_path / "omsbridge.toml").read_text()
    assert LocalMemory.stopped == before + 1


def test_demo_command_json(demo_pm, tmp_path, monkeypatch):
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
    report = run_demo(workdir=tmp_path, backends=("memory",))
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


def test_demo_merchants_come_from_the_hook_and_no_temporary_directory_stays(
    demo_pm, tmp_path, monkeypatch
):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    report = run_demo()
    assert {o.merchant_id for o in report.outcomes} == {"DEMO_MEMORY"}
    assert not report.kept
    assert list(tmp_path.iterdir()) == [], "the demo's temporary directory must be removed"


def test_demo_keep_keeps_the_directory(demo_pm, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = CliRunner().invoke(cli, ["demo", "--keep"])
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("omsbridge-demo-")]
    assert len(kept) == 1 and (kept[0] / "omsbridge.toml").exists(), result.output
    assert f"Config kept: {kept[0] / 'omsbridge.toml'}" in result.output


def test_demo_output_has_no_colour_codes_when_piped_and_no_repeated_summary(demo_pm, tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output
    assert result.output.count("digital wallet sale") == 1, "each step is reported once"
    assert result.output.count("steps ok") == 1


class _CountingOms:
    """An OMS side that records what it was asked (the memory backend has no feed)."""

    def __init__(self):
        self.calls = []

    def place_web_order(self, order):
        self.calls.append(("web", order.ref))
        return "WEB-1"

    def route_to_store(self, store_id, kind, *, ref, customer):
        self.calls.append(("route", str(kind)))
        return "FO-1"


def test_api_calls_are_measured_per_step_less_the_meters_own_reads(pm, monkeypatch, tmp_path):
    # A server whose every read of the count is itself counted, like Salesforce's /limits.
    counter = {"n": 100}

    def read():
        counter["n"] += 1
        return counter["n"]

    class Metered:
        @hookimpl
        def omsbridge_register_local_servers(self, register):
            register("memory", lambda: LocalServer(
                backend="memory", url="memory://", stop=lambda: None, api_calls=read,
                settings={"endpoint": "http://127.0.0.1:1", "api_key": {"env": "DEMO_MEMORY_KEY"}},
                environment={"DEMO_MEMORY_KEY": "demo-key"}, oms_side=_CountingOms(),
            ))  # fmt: skip

    pm.register(Metered())
    monkeypatch.setattr(plugins, "_default", pm)
    report = run_demo(workdir=tmp_path)
    played = [o for o in report.outcomes if o.status == "ok"]
    assert played and all(o.api_calls == 0 for o in played), [(o.step, o.api_calls) for o in played]
    omni = {o.step: o for o in report.outcomes}
    # The memory backend has no event feed nor fulfillment: those steps are skipped, named.
    assert omni["BOPIS order arrives as an event, imported"].status == "skipped"
    assert omni["BORIS: web order looked up and returned in store"].status in {"ok", "failed"}
