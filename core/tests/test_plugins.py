"""Plugin discovery, failure isolation, observers, and the backend registry."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest
from fakes import MemoryBackend, MemoryPlugin, OtherBackend

from omsbridge import BackendRegistry, OrderBackend, hookimpl
from omsbridge import plugins as plugins_mod
from omsbridge.errors import OMSBridgeError, UnknownBackend
from omsbridge.plugins import (
    PluginLoadError,
    PluginLoadWarning,
    call_observers,
    load_entry_point_plugins,
    new_plugin_manager,
)


class _Dist:
    name = "omsbridge-broken"
    version = "9.9.9"


def _entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, "omsbridge")._for(_Dist())  # type: ignore[attr-defined]


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace installed entry points with a good and a broken plugin module."""
    good = types.ModuleType("omsbridge_test_good")

    @hookimpl
    def omsbridge_register_backends(register):
        register(MemoryBackend)

    good.omsbridge_register_backends = omsbridge_register_backends  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "omsbridge_test_good", good)
    points = [
        _entry_point("good", "omsbridge_test_good"),
        _entry_point("broken", "omsbridge_test_missing_module"),
    ]
    monkeypatch.setattr(plugins_mod, "entry_points", lambda group: points)
    monkeypatch.delenv("OMSBRIDGE_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("OMSBRIDGE_DISABLE_PLUGINS", raising=False)
    return points


def test_broken_plugin_warns_naming_its_distribution(fake_entry_points):
    pm = new_plugin_manager()
    with pytest.warns(
        PluginLoadWarning, match=r"'broken'.*omsbridge-broken 9\.9\.9.*ModuleNotFoundError"
    ):
        loaded = load_entry_point_plugins(pm)
    assert loaded == ["good"]
    registry = BackendRegistry.from_plugins(pm)
    assert registry.names() == ["memory"]
    assert registry.info("memory").distribution == "omsbridge-broken"  # the fake dist of "good"


def test_strict_mode_makes_it_an_error(fake_entry_points, monkeypatch):
    monkeypatch.setenv("OMSBRIDGE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"omsbridge-broken 9\.9\.9"):
        load_entry_point_plugins(new_plugin_manager())


def test_disabled_plugins_are_skipped(fake_entry_points, monkeypatch):
    monkeypatch.setenv("OMSBRIDGE_DISABLE_PLUGINS", "broken, good")
    assert load_entry_point_plugins(new_plugin_manager()) == []


def test_plugin_failing_in_registration_warns(pm):
    class Broken:
        @hookimpl
        def omsbridge_register_backends(self, register):
            raise RuntimeError("boom")

    pm.register(Broken(), name="broken-registrar")
    with pytest.warns(
        PluginLoadWarning, match="'broken-registrar' failed in omsbridge_register_backends"
    ):
        registry = BackendRegistry.from_plugins(pm)
    assert registry.names() == ["memory", "other"]


def test_unknown_hook_warns_unless_optional(monkeypatch):
    module = types.ModuleType("omsbridge_test_typo")

    @hookimpl
    def omsbridge_regster_backends(register):  # the typo is the point
        pass

    @hookimpl(optionalhook=True)
    def omsbridge_contract_harnesses(register):
        pass

    module.omsbridge_regster_backends = omsbridge_regster_backends  # type: ignore[attr-defined]
    module.omsbridge_contract_harnesses = omsbridge_contract_harnesses  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "omsbridge_test_typo", module)
    monkeypatch.setattr(
        plugins_mod, "entry_points", lambda group: [_entry_point("typo", "omsbridge_test_typo")]
    )
    with pytest.warns(PluginLoadWarning) as record:
        load_entry_point_plugins(new_plugin_manager())
    messages = [str(w.message) for w in record]
    assert messages == ["plugin 'typo' implements unknown hook 'omsbridge_regster_backends'"]


def test_add_hookspecs_hook_lets_a_plugin_bring_its_own_specs(monkeypatch):
    specs = types.ModuleType("omsbridge_test_specs")
    from omsbridge.hookspecs import hookspec

    @hookspec
    def omsbridge_test_extra(value):
        """An extra hook."""

    specs.omsbridge_test_extra = omsbridge_test_extra  # type: ignore[attr-defined]
    plugin = types.ModuleType("omsbridge_test_ext")

    def omsbridge_add_hookspecs(plugin_manager):
        plugin_manager.add_hookspecs(specs)

    plugin.omsbridge_add_hookspecs = omsbridge_add_hookspecs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "omsbridge_test_ext", plugin)
    monkeypatch.setattr(
        plugins_mod, "entry_points", lambda group: [_entry_point("ext", "omsbridge_test_ext")]
    )
    pm = new_plugin_manager()
    load_entry_point_plugins(pm)
    assert pm.hook.omsbridge_test_extra.has_spec()


def test_observers_are_isolated(pm, caplog):
    seen: list[str] = []

    class Failing:
        @hookimpl
        def omsbridge_order_posted(self, merchant_id):
            raise RuntimeError("observer down")

    class Recording:
        @hookimpl
        def omsbridge_order_posted(self, merchant_id, result):
            seen.append(f"{merchant_id}:{result}")

    pm.register(Recording(), name="recording")
    pm.register(Failing(), name="failing")  # registered last, so pluggy would call it first
    failures = call_observers(
        pm, "omsbridge_order_posted", merchant_id="M1", transaction=None, result="R"
    )
    assert seen == ["M1:R"]
    assert [str(f) for f in failures] == ["observer down"]
    assert "observer omsbridge_order_posted of plugin 'failing' failed" in caplog.text


def test_registry_lookup_by_name_not_hook_order(registry):
    assert registry.get("memory") is MemoryBackend
    assert registry.get("other") is OtherBackend
    with pytest.raises(
        UnknownBackend, match="unknown backend 'sap'; installed backends: memory, other"
    ):
        registry.get("sap")


def test_registry_refuses_a_name_taken_twice(registry):
    class Impostor(OrderBackend):
        name = "memory"
        config_class = MemoryBackend.config_class

    with pytest.raises(OMSBridgeError, match="registered twice"):
        registry.register(Impostor, plugin="impostor")


def test_registry_refuses_malformed_backends():
    registry = BackendRegistry()
    with pytest.raises(OMSBridgeError, match="not an OrderBackend subclass"):
        registry.register(object)  # type: ignore[arg-type]

    class Nameless(OrderBackend):
        config_class = MemoryBackend.config_class

    with pytest.raises(OMSBridgeError, match="has no name"):
        registry.register(Nameless)

    class NoConfig(OrderBackend):
        name = "noconfig"
        config_class = dict  # type: ignore[assignment]

    with pytest.raises(OMSBridgeError, match="config_class must be an attrs class"):
        registry.register(NoConfig)


def test_memory_plugin_object_registers(pm):
    assert pm.get_plugin("memory-plugin").__class__ is MemoryPlugin
