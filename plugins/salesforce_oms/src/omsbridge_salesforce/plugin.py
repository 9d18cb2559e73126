"""The omsbridge plugin entry point of the Salesforce distribution (entry point ``salesforce``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omsbridge import hookimpl

if TYPE_CHECKING:
    import click
    import pluggy


def omsbridge_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    """Add the plugin's own hooks (``omsbridge_salesforce_order_graph``) to omsbridge."""
    from omsbridge_salesforce import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def omsbridge_register_backends(register: Callable[..., None]) -> None:
    """Offer the ``salesforce`` backend (imported when a merchant uses it)."""
    register("salesforce", "omsbridge_salesforce.backend:SalesforceBackend")


@hookimpl(optionalhook=True)
def omsbridge_contract_harnesses(register: Callable[[Any], None]) -> None:
    """Give the shared contract suite its harness for salesforce (only when omsbridge-contract is installed)."""
    from omsbridge_salesforce.contract_harness import SalesforceHarness

    register(SalesforceHarness)


@hookimpl
def omsbridge_register_commands(cli: click.Group) -> None:
    """Add ``omsbridge salesforce`` (``preflight``: is an org ready for a merchant's settings?;
    ``catalog-sync``: sync a merchant's catalog index now)."""
    from omsbridge_salesforce.cli import salesforce

    cli.add_command(salesforce)


@hookimpl
def omsbridge_register_worker_tasks(register: Callable[[str, Callable[..., None]], None]) -> None:
    """Have ``omsbridge worker`` keep the catalog index of merchants with ``catalog_sync``
    fresh (a no-op loop when no merchant opted in)."""
    from omsbridge_salesforce.catalog import run_in_worker

    register("salesforce-catalog", run_in_worker)
