"""``omsbridge validate``: check transaction files in the native JSON format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from omsbridge.cli._output import emit_json, json_option


def _documents(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield (where, parsed JSON or an exception) for a JSON file, a JSON array or JSON lines."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield f"{path}:{number}", _parse(line)
        return
    data = _parse(text)
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield f"{path}[{i}]", item
    else:
        yield str(path), data


def _parse(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        return exc


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@json_option
def validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check transactions (JSON, a JSON array, or JSON lines in .jsonl); exit 1 on any error.

    \b
    Example:
      omsbridge validate examples/transactions/*.json
    """
    from omsbridge import wire
    from omsbridge.errors import InvalidTransaction
    from omsbridge.model import Transaction

    results: list[dict[str, Any]] = []
    for path in files:
        for where, data in _documents(path):
            if isinstance(data, Exception):
                results.append(
                    {"source": where, "ok": False, "errors": [f"not valid JSON: {data}"]}
                )
                continue
            try:
                txn = wire.structure(data, Transaction)
            except InvalidTransaction as exc:
                results.append(
                    {"source": where, "ok": False, "errors": [str(i) for i in exc.issues]}
                )
                continue
            results.append(
                {
                    "source": where,
                    "ok": True,
                    "transaction_id": txn.transaction_id,
                    "kind": str(txn.kind),
                    "lines": len(txn.lines),
                    "total": f"{txn.total} {txn.currency}",
                }
            )
    failed = [r for r in results if not r["ok"]]
    if as_json:
        emit_json(results)
    else:
        for r in results:
            if r["ok"]:
                click.echo(
                    f"{r['source']}: ok ({r['kind']} {r['transaction_id']}, {r['lines']} lines, total {r['total']})"
                )
            else:
                for error in r["errors"]:
                    click.echo(f"{r['source']}: {error}", err=True)
        click.echo(f"{len(results) - len(failed)} valid, {len(failed)} invalid", err=bool(failed))
    if failed:
        raise SystemExit(1)
