"""``omsbridge export run|list|show|retry|purge|stats``: post the outbox and operate it.

Every subcommand takes ``--config FILE`` (or ``OMSBRIDGE_CONFIG``) and works on the store that
config names; ``--json`` prints data for scripts.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from omsbridge.cli._merchant import config_option
from omsbridge.cli._output import emit_json, emit_json_lines, emit_table, json_option, nl_option
from omsbridge.cli.exit_codes import ExitCode

__all__ = ["export"]

F = TypeVar("F", bound=Callable[..., Any])

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d`` as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match:
        raise click.BadParameter(f"give a duration such as 30m, 12h or 7d, got {text!r}")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


@contextmanager
def _opened(config_file: Path) -> Iterator[Any]:
    """The config's bridge (and so its store); a config error is a message, not a traceback."""
    from omsbridge.bridge import Bridge
    from omsbridge.errors import ConfigError

    try:
        bridge = Bridge.from_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(ExitCode.FIX)
    with bridge:
        yield bridge


def _entry_dict(entry: Any, *, payload: bool = False) -> dict[str, Any]:
    import json

    data: dict[str, Any] = {
        "entry_id": entry.entry_id,
        "merchant_id": entry.merchant_id,
        "transaction_id": entry.transaction_id,
        "kind": entry.kind,
        "state": str(entry.state),
        "attempts": entry.attempts,
        "created_at": entry.created_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
        "next_attempt_at": entry.next_attempt_at.isoformat(),
        "order_id": entry.order_id,
        "order_number": entry.order_number,
        "lease_owner": entry.lease_owner,
        "lease_expires_at": entry.lease_expires_at.isoformat() if entry.lease_expires_at else None,
        "last_error": _error_dict(entry.last_error),
    }
    if payload:
        data["transaction"] = json.loads(entry.payload)
    return data


def _error_dict(error: Any) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "error_class": error.error_class,
        "code": error.code,
        "status": error.status,
        "message": error.message,
        "retryable": error.retryable,
    }


def _attempt_dict(attempt: Any) -> dict[str, Any]:
    return {
        "at": attempt.at.isoformat(),
        "outcome": str(attempt.outcome),
        "source": attempt.source,
        "latency_ms": attempt.latency_ms,
        "worker": attempt.worker,
        "error": _error_dict(attempt.error),
    }


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@click.group()
def export() -> None:
    """Post the outbox to each merchant's OMS; inspect, replay and purge it.

    \b
    Example:
      omsbridge export run --config omsbridge.toml
      omsbridge export list --config omsbridge.toml --state dead
      omsbridge export retry --all-dead --config omsbridge.toml
    """


@export.command()
@config_option
@click.option("--merchant", "merchants", multiple=True, help="Only this merchant (repeatable).")
@click.option("--drain", is_flag=True, help="Also wait for entries in backoff until none is left.")
@click.option("--max-time", type=float, default=None, help="Stop after this many seconds.")
@click.option("--lease", type=float, default=120.0, show_default=True, help="Claim lease, seconds.")
@click.option("--claim-size", type=int, default=50, show_default=True, help="Entries per claim.")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Merchants at once.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@json_option
def run(
    config_file: Path,
    merchants: tuple[str, ...],
    drain: bool,
    max_time: float | None,
    lease: float,
    claim_size: int,
    concurrency: int,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Post what is pending: per merchant, oldest first, with retries and dead letters.

    \b
    Example:
      omsbridge export run --config omsbridge.toml --merchant SHOPNOW --drain --max-time 600
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from omsbridge.export import ExportJob, ExportSettings
    from omsbridge.store import AttemptOutcome, OutboxEntry

    console = Console(stderr=True)
    show_bar = (not as_json and console.is_terminal) if progress is None else progress
    settings = ExportSettings(claim_size=claim_size, lease_seconds=lease, concurrency=concurrency)
    deadline = time.monotonic() + max_time if max_time else None
    with _opened(config_file) as bridge:
        for merchant_id in merchants:
            if merchant_id not in bridge.merchant_ids:
                raise click.BadParameter(
                    f"no merchant {merchant_id!r} in the config", param_hint="--merchant"
                )
        stats = bridge.store.stats(datetime.now(UTC))
        total = sum(
            m.pending for m in stats.merchants if not merchants or m.merchant_id in merchants
        )
        bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show_bar,
        )
        task = bar.add_task("exporting", total=total)

        def on_outcome(entry: OutboxEntry, outcome: AttemptOutcome) -> None:
            if outcome in (AttemptOutcome.CREATED, AttemptOutcome.EXISTED, AttemptOutcome.DEAD):
                bar.advance(task)

        job = ExportJob(bridge, settings=settings, on_outcome=on_outcome)
        with bar:
            report = job.run(list(merchants) or None, drain=drain, deadline=deadline)
        left = bridge.store.stats(datetime.now(UTC))
    rows = [
        {
            "merchant_id": m.merchant_id,
            "created": m.created,
            "existed": m.existed,
            "retry": m.retry,
            "rate_limited": m.rate_limited,
            "dead": m.dead,
            "paused_until": m.paused_until.isoformat() if m.paused_until else None,
            "login_refused": m.login_refused,
            "skipped": m.skipped,
        }
        for m in report.merchants
    ]
    if as_json:
        emit_json(
            {
                "started_at": report.started_at.isoformat(),
                "finished_at": report.finished_at.isoformat() if report.finished_at else None,
                "posted": report.total("posted"),
                "dead": report.total("dead"),
                "pending_left": left.total("pending"),
                "merchants": rows,
            }
        )
        return
    for row in rows:
        extra = ""
        if row["skipped"]:
            extra = f"  skipped: {row['skipped']}"
        elif row["login_refused"]:
            extra = f"  PAUSED, login refused: {row['login_refused']}"
            if row["paused_until"]:
                extra += f" (next login try {row['paused_until']})"
        elif row["paused_until"]:
            extra = f"  paused until {row['paused_until']}"
        click.echo(
            f"{row['merchant_id']}: {row['created']} created, {row['existed']} already there, "
            f"{row['retry']} to retry, {row['dead']} dead{extra}"
        )
    click.echo(
        f"posted {report.total('posted')}, dead {report.total('dead')}, "
        f"pending left {left.total('pending')}"
    )


@export.command("list")
@config_option
@click.option(
    "--state",
    type=click.Choice(["pending", "dead", "done", "open", "all"]),
    default="open",
    show_default=True,
    help="open = pending and dead.",
)
@click.option("--merchant", "merchant_id", help="Only this merchant.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--after", "after_id", type=int, default=0, help="Entries after this id (paging).")
@json_option
@nl_option
def list_(
    config_file: Path,
    state: str,
    merchant_id: str | None,
    limit: int,
    after_id: int,
    as_json: bool,
    as_lines: bool,
) -> None:
    """List outbox entries, oldest first, with their last error.

    \b
    Example:
      omsbridge export list --config omsbridge.toml --state dead --json
      omsbridge export list --config omsbridge.toml --nl | jq .transaction_id
    """
    from omsbridge.store import EntryState

    # ``open`` and ``all`` are not store states: map them before ever calling EntryState(...).
    if state == "open":
        states = [EntryState.PENDING, EntryState.DEAD]
    elif state == "all":
        states = list(EntryState)
    else:
        states = [EntryState(state)]
    with _opened(config_file) as bridge:
        entries = bridge.store.entries(
            states=states, merchant_id=merchant_id, limit=limit, after_id=after_id
        )
    if as_lines:
        emit_json_lines([_entry_dict(e) for e in entries])
        return
    if as_json:
        emit_json([_entry_dict(e) for e in entries])
        return
    if not entries:
        click.echo("no entries")
        return
    rows = [
        (e.entry_id, e.merchant_id, e.transaction_id, e.state, e.attempts,
         _when(e.next_attempt_at) if e.state == EntryState.PENDING else "-",
         str(e.last_error) if e.last_error else "")
        for e in entries
    ]  # fmt: skip
    emit_table(("id", "merchant", "transaction", "state", "tries", "next try", "last error"), rows)


@export.command()
@click.argument("entry_id", type=int)
@config_option
@click.option("--payload", is_flag=True, help="Also print the stored transaction.")
@json_option
def show(entry_id: int, config_file: Path, payload: bool, as_json: bool) -> None:
    """Show one entry with every attempt: time, outcome, error class, code, message, latency.

    \b
    Example:
      omsbridge export show 42 --config omsbridge.toml
    """
    with _opened(config_file) as bridge:
        entry = bridge.store.get(entry_id)
        if entry is None:
            click.echo(f"no outbox entry {entry_id}", err=True)
            sys.exit(ExitCode.FIX)
        attempts = bridge.store.attempts(entry_id)
    if as_json:
        emit_json(
            {**_entry_dict(entry, payload=payload), "history": [_attempt_dict(a) for a in attempts]}
        )
        return
    click.echo(f"entry {entry.entry_id}: {entry.merchant_id} {entry.transaction_id} ({entry.kind})")
    click.echo(f"  state:    {entry.state}, {entry.attempts} attempt(s)")
    click.echo(f"  queued:   {_when(entry.created_at)}   updated: {_when(entry.updated_at)}")
    if entry.order_id:
        click.echo(f"  order:    {entry.order_id} ({entry.order_number or '-'})")
    if entry.last_error:
        click.echo(f"  error:    {entry.last_error}")
    click.echo("  history:")
    for a in attempts:
        latency = f"{a.latency_ms:.0f} ms" if a.latency_ms is not None else "-"
        line = f"    {_when(a.at)}  {a.source:<8} {a.outcome!s:<12} {latency:>8}"
        if a.error:
            line += f"  {a.error}"
        click.echo(line)
    if payload:
        click.echo(entry.payload)


@export.command()
@click.argument("entry_ids", type=int, nargs=-1)
@config_option
@click.option("--all-dead", is_flag=True, help="Every dead letter (of --merchant, or all).")
@click.option("--merchant", "merchant_id", help="With --all-dead: only this merchant.")
@json_option
def retry(
    entry_ids: tuple[int, ...],
    config_file: Path,
    all_dead: bool,
    merchant_id: str | None,
    as_json: bool,
) -> None:
    """Make dead letters (or backed-off entries) pending and due now; the next run posts them.

    \b
    Example:
      omsbridge export retry 42 43 --config omsbridge.toml
      omsbridge export retry --all-dead --merchant SHOPNOW --config omsbridge.toml
    """
    if bool(entry_ids) == all_dead:
        raise click.UsageError("give entry ids or --all-dead (not both)")
    with _opened(config_file) as bridge:
        if all_dead:
            count = bridge.store.requeue_dead(merchant_id)
        else:
            count = bridge.store.requeue(list(entry_ids))
    if as_json:
        emit_json({"requeued": count})
    else:
        click.echo(f"{count} entr{'y' if count == 1 else 'ies'} queued again")


@export.command()
@config_option
@click.option(
    "--older-than", default="7d", show_default=True, help="Only entries last changed before this."
)
@click.option("--dead", is_flag=True, help="Also delete dead letters (they are lost for good).")
@json_option
def purge(config_file: Path, older_than: str, dead: bool, as_json: bool) -> None:
    """Delete posted entries (and, with --dead, dead letters) with their history.

    \b
    Example:
      omsbridge export purge --config omsbridge.toml --older-than 30d
    """
    from omsbridge.store import EntryState

    before = datetime.now(UTC) - parse_duration(older_than)
    states = [EntryState.DONE, *([EntryState.DEAD] if dead else [])]
    with _opened(config_file) as bridge:
        count = bridge.store.purge(states=states, before=before)
    if as_json:
        emit_json({"purged": count})
    else:
        click.echo(f"purged {count} entr{'y' if count == 1 else 'ies'}")


@export.command()
@config_option
@click.option(
    "--prometheus",
    "prometheus_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write Prometheus text format to this file ('-': print it).",
)
@json_option
def stats(config_file: Path, prometheus_file: Path | None, as_json: bool) -> None:
    """Queue figures per merchant: pending, due, dead, posted, retried, API budget left.

    \b
    Example:
      omsbridge export stats --config omsbridge.toml --json
      omsbridge export stats --config omsbridge.toml --prometheus /var/lib/node_exporter/omsbridge.prom
    """
    from omsbridge.export.metrics import prometheus_text, stats_dict, write_textfile

    now = datetime.now(UTC)
    with _opened(config_file) as bridge:
        figures = bridge.store.stats(now)
    if prometheus_file is not None:
        text = prometheus_text(figures, now)
        if str(prometheus_file) == "-":
            click.echo(text, nl=False)
        else:
            write_textfile(prometheus_file, text)
        return
    data = stats_dict(figures, now)
    if as_json:
        emit_json(data)
        return
    if not data["merchants"]:
        click.echo("the outbox is empty")
        return
    headers = ("merchant", "pending", "due", "dead", "posted", "retried", "oldest pending",
               "paused until", "budget left")  # fmt: skip
    rows = []
    for m in data["merchants"]:
        budget = m["api_budget"]
        rows.append((
            m["merchant_id"], m["pending"], m["due"], m["dead"], m["posted"], m["retried"],
            m["oldest_pending_at"] or "-", m["paused_until"] or "-",
            f"{budget['remaining']}/{budget['limit'] or '?'}" if budget else "-",
        ))  # fmt: skip
    emit_table(headers, rows)
    # Below the table, unwrapped: a refused login must be read in full, never cut to fit.
    for m in data["merchants"]:
        if m["pause"] is not None:
            click.echo(f"{m['merchant_id']}: {_why_paused(m['pause'], m['paused_until'])}")


def _why_paused(pause: dict[str, Any], until: str | None) -> str:
    if pause["kind"] == "auth":
        when = f"; next login try at {until}" if until else "; login is being tried again"
        return (
            f"PAUSED, LOGIN REFUSED by the OMS: {pause['reason']} (nothing is posted and no "
            f"entry is lost; fix the credentials, it resumes by itself{when})"
        )
    return f"paused ({pause['kind']}) until {until}: {pause['reason'] or '-'}"
