"""``omsbridge config check``: is a config file right?"""

from __future__ import annotations

from pathlib import Path

import click

from omsbridge.cli._output import emit_json, json_option


@click.group()
def config() -> None:
    """Work with omsbridge config files."""


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
def check(file: Path, as_json: bool) -> None:
    """Check a config file; exit 1 listing every problem with its path.

    \b
    Example:
      omsbridge config check omsbridge.toml
    """
    from omsbridge.config import load_config
    from omsbridge.errors import ConfigError

    try:
        loaded = load_config(file)
    except ConfigError as exc:
        if as_json:
            emit_json(
                {
                    "ok": False,
                    "problems": [{"path": i.path, "message": i.message} for i in exc.issues],
                }
            )
        else:
            click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    summary = {m.merchant_id: m.backend for m in loaded.merchants.values()}
    if as_json:
        emit_json({"ok": True, "merchants": summary, "store": str(loaded.store.path)})
        return
    click.echo(f"{file}: ok, {len(summary)} merchant(s)")
    for merchant_id, backend in summary.items():
        click.echo(f"  {merchant_id}: {backend}")
