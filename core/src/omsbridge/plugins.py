"""Plugin discovery and hook calls: one pluggy manager, loaded from the ``omsbridge`` entry points.

A plugin that fails to import gives a :class:`PluginLoadWarning` naming its distribution and
version, and the host goes on; ``OMSBRIDGE_STRICT_PLUGINS=1`` turns that into an error (for CI
and plugin authors). ``OMSBRIDGE_DISABLE_PLUGINS=a,b`` skips entry points by name.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from omsbridge import hookspecs
from omsbridge.errors import OMSBridgeError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginLoadError",
    "PluginLoadWarning",
    "call_observers",
    "call_registration",
    "get_plugin_manager",
    "load_entry_point_plugins",
    "new_plugin_manager",
    "worker_tasks",
]

ENTRY_POINT_GROUP = "omsbridge"
log = logging.getLogger(__name__)


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; the host carries on without it."""


class PluginLoadError(OMSBridgeError):
    """A plugin could not be loaded and ``OMSBRIDGE_STRICT_PLUGINS`` is set."""


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with omsbridge's hookspecs and no plugins registered."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _strict() -> bool:
    return os.environ.get("OMSBRIDGE_STRICT_PLUGINS", "") not in ("", "0", "false")


def _describe(ep: EntryPoint) -> str:
    dist = ep.dist
    where = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
    return f"plugin {ep.name!r} ({ep.value}) from {where}"


def load_entry_point_plugins(pm: pluggy.PluginManager) -> list[str]:
    """Register every plugin of the ``omsbridge`` entry-point group, one at a time, isolating failures.

    Returns the names registered.
    """
    strict = _strict()
    disabled = {
        n.strip() for n in os.environ.get("OMSBRIDGE_DISABLE_PLUGINS", "").split(",") if n.strip()
    }
    loaded: list[str] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in disabled or pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            add_specs = getattr(plugin, "omsbridge_add_hookspecs", None)
            if add_specs is not None:
                add_specs(plugin_manager=pm)
        except Exception as exc:
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            message = f"could not load {_describe(ep)}: {type(exc).__name__}: {exc}"
            if strict:
                raise PluginLoadError(message) from exc
            warnings.warn(message, PluginLoadWarning, stacklevel=2)
            continue
        if ep.dist is not None:
            _DISTRIBUTIONS[ep.name] = (ep.dist.name, ep.dist.version)
        loaded.append(ep.name)
    warn_unknown_hooks(pm)
    return loaded


def warn_unknown_hooks(pm: pluggy.PluginManager) -> None:
    """Warn about implementations of hooks nobody specifies (a typo, or a missing plugin).

    Hooks of another plugin that may be absent (the contract suite's) are marked
    ``@hookimpl(optionalhook=True)`` and pass silently.
    """
    for name in dir(pm.hook):
        caller = getattr(pm.hook, name)
        if name.startswith("_") or not hasattr(caller, "get_hookimpls") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                message = f"plugin {impl.plugin_name!r} implements unknown hook {name!r}"
                if _strict():
                    raise PluginLoadError(message)
                warnings.warn(message, PluginLoadWarning, stacklevel=2)


_DISTRIBUTIONS: dict[str, tuple[str, str]] = {}
_lock = threading.Lock()
_default: pluggy.PluginManager | None = None


def plugin_distribution(plugin_name: str) -> tuple[str, str] | None:
    """The (distribution, version) an entry-point plugin came from, if known."""
    return _DISTRIBUTIONS.get(plugin_name)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager with all installed plugins loaded (built on first use)."""
    global _default
    with _lock:
        if _default is None:
            pm = new_plugin_manager()
            load_entry_point_plugins(pm)
            _default = pm
        return _default


def call_observers(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[BaseException]:
    """Call every implementation of an observer hook, each on its own.

    pluggy stops at the first implementation that raises; observers must not starve each other,
    so each is called separately and a failure is logged (with the plugin's name) and returned.
    """
    caller = getattr(pm.hook, hook_name)
    failures: list[BaseException] = []
    for impl in reversed(caller.get_hookimpls()):
        args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
        try:
            impl.function(**args)
        except Exception as exc:
            log.exception("observer %s of plugin %r failed", hook_name, impl.plugin_name)
            failures.append(exc)
    return failures


def call_registration(
    pm: pluggy.PluginManager,
    hook_name: str,
    *,
    per_plugin: Callable[[str], dict[str, Any]] | None = None,
    **kwargs: Any,
) -> None:
    """Call every implementation of a registration hook, each on its own.

    ``per_plugin(plugin_name)`` may supply arguments that depend on the calling plugin (a
    ``register`` callback that records where a backend came from).

    A plugin whose registration raises is reported with a :class:`PluginLoadWarning` naming it
    (an error under ``OMSBRIDGE_STRICT_PLUGINS``); the other plugins still register.
    """
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        given = {**kwargs, **(per_plugin(impl.plugin_name) if per_plugin else {})}
        args = {name: given[name] for name in impl.argnames if name in given}
        try:
            impl.function(**args)
        except Exception as exc:
            dist = plugin_distribution(impl.plugin_name)
            where = f" from {dist[0]} {dist[1]}" if dist else ""
            message = (
                f"plugin {impl.plugin_name!r}{where} failed in {hook_name}: "
                f"{type(exc).__name__}: {exc}"
            )
            if _strict():
                raise PluginLoadError(message) from exc
            warnings.warn(message, PluginLoadWarning, stacklevel=2)


def worker_tasks(pm: pluggy.PluginManager) -> list[tuple[str, Callable[..., None]]]:
    """The background tasks plugins add to the worker (``omsbridge_register_worker_tasks``)."""
    found: list[tuple[str, Callable[..., None]]] = []
    call_registration(
        pm,
        "omsbridge_register_worker_tasks",
        register=lambda name, run: found.append((name, run)),
    )
    return found
