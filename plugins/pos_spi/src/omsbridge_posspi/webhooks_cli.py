"""``omsbridge webhooks list|show|replay|purge|enable``: the outgoing webhooks kept in the store.

Loaded by ``omsbridge --help`` (the commands are listed): the store, the config and the model
are imported only when a command runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from omsbridge.cli._merchant import config_option
from omsbridge.cli._output import emit_json, emit_table, json_option
from omsbridge.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from omsbridge.config import Config
    from omsbridge.store import Store

__all__ = ["STATES", "webhooks"]

STATES = ("pending", "delivered", "dead")
"""The values of :class:`omsbridge.store.WebhookState` (not imported: ``--help`` stays light)."""
_STATES = click.Choice(STATES)


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO 8601 time such as 2026-12-06T10:00:00Z, got {value!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def _opened(config_file: Path) -> Iterator[tuple[Config, Store]]:
    from omsbridge.config import load_config
    from omsbridge.errors import ConfigError
    from omsbridge.store import open_store

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(ExitCode.FIX) from None
    try:
        store = open_store(config.store)
    except Exception as exc:  # unreachable PostgreSQL, unreadable file: say so, no traceback
        click.echo(f"store: cannot open it ({type(exc).__name__})", err=True)
        raise SystemExit(ExitCode.RETRY) from None
    try:
        yield config, store
    finally:
        store.close()


@click.group()
def webhooks() -> None:
    """Outgoing webhooks: what was sent, what failed, and sending again."""


@webhooks.command("list")
@config_option
@click.option("--merchant", help="Only this merchant's messages.")
@click.option("--state", type=_STATES, help="Only messages in this state.")
@click.option("--since", callback=_when, help="Created at or after (ISO 8601).")
@click.option("--until", callback=_when, help="Created before (ISO 8601).")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@json_option
def list_(
    config_file: Path,
    merchant: str | None,
    state: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Messages, newest first.

    \b
    Example:
      omsbridge webhooks list --config omsbridge.toml --state dead
    """
    from omsbridge.store import WebhookState
    from omsbridge_posspi.serve.webhooks import describe

    with _opened(config_file) as (_, store):
        found = store.webhooks(
            merchant_id=merchant,
            state=WebhookState(state) if state else None,
            since=since,
            until=until,
            limit=limit,
        )
    if as_json:
        emit_json([describe(m) for m in found])
        return
    emit_table(
        ["id", "merchant", "type", "subject", "state", "attempts", "status", "created"],
        [
            (
                m.message_id,
                m.merchant_id,
                m.event_type,
                m.subject,
                m.state,
                m.attempts,
                m.last_status,
                m.created_at.isoformat(timespec="seconds") if m.created_at else "",
            )
            for m in found
        ],
    )


@webhooks.command()
@config_option
@click.argument("message_id")
@json_option
def show(config_file: Path, message_id: str, as_json: bool) -> None:
    """One message: its state, last error and the body sent.

    \b
    Example:
      omsbridge webhooks show --config omsbridge.toml msg_0f3c...
    """
    from omsbridge_posspi.serve.webhooks import describe

    with _opened(config_file) as (_, store):
        message = store.webhook(message_id)
    if message is None:
        click.echo(f"no webhook message {message_id}", err=True)
        raise SystemExit(ExitCode.FIX)
    shown = dict(describe(message))
    shown["body"] = json.loads(message.body)
    if as_json:
        emit_json(shown)
        return
    for key, value in shown.items():
        if key != "body":
            click.echo(f"{key}: {'' if value is None else value}")
    click.echo("body:")
    click.echo(json.dumps(shown["body"], indent=2, ensure_ascii=False))


@webhooks.command()
@config_option
@click.argument("message_ids", nargs=-1)
@click.option("--merchant", help="With --since/--until: only this merchant's messages.")
@click.option("--since", callback=_when, help="Replay messages created at or after (ISO 8601).")
@click.option("--until", callback=_when, help="Replay messages created before (ISO 8601).")
@click.option(
    "--state",
    type=click.Choice(["dead", "delivered", "any"]),
    default="dead",
    show_default=True,
    help="With --since/--until: which messages to replay.",
)
def replay(
    config_file: Path,
    message_ids: tuple[str, ...],
    merchant: str | None,
    since: datetime | None,
    until: datetime | None,
    state: str,
) -> None:
    """Send delivered or dead messages again, by id or by creation time.

    A replay keeps the message's id and body: a receiver that processed it already drops it
    (Standard Webhooks receivers deduplicate on webhook-id). The worker sends it.

    \b
    Examples:
      omsbridge webhooks replay --config omsbridge.toml msg_0f3c... msg_9a1b...
      omsbridge webhooks replay --config omsbridge.toml --since 2026-12-06T00:00:00Z
    """
    from omsbridge.store import WebhookState

    if bool(message_ids) == (since is not None or until is not None):
        raise click.UsageError("give message ids, or --since/--until (not both)")
    with _opened(config_file) as (_, store):
        ids = list(message_ids)
        if not ids:
            states = (
                [WebhookState.DEAD, WebhookState.DELIVERED]
                if state == "any"
                else [WebhookState(state)]
            )
            for wanted in states:
                ids += [
                    m.message_id
                    for m in store.webhooks(
                        merchant_id=merchant, state=wanted, since=since, until=until, limit=100000
                    )
                ]
        else:
            missing = [i for i in ids if store.webhook(i) is None]
            if missing:
                click.echo(f"no webhook message {', '.join(missing)}", err=True)
                raise SystemExit(ExitCode.FIX)
        count = store.replay_webhooks(ids)
    click.echo(f"{count} message(s) put back to be sent again")


@webhooks.command()
@config_option
@click.option(
    "--before", callback=_when, required=True, help="Last changed before this time (ISO 8601)."
)
@click.option(
    "--state",
    type=click.Choice(["delivered", "dead", "any"]),
    default="delivered",
    show_default=True,
    help="Which messages to delete (pending ones never are).",
)
def purge(config_file: Path, before: datetime, state: str) -> None:
    """Delete delivered (or dead) messages last changed before a time.

    A purged message is forgotten: an event recorded again after it was purged is sent again.

    \b
    Example:
      omsbridge webhooks purge --config omsbridge.toml --before 2026-11-01T00:00:00Z
    """
    from omsbridge.store import WebhookState

    states = (
        [WebhookState.DELIVERED, WebhookState.DEAD] if state == "any" else [WebhookState(state)]
    )
    with _opened(config_file) as (_, store):
        count = store.purge_webhooks(states=states, before=before)
    click.echo(f"{count} message(s) deleted")


@webhooks.command()
@config_option
@click.argument("merchant_id")
def enable(config_file: Path, merchant_id: str) -> None:
    """Enable a merchant's endpoint again after it answered 410 Gone.

    \b
    Example:
      omsbridge webhooks enable --config omsbridge.toml SHOPNOW
    """
    with _opened(config_file) as (config, store):
        merchant = config.merchants.get(merchant_id)
        if merchant is None or merchant.webhook is None:
            click.echo(f"merchants.{merchant_id}.webhook: no webhook configured", err=True)
            raise SystemExit(ExitCode.FIX)
        reason = store.webhook_endpoint_disabled(merchant_id, merchant.webhook.url)
        store.set_webhook_endpoint(merchant_id, merchant.webhook.url, None)
    click.echo(
        f"{merchant_id}: endpoint enabled" + (f" (was disabled: {reason})" if reason else "")
    )
