"""``omsbridge sandbox NAME``: local emulators that plugins register."""

from __future__ import annotations

import click


@click.group()
def sandbox() -> None:
    """Run a local emulator of an order-management system (plugins add them).

    \b
    Example:
      omsbridge sandbox salesforce --port 8765 --seed demo
    """
