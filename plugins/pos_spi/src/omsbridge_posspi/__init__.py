"""omsbridge backend for the POS's native Order SPI, plus a reference SPI server.

The merchant (or its OMS vendor) hosts the SPI; the POS calls it through :class:`PosSpiBackend`.
The contract is ``docs/pos-spi-openapi.yaml``; :mod:`omsbridge_posspi.server` implements it with
SQLite for demos, tests and as a starting point for merchants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omsbridge_posspi.backend import PosSpiBackend
    from omsbridge_posspi.config import AuthMethod, PosSpiConfig, SpiAuth

__all__ = ["AuthMethod", "PosSpiBackend", "PosSpiConfig", "SpiAuth"]


_WHERE = {
    "PosSpiBackend": "omsbridge_posspi.backend",
    "AuthMethod": "omsbridge_posspi.config",
    "PosSpiConfig": "omsbridge_posspi.config",
    "SpiAuth": "omsbridge_posspi.config",
}


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): the plugin entry point imports this package, and ``omsbridge --help``
    # must not pay for httpx.
    if name not in _WHERE:
        raise AttributeError(f"module 'omsbridge_posspi' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
