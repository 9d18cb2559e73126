"""Shared output helpers for commands: JSON for scripts, readable text for people."""

from __future__ import annotations

import json
from typing import Any

import click


def emit_json(data: Any) -> None:
    """Print ``data`` (model objects allowed) as indented JSON."""
    from omsbridge import wire  # cattrs only when a command prints JSON

    click.echo(json.dumps(wire.unstructure(data), indent=2, default=str))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
"""The ``--json`` flag every command that prints results takes."""
