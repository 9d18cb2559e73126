"""The omsbridge plugin entry point of the sandbox distribution (entry point ``salesforce-sandbox``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from omsbridge import hookimpl


@hookimpl
def omsbridge_register_sandboxes(register: Callable[[click.Command], None]) -> None:
    """Offer ``omsbridge sandbox salesforce``: the local Salesforce OMS emulator."""
    from omsbridge_salesforce_sandbox.cli import command

    register(command)


@hookimpl
def omsbridge_register_local_servers(register: Callable[[str, Callable[[], Any]], None]) -> None:
    """Offer a fresh demo-seeded Salesforce OMS sandbox on a free loopback port (``omsbridge demo``)."""
    from omsbridge.local import LocalServer
    from omsbridge_salesforce_sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, serve

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
