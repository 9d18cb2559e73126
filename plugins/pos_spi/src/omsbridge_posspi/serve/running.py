"""Building and running ``omsbridge serve``: the app from a config file, under gunicorn.

:func:`create_app` is the one place the app is assembled (bridge, ``[serve]`` section, the
OpenAPI document); features that hang off the app (outgoing webhooks) are wired in there.

The production server is gunicorn (``gthread`` workers): a pre-fork server with a configurable
number of worker processes, each answering ``threads`` requests at once (a fulfillment-events
long poll holds one thread, not a process), and a graceful shutdown: on SIGTERM it stops
accepting, lets in-flight requests finish for up to ``graceful_timeout`` seconds, then exits.
Each worker builds its own bridge after the fork (no SQLite connection or HTTP pool crosses a
fork).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

from omsbridge.bridge import Bridge
from omsbridge_posspi.serve.app import ServeApp
from omsbridge_posspi.serve.config import ServeConfig, load_serve_section, parse_serve

__all__ = ["create_app", "load_settings", "openapi_document", "run"]

_DOC_NAME = "pos-spi-openapi.yaml"


def openapi_document() -> bytes:
    """The contract document, byte for byte: the wheel's copy, or ``docs/`` of a checkout."""
    packaged = resources.files("omsbridge_posspi").joinpath(_DOC_NAME)
    if packaged.is_file():
        return packaged.read_bytes()
    return (Path(__file__).resolve().parents[5] / "docs" / _DOC_NAME).read_bytes()


def load_settings(config_file: Path, bridge: Bridge) -> ServeConfig:
    """The checked ``[serve]`` section of ``config_file`` (ConfigError lists every problem)."""
    table = load_serve_section(config_file)
    return parse_serve(table, bridge.config, config_file.resolve().parent)


def create_app(config_file: Path, *, overrides: dict[str, Any] | None = None) -> ServeApp:
    """The app for a config file: its merchants' bridge (with the outbox) and ``[serve]``."""
    bridge = Bridge.from_config(config_file)
    try:
        settings = load_settings(config_file, bridge)
        app = ServeApp(bridge, settings, openapi=openapi_document())
    except BaseException:
        bridge.close()
        raise
    return app


def run(config_file: Path, settings: ServeConfig) -> None:
    """Serve under gunicorn until SIGTERM/SIGINT (graceful: in-flight requests finish)."""
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
        def load_config(self) -> None:
            options = {
                "bind": f"{settings.host}:{settings.port}",
                "workers": settings.workers,
                "worker_class": "gthread",
                "threads": settings.threads,
                "graceful_timeout": math.ceil(settings.graceful_timeout),
                # A worker silent this long is restarted: longer than the longest long poll.
                "timeout": 120,
                "accesslog": None,  # serve logs every request itself, with its request id
                "proc_name": "omsbridge-serve",
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> ServeApp:
            return create_app(config_file)

    _Server().run()
