"""``omsbridge validate``: check transaction files in the native JSON format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from omsbridge.cli._output import emit_json, json_option


def _documents(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield (where, parsed JSON or an InvalidTransaction) for a JSON file, a JSON array or JSON
    lines; a line that is not JSON spoils only its own verdict."""
    from omsbridge.errors import InvalidTransaction

    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        yield str(path), InvalidTransaction("expected a file, got a directory")
        return
    except OSError as exc:
        yield str(path), InvalidTransaction(f"cannot read it: {exc.strerror or exc}")
        return
    if path.suffix in (".jsonl", ".ndjson"):
        for number, line in enumerate(raw.splitlines(), start=1):
            if line.strip():
                yield f"{path}:{number}", _parse(line)
        return
    data = _parse(raw)
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield f"{path}[{i}]", item
    else:
        yield str(path), data


def _parse(raw: bytes) -> Any:
    from omsbridge import wire
    from omsbridge.errors import InvalidTransaction

    try:
        return wire.parse(raw)
    except InvalidTransaction as exc:
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
            if isinstance(data, InvalidTransaction):
                results.append(
                    {"source": where, "ok": False, "errors": [str(i) for i in data.issues]}
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
