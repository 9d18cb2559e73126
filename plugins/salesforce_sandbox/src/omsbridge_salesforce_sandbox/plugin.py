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
    """Offer a fresh demo-seeded Salesforce OMS sandbox (org profile ``som``) on a free loopback
    port (``omsbridge demo``), with the merchant settings the sandbox says suit that org."""
    from omsbridge.local import LocalServer
    from omsbridge_salesforce_sandbox import serve

    def start() -> LocalServer:
        server = serve(seed="demo")
        info = server.sandbox.info(server.url)
        return LocalServer(
            backend="salesforce",
            url=server.url,
            settings=info["merchant_settings"],
            environment=info["environment"],
            stop=server.stop,
            description=f"Salesforce OMS sandbox (demo seed, org profile {info['org_profile']})",
        )

    register("salesforce", start)
