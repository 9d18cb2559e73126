"""The omsbridge plugin entry point of the Salesforce distribution (entry point ``salesforce``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from omsbridge import hookimpl

if TYPE_CHECKING:
    import pluggy

    from omsbridge import OrderBackend


def omsbridge_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    """Add the plugin's own hooks (``omsbridge_salesforce_order_graph``) to omsbridge."""
    from omsbridge_salesforce import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def omsbridge_register_backends(register: Callable[[type[OrderBackend]], None]) -> None:
    """Offer the ``salesforce`` backend."""
    from omsbridge_salesforce.backend import SalesforceBackend

    register(SalesforceBackend)


@hookimpl
def omsbridge_register_sandboxes(register: Callable[[click.Command], None]) -> None:
    """Offer ``omsbridge sandbox salesforce``: the local Salesforce OMS emulator."""
    from omsbridge_salesforce.sandbox.cli import command

    register(command)


@hookimpl(optionalhook=True)
def omsbridge_contract_harnesses(register: Callable[[Any], None]) -> None:
    """Give the shared contract suite its harness for salesforce (only when omsbridge-contract is installed)."""
    from omsbridge_salesforce.contract_harness import SalesforceHarness

    register(SalesforceHarness)


@hookimpl
def omsbridge_register_local_servers(register: Callable[[str, Callable[[], Any]], None]) -> None:
    """Offer a fresh demo-seeded Salesforce OMS sandbox on a free loopback port (``omsbridge demo``)."""
    from omsbridge.local import LocalServer
    from omsbridge_salesforce.sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, serve

    def start() -> LocalServer:
        server = serve(seed="demo")
        return LocalServer(
            backend="salesforce",
            url=server.url,
            settings={
                "url_base": server.url,
                "allow_insecure_sandbox_url": True,
                "username": USERNAME,
                "password": {"env": "OMSBRIDGE_DEMO_SF_PASSWORD"},
                "client_id": CLIENT_ID,
                "client_secret": {"env": "OMSBRIDGE_DEMO_SF_CLIENT_SECRET"},
                "api_version": "v62.0",
            },
            environment={
                "OMSBRIDGE_DEMO_SF_PASSWORD": PASSWORD,
                "OMSBRIDGE_DEMO_SF_CLIENT_SECRET": CLIENT_SECRET,
            },
            stop=server.stop,
            description="Salesforce OMS sandbox (demo seed, in memory)",
        )

    register("salesforce", start)
