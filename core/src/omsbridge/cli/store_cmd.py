"""``omsbridge store``: the store's schema (``store migrate`` brings a PostgreSQL store up to date)."""

from __future__ import annotations

from pathlib import Path

import click

from omsbridge.cli._merchant import config_option
from omsbridge.cli.exit_codes import ExitCode

__all__ = ["store"]


@click.group()
def store() -> None:
    """The store: its schema."""


@store.command()
@config_option
def migrate(config_file: Path) -> None:
    """Bring the configured store's schema up to date (safe to run while workers run).

    \b
    Example:
      omsbridge store migrate --config omsbridge.toml
    """
    from omsbridge.config import load_config
    from omsbridge.errors import ConfigError

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    if config.store.url is None:
        from omsbridge.store.sqlite import SCHEMA_VERSION, SqliteStore

        SqliteStore(config.store.path).close()  # SQLite migrates on open
        click.echo(f"SQLite store {config.store.path}: schema {SCHEMA_VERSION}")
        return
    try:
        from omsbridge.store import postgres
    except ImportError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    try:
        before, applied = postgres.migrate(config.store.url)
    except postgres.SchemaError as exc:
        click.echo(f"store.url: {exc}", err=True)
        raise SystemExit(1) from None
    except postgres.OperationalError as exc:
        click.echo(f"store.url: cannot connect ({type(exc).__name__})", err=True)
        raise SystemExit(ExitCode.RETRY) from None
    if applied:
        steps = ", ".join(str(v) for v in applied)
        click.echo(f"PostgreSQL store: schema {before} -> {applied[-1]} (applied {steps})")
    else:
        click.echo(f"PostgreSQL store: schema {before}, up to date")
