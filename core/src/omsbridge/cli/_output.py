"""Shared output helpers for commands: JSON for scripts, readable text for people.

JSON keys are stable: every field of a model object is written, defaults included (the wire
format leaves defaults out to keep stored payloads small; a script reading ``--json`` must not
see a key come and go with its value). Tables are printed with rich on a terminal; piped, they
are tab-separated lines, never truncated or folded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

__all__ = ["emit_json", "emit_json_lines", "emit_table", "json_option", "nl_option", "stable"]


def stable(data: Any) -> Any:
    """``data`` as plain JSON-ready data with every model field present (defaults written)."""
    import attrs

    from omsbridge import wire

    if attrs.has(type(data)):
        base = wire.unstructure(data)
        out = {k: v for k, v in base.items() if k not in attrs.fields_dict(type(data))}
        for field in attrs.fields(type(data)):
            if field.init and not field.name.startswith("_"):
                out[field.name] = stable(getattr(data, field.name))
        return out
    if isinstance(data, Mapping):
        return {str(k): stable(v) for k, v in data.items()}
    if isinstance(data, list | tuple | set | frozenset):
        return [stable(v) for v in data]
    return wire.unstructure(data)


def emit_json(data: Any) -> None:
    """Print ``data`` (model objects allowed) as indented JSON, every field present."""
    click.echo(json.dumps(stable(data), indent=2, default=str))


def emit_json_lines(items: Sequence[Any]) -> None:
    """Print each item as one compact JSON line (``--nl``), every field present."""
    for item in items:
        click.echo(json.dumps(stable(item), separators=(",", ":"), default=str))


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> None:
    """A table: rich on a terminal; piped, a header line and tab-separated rows, uncut."""
    from rich.console import Console

    console = Console()
    if console.is_terminal:
        from rich.table import Table

        table = Table(*headers, title=title or None)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
        return
    for row in (headers, *rows):
        click.echo("\t".join("" if v is None else str(v).replace("\t", " ") for v in row))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
"""The ``--json`` flag every command that prints results takes."""

nl_option = click.option(
    "--nl", "as_lines", is_flag=True, help="Print one JSON object per line (JSON lines)."
)
"""The ``--nl`` flag of list and search commands."""
