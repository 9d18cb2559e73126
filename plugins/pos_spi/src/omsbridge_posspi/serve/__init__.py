"""``omsbridge serve``: the POS Order SPI (docs/pos-spi-openapi.yaml) as a service in front of
every merchant's backend, through the bridge (idempotency, outbox, error taxonomy).

``config.py`` reads ``[serve]``, ``auth.py`` finds the caller, ``app.py`` routes and answers,
``errors.py`` maps the core errors to the contract's answers, ``admin.py`` is the outbox admin,
``ops.py`` request ids, logs and metrics, ``running.py`` builds the app and runs gunicorn,
``cli.py`` the command. See docs/serve.md.
"""

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
