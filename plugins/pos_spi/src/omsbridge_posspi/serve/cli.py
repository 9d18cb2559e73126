"""``omsbridge serve --config FILE [--host H] [--port P]``: the POS Order SPI as a service."""

from __future__ import annotations

import logging
from pathlib import Path

import attrs
import click

__all__ = ["serve_command"]


@click.command(name="serve")
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The omsbridge config file (merchants, [store], [serve]).",
)
@click.option("--host", default=None, help="Interface to listen on (overrides serve.host).")
@click.option("--port", type=int, default=None, help="Port (overrides serve.port).")
@click.option(
    "--workers", type=int, default=None, help="Worker processes (overrides serve.workers)."
)
@click.option("--log-json", is_flag=True, help="One JSON object per log line.")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    default="INFO",
    show_default=True,
)
def serve_command(
    config_file: Path,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_json: bool,
    log_level: str,
) -> None:
    """Serve the POS Order SPI for every merchant of the config, until SIGTERM or Ctrl-C.

    Each merchant's base URL is http://HOST:PORT/merchants/MERCHANT_ID/ (see docs/serve.md).

    \b
    Example:
      omsbridge serve --config omsbridge.toml --port 8780
    """
    from omsbridge.bridge import Bridge
    from omsbridge.errors import ConfigError
    from omsbridge.logs import configure_logging
    from omsbridge_posspi.serve.running import load_settings, run

    configure_logging(getattr(logging, log_level), json_lines=log_json)
    try:
        with Bridge.from_config(config_file) as bridge:  # checked here, rebuilt in each worker
            settings = load_settings(config_file, bridge)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    changes = {
        key: value
        for key, value in (("host", host), ("port", port), ("workers", workers))
        if value is not None
    }
    settings = attrs.evolve(settings, **changes)
    if not settings.clients:
        click.echo(
            "warning: no [serve.clients.*]: every merchant request will be refused", err=True
        )
    click.echo(
        f"omsbridge serve on http://{settings.host}:{settings.port}/merchants/<merchant>/", err=True
    )
    run(config_file, settings)
