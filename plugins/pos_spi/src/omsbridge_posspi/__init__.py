"""omsbridge backend for the POS's native Order SPI, plus a reference SPI server.

The merchant (or its OMS vendor) hosts the SPI; the POS calls it through :class:`PosSpiBackend`.
The contract is ``docs/pos-spi-openapi.yaml``; :mod:`omsbridge_posspi.server` implements it with
SQLite for demos, tests and as a starting point for merchants.
"""

from omsbridge_posspi.backend import PosSpiBackend
from omsbridge_posspi.config import AuthMethod, PosSpiConfig, SpiAuth

__all__ = ["AuthMethod", "PosSpiBackend", "PosSpiConfig", "SpiAuth"]
