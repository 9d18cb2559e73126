"""The backend registry: backend name -> backend class, filled by ``omsbridge_register_backends``.

Calls for a merchant go to the one backend its config names, looked up here by name; hook order
never decides which backend answers.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import attrs
import pluggy

from omsbridge.errors import OMSBridgeError, UnknownBackend
from omsbridge.plugins import call_registration, get_plugin_manager, plugin_distribution
from omsbridge.spi import OrderBackend

__all__ = ["BackendInfo", "BackendRegistry"]


@attrs.frozen
class BackendInfo:
    """A registered backend and where it came from."""

    name: str
    backend_class: type[OrderBackend]
    plugin: str | None = None
    distribution: str | None = None
    version: str | None = None


class BackendRegistry:
    """Backends by name. Build one from a plugin manager with :meth:`from_plugins`."""

    def __init__(self) -> None:
        self._backends: dict[str, BackendInfo] = {}
        # name -> ("module:Class", plugin, distribution, version), imported on first use.
        self._lazy: dict[str, tuple[str, str | None, str | None, str | None]] = {}

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager | None = None) -> BackendRegistry:
        """Ask every plugin to register its backends."""
        pm = pm or get_plugin_manager()
        registry = cls()

        def per_plugin(plugin_name: str) -> dict[str, Any]:
            dist = plugin_distribution(plugin_name) or (None, None)

            def register(backend_class: type[OrderBackend] | str, where: str | None = None) -> None:
                if isinstance(backend_class, str):
                    registry.register_lazy(
                        backend_class,
                        str(where),
                        plugin=plugin_name,
                        distribution=dist[0],
                        version=dist[1],
                    )
                    return
                registry.register(
                    backend_class, plugin=plugin_name, distribution=dist[0], version=dist[1]
                )

            return {"register": register}

        call_registration(pm, "omsbridge_register_backends", per_plugin=per_plugin)
        return registry

    def register(
        self,
        backend_class: type[OrderBackend],
        *,
        plugin: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        """Add a backend class; refuses a malformed class or a name taken by another backend."""
        name = getattr(backend_class, "name", None)
        where = f" (plugin {plugin!r})" if plugin else ""
        if not (isinstance(backend_class, type) and issubclass(backend_class, OrderBackend)):
            raise OMSBridgeError(f"{backend_class!r}{where} is not an OrderBackend subclass")
        if not isinstance(name, str) or not name:
            raise OMSBridgeError(f"backend {backend_class.__qualname__}{where} has no name")
        config_class = getattr(backend_class, "config_class", None)
        if not (isinstance(config_class, type) and attrs.has(config_class)):
            raise OMSBridgeError(f"backend {name!r}{where}: config_class must be an attrs class")
        existing = self._backends.get(name)
        if existing is not None and existing.backend_class is not backend_class:
            raise OMSBridgeError(
                f"backend name {name!r} is registered twice: by {existing.plugin!r} "
                f"and by {plugin!r}"
            )
        self._backends[name] = BackendInfo(name, backend_class, plugin, distribution, version)

    def register_lazy(
        self,
        name: str,
        where: str,
        *,
        plugin: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        """Add a backend by name and ``"module:Class"``, imported only when a merchant (or a
        listing) needs it, so that a process serving one backend never imports the others."""
        at = f" (plugin {plugin!r})" if plugin else ""
        if not name or not isinstance(where, str) or where.count(":") != 1:
            raise OMSBridgeError(
                f"backend {name!r}{at}: register it as register(name, 'module:Class'), "
                f"got {where!r}"
            )
        if name in self._backends or (name in self._lazy and self._lazy[name][0] != where):
            raise OMSBridgeError(f"backend name {name!r} is registered twice (plugin {plugin!r})")
        self._lazy[name] = (where, plugin, distribution, version)

    def _load(self, name: str) -> None:
        where, plugin, distribution, version = self._lazy.pop(name)
        module_name, _, attribute = where.partition(":")
        at = f" (plugin {plugin!r})" if plugin else ""
        try:
            backend_class = getattr(importlib.import_module(module_name), attribute)
        except Exception as exc:
            raise OMSBridgeError(
                f"backend {name!r}{at}: could not import {where}: {type(exc).__name__}: {exc}"
            ) from exc
        if getattr(backend_class, "name", None) != name:
            raise OMSBridgeError(
                f"backend {name!r}{at}: {where} names itself "
                f"{getattr(backend_class, 'name', None)!r}"
            )
        self.register(backend_class, plugin=plugin, distribution=distribution, version=version)

    def get(self, name: str) -> type[OrderBackend]:
        """The backend class for ``name``; :class:`UnknownBackend` lists the installed ones."""
        return self.info(name).backend_class

    def info(self, name: str) -> BackendInfo:
        """Registration details for ``name`` (imports a lazily registered backend)."""
        if name in self._lazy:
            self._load(name)
        try:
            return self._backends[name]
        except KeyError:
            raise UnknownBackend(name, self.names()) from None

    def names(self) -> list[str]:
        """Registered backend names, sorted (nothing is imported)."""
        return sorted({*self._backends, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._backends or name in self._lazy

    def __iter__(self) -> Iterator[BackendInfo]:
        return iter(self.info(n) for n in self.names())
