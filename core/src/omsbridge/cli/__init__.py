"""The ``omsbridge`` command. Plugins add commands through ``omsbridge_register_commands`` and
emulators through ``omsbridge_register_sandboxes``."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from omsbridge.cli.backends import backends
from omsbridge.cli.config_cmd import config
from omsbridge.cli.demo_cmd import demo
from omsbridge.cli.exit_codes import EXIT_CODES_HELP
from omsbridge.cli.export_cmd import export
from omsbridge.cli.omni_cmd import fulfil, listen
from omsbridge.cli.orders import cancel, order, post, search
from omsbridge.cli.sandbox import sandbox
from omsbridge.cli.schema_cmd import schema
from omsbridge.cli.store_cmd import store
from omsbridge.cli.validate import validate
from omsbridge.cli.worker_cmd import worker

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="omsbridge")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Connect a Point-of-Sale platform to merchants' order-management systems.

    \b
    Example:
      omsbridge backends
      omsbridge config check omsbridge.toml
    """
    from omsbridge.logs import configure_logging

    # The merchant and transaction id on every line (``-`` where a line has none).
    configure_logging(logging.WARNING - 10 * min(verbose, 2))
    from omsbridge.cli.worker_cmd import quiet_http_logs

    quiet_http_logs()  # -v: omsbridge's own info, not a line per HTTP request (-vv shows them)


for _command in (
    backends,
    config,
    demo,
    validate,
    schema,
    sandbox,
    export,
    store,
    worker,
    post,
    search,
    order,
    cancel,
    listen,
    fulfil,
):
    cli.add_command(_command)

_plugins_added = False


def _add_plugin_commands() -> None:
    global _plugins_added
    if _plugins_added:
        return
    _plugins_added = True
    from omsbridge.plugins import call_registration, get_plugin_manager

    pm = get_plugin_manager()
    call_registration(pm, "omsbridge_register_commands", cli=cli)
    # Emulators (``omsbridge_register_sandboxes``) load when ``omsbridge sandbox`` is used,
    # from this same plugin manager.
    sandbox.reload_plugins()


def _skip_httpx_cli() -> None:
    """Keep httpx from importing its own command-line client when a backend imports httpx.

    httpx's ``__init__`` imports ``httpx._main`` (rich.console, rich.progress, rich.syntax and
    pygments' lexers: ~70 ms of every start) whenever click, rich and pygments are installed,
    which omsbridge's own dependencies make so. No omsbridge process runs httpx's command
    line; with the module marked absent, httpx defines its stand-in ``main`` instead (its
    ``except ImportError`` branch) and everything else in httpx is unchanged."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> Any:
    """Run the command line (the ``omsbridge`` console script)."""
    _skip_httpx_cli()
    _add_plugin_commands()
    return cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="omsbridge")
