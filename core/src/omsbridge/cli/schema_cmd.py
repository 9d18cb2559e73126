"""``omsbridge schema``: the JSON Schema of the native transaction format."""

from __future__ import annotations

import json

import click

SCHEMA_ID = "https://omsbridge.dev/schema/transaction.schema.json"


def transaction_schema_text() -> str:
    """The transaction JSON Schema as committed in ``docs/schema/``."""
    from omsbridge.model import Transaction
    from omsbridge.schema import json_schema

    return json.dumps(json_schema(Transaction, schema_id=SCHEMA_ID), indent=2) + "\n"


@click.command()
def schema() -> None:
    """Print the JSON Schema of a transaction in the native JSON format.

    \b
    Example:
      omsbridge schema > transaction.schema.json
    """
    click.echo(transaction_schema_text(), nl=False)
