"""``omsbridge sandbox pos-spi``: run the reference SPI server locally."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from omsbridge_posspi.server import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SpiApp,
    serve,
)

__all__ = ["sandbox_command"]


@click.command(name="pos-spi")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8766, show_default=True, help="Port (0 picks a free one).")
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file that keeps the data across restarts (default: in memory).",
)
@click.option("--db", default=None, hidden=True, help="Former name of --state.")
@click.option("--api-key", default=DEFAULT_API_KEY, show_default=True, help="Accepted API key.")
@click.option("--client-id", default=DEFAULT_CLIENT_ID, show_default=True, help="OAuth2 client id.")
@click.option(
    "--client-secret",
    default=DEFAULT_CLIENT_SECRET,
    show_default=True,
    help="OAuth2 client secret.",
)
@click.option("--seed-store", default=None, help="Seed one BOPIS order at this store id.")
def sandbox_command(
    host: str,
    port: int,
    state: Path | None,
    db: str | None,
    api_key: str,
    client_id: str,
    client_secret: str,
    seed_store: str | None,
) -> None:
    """Run the reference POS Order SPI server (the merchant side), until Ctrl-C.

    \b
    Example:
      omsbridge sandbox pos-spi --port 8766 --state spi.db --seed-store STORE-1
    """
    if state is not None and db is not None:
        raise click.UsageError("give --state only (--db is its former name)")
    db = str(state) if state is not None else db or ":memory:"
    app = SpiApp(db, api_keys=(api_key,), oauth_clients={client_id: client_secret})
    if seed_store:
        fulfillment_order = app.seed_online_order(seed_store).fulfillment_order
        assert fulfillment_order is not None  # seeded with the default kind, PICKUP
        click.echo(
            f"seeded order {fulfillment_order.order_id} with fulfillment order "
            f"{fulfillment_order.fulfillment_order_id} at {seed_store}"
        )
    server = serve(app, host, port)
    click.echo(f"POS Order SPI reference server on {server.url}  (data: {db})")
    click.echo(f"  API key:  X-API-Key: {api_key}")
    click.echo(
        f"  OAuth2:   POST {server.url}/oauth/token  client_id={client_id} "
        f"client_secret={client_secret}"
    )
    click.echo(f"  admin:    {server.url}/__admin__/  (reset, seed-online-order, faults)")
    click.echo("Config for a merchant (export SPI_KEY first):")
    click.echo(
        f'  [merchants.DEMO.pos-spi]\n  base_url = "{server.url}"\n'
        '  auth = { type = "api_key", api_key = { env = "SPI_KEY" } }'
    )
    click.echo("Press Ctrl-C to stop.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        server.stop()
        app.store.close()
