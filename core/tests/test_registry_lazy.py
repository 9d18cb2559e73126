"""Backends registered by name and "module:Class" are imported on first use (issue 16)."""

from __future__ import annotations

import sys

import pytest

from omsbridge.errors import OMSBridgeError
from omsbridge.registry import BackendRegistry


def test_a_lazy_backend_is_imported_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "omsbridge_posspi.backend", raising=False)
    registry = BackendRegistry()
    registry.register_lazy("pos-spi", "omsbridge_posspi.backend:PosSpiBackend", plugin="p")
    assert registry.names() == ["pos-spi"] and "pos-spi" in registry
    assert "omsbridge_posspi.backend" not in sys.modules
    backend_class = registry.get("pos-spi")
    assert backend_class.name == "pos-spi"
    assert registry.info("pos-spi").plugin == "p"


@pytest.mark.parametrize(
    ("name", "where", "expected"),
    [
        ("pos-spi", "omsbridge_posspi.backend", "register it as register(name, 'module:Class')"),
        ("pos-spi", "omsbridge_nowhere:Backend", "could not import omsbridge_nowhere:Backend"),
        ("other", "omsbridge_posspi.backend:PosSpiBackend", "names itself 'pos-spi'"),
    ],
)
def test_a_bad_lazy_registration_names_the_problem(name: str, where: str, expected: str) -> None:
    registry = BackendRegistry()
    with pytest.raises(OMSBridgeError) as info:
        registry.register_lazy(name, where, plugin="p")
        registry.get(name)
    assert expected in str(info.value)
