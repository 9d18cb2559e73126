"""How a command reaches one merchant's backend, and how it reports failures and exits.

Shared by every command that takes ``--config FILE [--merchant ID]`` (``--merchant`` may be
left out when the config has exactly one merchant; ``--config`` may come from
``OMSBRIDGE_CONFIG``, so click is not told it is required: the callback asks for it when neither
is given, and ``--help`` does not call it required when the variable is set); the exit statuses are
those of :class:`omsbridge.cli.exit_codes.ExitCode` (1 to fix, 75 to retry, 3 queued).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from omsbridge.cli._output import emit_json
from omsbridge.cli.exit_codes import ExitCode
from omsbridge.errors import InvalidTransaction

__all__ = [
    "QUEUED_EXIT",
    "config_option",
    "fail",
    "fail_invalid",
    "merchant_options",
    "open_merchant",
]

F = TypeVar("F", bound=Callable[..., Any])


def _config_given(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    if value is None:
        raise click.MissingParameter(
            ctx=ctx, param=param, message="give --config FILE or set OMSBRIDGE_CONFIG"
        )
    return value


def config_option(func: F) -> F:
    """``--config FILE`` (or ``OMSBRIDGE_CONFIG``): the omsbridge TOML config file."""
    return click.option(
        "--config",
        "config_file",
        envvar="OMSBRIDGE_CONFIG",
        callback=_config_given,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The omsbridge TOML config file (or OMSBRIDGE_CONFIG).",
    )(func)


def merchant_options(func: F) -> F:
    """``--config FILE [--merchant ID]``: which merchant of which config a command works on."""
    func = click.option(
        "--merchant",
        "merchant_id",
        help="Merchant id from the config file (may be left out when it has only one).",
    )(func)
    return config_option(func)


QUEUED_EXIT = ExitCode.QUEUED
"""Exit status of ``post`` when the OMS was unavailable and the transaction is in the outbox."""


@contextmanager
def open_merchant(config_file: Path, merchant_id: str | None, as_json: bool) -> Iterator[Any]:
    """The merchant (the config's only one when ``merchant_id`` is None); errors become a
    message and an exit status, never a traceback."""
    from omsbridge.bridge import Bridge
    from omsbridge.errors import BackendError, ConfigError, OMSBridgeError
    from omsbridge.outbox import Queued

    # The bridge logs a failed post at WARNING for the worker's logs; here the error is
    # reported below, notes included, so at the default level it would be said twice.
    bridge_log = logging.getLogger("omsbridge.bridge")
    quiet = not bridge_log.isEnabledFor(logging.INFO)
    level = bridge_log.level
    if quiet:
        bridge_log.setLevel(logging.ERROR)
    try:
        with Bridge.from_config(config_file) as bridge:
            if merchant_id is None:
                ids = bridge.merchant_ids
                if len(ids) != 1:
                    raise click.UsageError(
                        f"--merchant is needed: {config_file} has {len(ids)} merchants "
                        f"({', '.join(ids) or 'none'})"
                    )
                merchant_id = ids[0]
            yield bridge.for_merchant(merchant_id)
    except Queued as exc:
        # Not a failure the caller must act on: the export job will post it.
        message = f"{exc.transaction_id} queued as outbox entry {exc.entry_id}: {exc.error}"
        if as_json:
            emit_json({"ok": True, "queued": True, "entry_id": exc.entry_id,
                       "transaction_id": exc.transaction_id, "error": str(exc.error)})  # fmt: skip
        else:
            click.echo(message, err=True)
        sys.exit(QUEUED_EXIT)
    except ConfigError as exc:
        fail(as_json, "ConfigError", None, str(exc), [(i.path, i.message) for i in exc.issues])
    except BackendError as exc:
        issues = [(i.path, i.message) for i in getattr(exc, "issues", ())]
        fail(
            as_json,
            type(exc).__name__,
            exc.code,
            exc.message,
            issues,
            retryable=exc.retryable,
            retry_after=getattr(exc, "retry_after", None),
            notes=list(getattr(exc, "__notes__", ())),
        )
    except OMSBridgeError as exc:
        fail(as_json, type(exc).__name__, None, str(exc), [])
    finally:
        if quiet:
            bridge_log.setLevel(level)


def fail_invalid(as_json: bool, exc: InvalidTransaction) -> None:
    """Report bad input (every issue with its path) and exit 1."""
    fail(
        as_json, "InvalidTransaction", exc.code, str(exc), [(i.path, i.message) for i in exc.issues]
    )


def fail(
    as_json: bool,
    kind: str,
    code: str | None,
    message: str,
    issues: list[tuple[str, str]],
    *,
    retryable: bool = False,
    retry_after: float | None = None,
    notes: list[str] | None = None,
) -> None:
    """Report an error once (JSON or text) and exit :attr:`ExitCode.RETRY` when retrying may
    help, else :attr:`ExitCode.FIX`. The JSON always has the same keys."""
    if as_json:
        emit_json(
            {
                "ok": False,
                "error": kind,
                "code": code,
                "message": message,
                "retryable": retryable,
                "retry_after": retry_after,
                "issues": [{"path": p, "message": m} for p, m in issues],
                "notes": notes or [],
            }
        )
    else:
        click.echo(f"{kind}{f' [{code}]' if code else ''}: {message}", err=True)
        for note in notes or ():
            click.echo(f"  {note}", err=True)
    sys.exit(ExitCode.RETRY if retryable else ExitCode.FIX)
