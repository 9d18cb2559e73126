"""``omsbridge backends``: what is installed."""

from __future__ import annotations

from typing import Any

import click

from omsbridge.cli._output import emit_json, emit_json_lines, json_option, nl_option


@click.command()
@json_option
@nl_option
def backends(as_json: bool, as_lines: bool) -> None:
    """List the installed backends: name, distribution, version, capabilities.

    \b
    Example:
      omsbridge backends --json
      omsbridge backends --nl
    """
    from omsbridge.registry import BackendRegistry

    rows: list[dict[str, Any]] = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "description": info.backend_class.description,
            "capabilities": sorted(str(c) for c in info.backend_class.capabilities),
        }
        for info in BackendRegistry.from_plugins()
    ]
    if as_lines:
        emit_json_lines(rows)
        return
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No backends installed. Install a plugin such as omsbridge-posspi.")
        return
    for row in rows:
        where = f"{row['distribution']} {row['version']}" if row["distribution"] else "local"
        click.echo(f"{row['name']}  ({where})  {row['description']}")
        click.echo(f"    capabilities: {', '.join(row['capabilities']) or 'none'}")
