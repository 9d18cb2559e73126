"""omsbridge: connect a Point-of-Sale platform to each merchant's order-management system.

The POS platform loads one config and posts through the merchant's backend::

    from omsbridge import Bridge, wire, Transaction

    bridge = Bridge.from_config("omsbridge.toml")
    txn = wire.loads(json_text, Transaction)          # InvalidTransaction names each bad field
    result = bridge.for_merchant("SHOPNOW").post(txn)  # idempotent on txn.transaction_id

A backend is an :class:`OrderBackend` subclass registered by a plugin::

    from omsbridge import hookimpl

    @hookimpl
    def omsbridge_register_backends(register):
        register(MyBackend)
"""

import pluggy

hookimpl = pluggy.HookimplMarker("omsbridge")
"""Marker for plugin hook implementations (see :mod:`omsbridge.hookspecs`)."""

from omsbridge import wire  # noqa: E402
from omsbridge.bridge import Bridge, Merchant  # noqa: E402
from omsbridge.config import Config, MerchantConfig, Secret, load_config  # noqa: E402
from omsbridge.errors import (  # noqa: E402
    AuthFailed,
    BackendError,
    ConfigError,
    Conflict,
    InvalidTransaction,
    Issue,
    NotFound,
    OMSBridgeError,
    RateLimited,
    Rejected,
    RetryableError,
    TransientBackendError,
    UnknownBackend,
    UnknownMerchant,
    Unsupported,
)
from omsbridge.model import *  # noqa: E402,F403
from omsbridge.model import __all__ as _model_all  # noqa: E402
from omsbridge.outbox import Queued  # noqa: E402
from omsbridge.registry import BackendInfo, BackendRegistry  # noqa: E402
from omsbridge.spi import Capability, MerchantContext, OrderBackend  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AuthFailed", "BackendError", "BackendInfo", "BackendRegistry", "Bridge", "Capability",
    "Config", "ConfigError", "Conflict", "InvalidTransaction", "Issue", "Merchant",
    "MerchantConfig", "MerchantContext", "NotFound", "OMSBridgeError", "OrderBackend",
    "Queued",
    "RateLimited", "Rejected", "RetryableError", "Secret", "TransientBackendError",
    "UnknownBackend", "UnknownMerchant", "Unsupported", "hookimpl", "load_config", "wire",
    *_model_all,
]  # fmt: skip
