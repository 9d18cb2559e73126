"""The omsbridge plugin of this distribution (entry point ``pos-spi`` in the ``omsbridge`` group)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omsbridge import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def omsbridge_register_backends(register: Callable[..., None]) -> None:
    """Offer the ``pos-spi`` backend (imported when a merchant uses it)."""
    register("pos-spi", "omsbridge_posspi.backend:PosSpiBackend")


@hookimpl
def omsbridge_register_sandboxes(register: Callable[[click.Command], None]) -> None:
    """Offer ``omsbridge sandbox pos-spi``: the reference SPI server on a local port."""
    from omsbridge_posspi.cli import sandbox_command

    register(sandbox_command)


@hookimpl
def omsbridge_register_commands(cli: click.Group) -> None:
    """Add ``omsbridge serve`` (the POS Order SPI as a service in front of every merchant) and
    ``omsbridge webhooks`` (list, show, replay, enable the outgoing webhooks)."""
    from omsbridge_posspi.serve.cli import serve_command
    from omsbridge_posspi.webhooks_cli import webhooks

    cli.add_command(serve_command)
    cli.add_command(webhooks)


@hookimpl(optionalhook=True)
def omsbridge_contract_harnesses(register: Callable[[Any], None]) -> None:
    """Give the shared contract suite its harness for pos-spi (only when omsbridge-contract is installed)."""
    from omsbridge_posspi.contract_harness import PosSpiHarness

    register(PosSpiHarness)


@hookimpl
def omsbridge_register_local_servers(register: Callable[[str, Callable[[], Any]], None]) -> None:
    """Offer a fresh reference SPI server on a free loopback port, for ``omsbridge demo``, with
    its OMS side (web orders and routing through the server's admin API)."""
    from omsbridge.local import LocalServer
    from omsbridge_posspi.server import DEFAULT_API_KEY, SpiApp, serve

    def start() -> LocalServer:
        import httpx

        from omsbridge_posspi.oms_side import PosSpiOmsSide

        handle = serve(SpiApp())
        http = httpx.Client(base_url=handle.url, timeout=10.0)

        def stop() -> None:
            http.close()
            handle.stop()

        return LocalServer(
            backend="pos-spi",
            url=handle.url,
            settings={
                "base_url": handle.url,
                "auth": {"type": "api_key", "api_key": {"env": "OMSBRIDGE_DEMO_SPI_KEY"}},
            },
            environment={"OMSBRIDGE_DEMO_SPI_KEY": DEFAULT_API_KEY},
            stop=stop,
            description="POS Order SPI reference server (in memory)",
            oms_side=PosSpiOmsSide(http),
        )

    register("pos-spi", start)


@hookimpl
def omsbridge_register_worker_tasks(register: Callable[[str, Callable[..., None]], None]) -> None:
    """Have ``omsbridge worker`` send the outgoing webhooks kept in the store."""
    from omsbridge_posspi.serve.webhooks import run_in_worker

    register("webhooks", run_in_worker)
