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
    port (``omsbridge demo``), with the merchant settings the sandbox says suit that org, its
    OMS side (web store and routing, at the API version those settings use) and its
    DailyApiRequests count."""
    from omsbridge.local import LocalServer
    from omsbridge_salesforce_sandbox import serve

    def start() -> LocalServer:
        import httpx

        from omsbridge_salesforce_sandbox.oms_side import SalesforceOmsSide

        server = serve(seed="demo")
        info = server.sandbox.info(server.url)
        settings = info["merchant_settings"]
        http = httpx.Client(base_url=server.url, timeout=30.0)
        oms = SalesforceOmsSide(http, server.sandbox.profile, api_version=settings["api_version"])

        def stop() -> None:
            http.close()
            server.stop()

        return LocalServer(
            backend="salesforce",
            url=server.url,
            settings=settings,
            environment=info["environment"],
            stop=stop,
            description=f"Salesforce OMS sandbox (demo seed, org profile {info['org_profile']})",
            oms_side=oms,
            api_calls=oms.api_calls,
        )

    register("salesforce", start)
