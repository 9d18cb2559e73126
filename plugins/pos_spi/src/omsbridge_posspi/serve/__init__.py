"""``omsbridge serve``: the POS Order SPI (docs/pos-spi-openapi.yaml) as a service in front of
every merchant's backend, through the bridge (idempotency, outbox, error taxonomy).

``config.py`` reads ``[serve]``, ``auth.py`` finds the caller, ``app.py`` routes and answers,
``errors.py`` maps the core errors to the contract's answers, ``admin.py`` is the outbox admin,
``ops.py`` request ids, logs and metrics, ``running.py`` builds the app and runs gunicorn,
``cli.py`` the command, ``webhooks.py`` the outgoing webhooks (signed as the Standard Webhooks
specification describes). See docs/serve.md and docs/webhooks.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omsbridge_posspi.serve.app import ServeApp
    from omsbridge_posspi.serve.config import AdminClient, ServeClient, ServeConfig, parse_serve
    from omsbridge_posspi.serve.running import create_app, openapi_document

__all__ = [
    "AdminClient",
    "ServeApp",
    "ServeClient",
    "ServeConfig",
    "create_app",
    "openapi_document",
    "parse_serve",
]

_WHERE = {
    "ServeApp": "omsbridge_posspi.serve.app",
    "AdminClient": "omsbridge_posspi.serve.config",
    "ServeClient": "omsbridge_posspi.serve.config",
    "ServeConfig": "omsbridge_posspi.serve.config",
    "parse_serve": "omsbridge_posspi.serve.config",
    "create_app": "omsbridge_posspi.serve.running",
    "openapi_document": "omsbridge_posspi.serve.running",
}


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): `omsbridge --help` lists the serve command without importing werkzeug,
    # the bridge or the model.
    if name not in _WHERE:
        raise AttributeError(f"module 'omsbridge_posspi.serve' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
