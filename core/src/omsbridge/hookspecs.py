"""Every hook omsbridge defines, in one place.

Plugins implement them with :data:`omsbridge.hookimpl` in a module named by an entry point in
the ``omsbridge`` group::

    # pyproject.toml of the plugin
    [project.entry-points.omsbridge]
    mybackend = "omsbridge_mybackend.plugin"

    # omsbridge_mybackend/plugin.py
    from omsbridge import hookimpl

    @hookimpl
    def omsbridge_register_backends(register):
        register(MyBackend)

Two kinds of hook live here:

* **registration hooks** (``omsbridge_register_*``) hand the plugin a ``register`` callback.
  What gets registered is looked up by *name* later: a merchant's calls go to the one backend
  its config names, never through hook order or ``firstresult``.
* **observer hooks** (``omsbridge_order_posted`` ...) tell every interested plugin that something
  happened. Each implementation is called on its own: one that raises is logged and the others
  still run. Their return values are ignored.

Hooks are always called with keyword arguments, so an implementation may accept any subset of
the arguments (pluggy's opt-in arguments). Specs only ever gain arguments.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from omsbridge.errors import BackendError
    from omsbridge.local import LocalServer
    from omsbridge.model import FulfillmentOrder, FulfillmentUpdate, PostResult, Transaction
    from omsbridge.worker import Worker

PROJECT = "omsbridge"

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def omsbridge_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    """Add a plugin's own hookspecs (e.g. the Salesforce plugin's graph-editing hook).

    Called on the plugin itself right after it is registered, before any other hook, like
    pytest's ``pytest_addhooks``: ``plugin_manager.add_hookspecs(my_hookspecs_module)``.

    :param plugin_manager: omsbridge's :class:`pluggy.PluginManager`.

    .. versionadded:: 0.1
    """


# -- registration -------------------------------------------------------------------------------


@hookspec
def omsbridge_register_backends(register: Callable[..., None]) -> None:
    """Register the order-management backends this plugin provides.

    Call ``register(BackendClass)`` once per backend. The class is a subclass of
    :class:`omsbridge.OrderBackend` and declares ``name`` (what a merchant's ``backend = "..."``
    names), ``config_class`` (the attrs class of its settings) and ``capabilities``.
    ``register("name", "package.module:BackendClass")`` registers it without importing it: the
    module is imported when a merchant uses the backend, so a process (``omsbridge post``)
    imports only the backends its merchants use.

    :param register: callback taking one backend class, or a name and ``"module:Class"``.

    .. versionadded:: 0.1
    """


@hookspec
def omsbridge_register_commands(cli: click.Group) -> None:
    """Add commands to the ``omsbridge`` command-line tool.

    :param cli: the root :class:`click.Group`; call ``cli.command()`` or ``cli.add_command()``.

    .. versionadded:: 0.1
    """


@hookspec
def omsbridge_register_sandboxes(register: Callable[[click.Command], None]) -> None:
    """Register local emulators started by ``omsbridge sandbox NAME``.

    Call ``register(command)`` with a :class:`click.Command` whose name is the sandbox's name
    (by convention the backend name it emulates, e.g. ``salesforce`` or ``pos-spi``).

    :param register: callback taking one click command.

    .. versionadded:: 0.1
    """


@hookspec
def omsbridge_register_local_servers(
    register: Callable[[str, Callable[[], LocalServer]], None],
) -> None:
    """Offer a local emulator that a backend can be pointed at, for ``omsbridge demo``.

    Call ``register(backend_name, start)`` where ``start()`` starts the emulator on a free
    loopback port and returns an :class:`omsbridge.local.LocalServer` (its URL, the merchant
    settings table that points the backend at it, and a ``stop`` callable). The demo plays one
    merchant per registered backend. Give the server an ``oms_side``
    (:class:`omsbridge.local.OmsSide`: ``place_web_order`` and ``route_to_store``) and the demo
    also plays the omnichannel flows (BOPIS, BOFIS, ship to store, BORIS); give it
    ``api_calls`` and each step shows the API calls it spent.

    :param register: callback taking the backend name and a zero-argument start function.

    .. versionadded:: 0.1
    """


@hookspec
def omsbridge_register_worker_tasks(
    register: Callable[[str, Callable[[Worker, threading.Event], None]], None],
) -> None:
    """Add background work to ``omsbridge worker`` (e.g. sending the outgoing webhooks).

    Call ``register(name, run)``; the worker calls ``run(worker, stop)`` on a thread of its own
    (named ``name``) once it starts. ``run`` loops until ``stop`` is set and must not return
    before (a task that ended counts as a failed worker in ``/healthz``); it reaches the
    bridge, the store and the metrics registry through ``worker``.

    :param register: callback taking the task's name and its run function.

    .. versionadded:: 0.1
    """


# -- observers ----------------------------------------------------------------------------------


@hookspec
def omsbridge_order_posted(merchant_id: str, transaction: Transaction, result: PostResult) -> None:
    """Called after a transaction was posted to the merchant's backend (or found there already).

    ``result.created`` is False when an idempotent re-post found the order posted before.

    :param merchant_id: the merchant the transaction belongs to.
    :param transaction: the transaction as posted.
    :param result: the backend's answer (order id, order number, created flag).

    .. versionadded:: 0.1
    """


@hookspec
def omsbridge_post_failed(merchant_id: str, transaction: Transaction, error: BackendError) -> None:
    """Called when posting a transaction failed; ``error.retryable`` says whether it will be retried.

    :param merchant_id: the merchant the transaction belongs to.
    :param transaction: the transaction that failed.
    :param error: the mapped error from the backend.

    .. versionadded:: 0.1
    """


@hookspec
def omsbridge_fulfillment_order_received(
    merchant_id: str, fulfillment_order: FulfillmentOrder
) -> None:
    """Deliver a fulfillment order imported from the OMS (BOPIS, BOFIS, ship to store) to the POS.

    The POS platform's own plugin implements this to create the order in the store. Each
    implementation is isolated: one that raises does not keep the others from receiving it.

    :param merchant_id: the merchant whose OMS produced the fulfillment order.
    :param fulfillment_order: the imported order, in the POS's model.

    .. versionadded:: 0.1
    """


@hookspec
def omsbridge_fulfillment_updated(merchant_id: str, update: FulfillmentUpdate) -> None:
    """Called after a fulfillment status update (pick, pack, ready, picked up...) reached the OMS.

    :param merchant_id: the merchant the fulfillment order belongs to.
    :param update: the update as sent.

    .. versionadded:: 0.1
    """


# Hooks whose implementations are called one by one with failures isolated.
OBSERVER_HOOKS: frozenset[str] = frozenset(
    {
        "omsbridge_order_posted",
        "omsbridge_post_failed",
        "omsbridge_fulfillment_order_received",
        "omsbridge_fulfillment_updated",
    }
)
