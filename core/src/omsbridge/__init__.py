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

from typing import TYPE_CHECKING, Any

import pluggy

hookimpl = pluggy.HookimplMarker("omsbridge")
"""Marker for plugin hook implementations (see :mod:`omsbridge.hookspecs`)."""

__version__ = "0.1.0"

# Where each public name lives. The package imports them on first use (PEP 562) so that a
# plugin's entry point (``from omsbridge import hookimpl``) and ``omsbridge --help`` do not pay
# for cattrs, the config loader and the model.
_LAZY: dict[str, str] = {
    "wire": "omsbridge.wire",
    "Bridge": "omsbridge.bridge",
    "Merchant": "omsbridge.bridge",
    "Config": "omsbridge.config",
    "MerchantConfig": "omsbridge.config",
    "Secret": "omsbridge.config",
    "load_config": "omsbridge.config",
    "Queued": "omsbridge.outbox",
    "BackendInfo": "omsbridge.registry",
    "BackendRegistry": "omsbridge.registry",
    "Capability": "omsbridge.spi",
    "MerchantContext": "omsbridge.spi",
    "OrderBackend": "omsbridge.spi",
    **{
        name: "omsbridge.errors"
        for name in (
            "AuthFailed", "BackendError", "ConfigError", "Conflict", "InvalidTransaction",
            "Issue", "NotFound", "OMSBridgeError", "RateLimited", "Rejected", "RetryableError",
            "TransientBackendError", "UnknownBackend", "UnknownMerchant", "Unsupported",
        )
    },
}  # fmt: skip

_OWN = [*_LAZY, "hookimpl"]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562); model classes come from :mod:`omsbridge.model`."""
    import importlib

    if name == "__all__":
        from omsbridge.model import __all__ as model_all

        value: Any = sorted({*_OWN, *model_all})
    elif name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if name == "wire" else getattr(module, name)
    else:
        import importlib.util

        if importlib.util.find_spec(f"omsbridge.{name}") is not None:
            # A submodule (``from omsbridge import hookspecs``): the import system loads it.
            raise AttributeError(name)
        model = importlib.import_module("omsbridge.model")
        if name not in model.__all__:
            raise AttributeError(f"module 'omsbridge' has no attribute {name!r}")
        value = getattr(model, name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from omsbridge import wire as wire
    from omsbridge.bridge import Bridge as Bridge
    from omsbridge.bridge import Merchant as Merchant
    from omsbridge.config import Config as Config
    from omsbridge.config import MerchantConfig as MerchantConfig
    from omsbridge.config import Secret as Secret
    from omsbridge.config import load_config as load_config
    from omsbridge.errors import (
        AuthFailed as AuthFailed,
    )
    from omsbridge.errors import (
        BackendError as BackendError,
    )
    from omsbridge.errors import (
        ConfigError as ConfigError,
    )
    from omsbridge.errors import (
        Conflict as Conflict,
    )
    from omsbridge.errors import (
        InvalidTransaction as InvalidTransaction,
    )
    from omsbridge.errors import (
        Issue as Issue,
    )
    from omsbridge.errors import (
        NotFound as NotFound,
    )
    from omsbridge.errors import (
        OMSBridgeError as OMSBridgeError,
    )
    from omsbridge.errors import (
        RateLimited as RateLimited,
    )
    from omsbridge.errors import (
        Rejected as Rejected,
    )
    from omsbridge.errors import (
        RetryableError as RetryableError,
    )
    from omsbridge.errors import (
        TransientBackendError as TransientBackendError,
    )
    from omsbridge.errors import (
        UnknownBackend as UnknownBackend,
    )
    from omsbridge.errors import (
        UnknownMerchant as UnknownMerchant,
    )
    from omsbridge.errors import (
        Unsupported as Unsupported,
    )
    from omsbridge.model import *  # noqa: F403
    from omsbridge.outbox import Queued as Queued
    from omsbridge.registry import BackendInfo as BackendInfo
    from omsbridge.registry import BackendRegistry as BackendRegistry
    from omsbridge.spi import Capability as Capability
    from omsbridge.spi import MerchantContext as MerchantContext
    from omsbridge.spi import OrderBackend as OrderBackend
