"""Local emulators that plugins offer (``omsbridge_register_local_servers``), used by the demo."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pluggy

from omsbridge.plugins import call_registration, get_plugin_manager

__all__ = ["LocalServer", "local_servers"]


@attrs.define
class LocalServer:
    """A running local emulator of an OMS and how to point a merchant's backend at it.

    ``settings`` is the ``[merchants.ID.<backend>]`` table; secrets in it are ``{ env = ... }``
    references whose values are in ``environment``.
    """

    backend: str
    url: str
    settings: Mapping[str, Any]
    stop: Callable[[], None]
    environment: Mapping[str, str] = attrs.field(factory=dict)
    description: str = ""


def local_servers(
    pm: pluggy.PluginManager | None = None,
) -> dict[str, Callable[[], LocalServer]]:
    """Backend name -> start function, for every installed plugin that offers one."""
    found: dict[str, Callable[[], LocalServer]] = {}

    def register(backend: str, start: Callable[[], LocalServer]) -> None:
        found[backend] = start

    call_registration(
        pm or get_plugin_manager(), "omsbridge_register_local_servers", register=register
    )
    return found
