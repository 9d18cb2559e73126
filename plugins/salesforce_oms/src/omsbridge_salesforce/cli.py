"""``omsbridge salesforce ...``: commands of the Salesforce plugin (``preflight``).

Registered through ``omsbridge_register_commands``; they use core's ``--config/--merchant``
options, error reporting and exit statuses (:mod:`omsbridge.cli._merchant`): 0 ready, 1 a
problem to fix (the org, the config, refused credentials), 75 worth retrying later (network,
Salesforce unavailable, API limit); see :class:`omsbridge.cli.exit_codes.ExitCode`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from omsbridge.cli._merchant import fail, merchant_options, open_merchant
from omsbridge.cli._output import emit_json, json_option

__all__ = ["preflight", "salesforce"]


@click.group()
def salesforce() -> None:
    """Salesforce Order Management: org onboarding tools."""


@salesforce.command()
@merchant_options
@json_option
def preflight(config_file: Path, merchant_id: str, as_json: bool) -> None:
    """Check that the merchant's Salesforce org is ready for its settings (reads only).

    Describes the objects the connector uses and runs a few queries: API version, Order
    Management, Person Accounts, multicurrency, every configured field and picklist value,
    payment gateways, delivery methods, sales channel. Exit 0 when ready, 1 listing every
    problem with its fix, 2 when Salesforce could not be reached (try again).

    \b
    Example:
      omsbridge salesforce preflight --config omsbridge.toml --merchant SHOPNOW
    """
    from omsbridge_salesforce.backend import SalesforceBackend
    from omsbridge_salesforce.preflight import preflight as run_checks
    from omsbridge_salesforce.preflight import problems

    with open_merchant(config_file, merchant_id, as_json) as merchant:
        backend = merchant.backend
        if not isinstance(backend, SalesforceBackend):
            fail(
                as_json,
                "ConfigError",
                None,
                f"merchant {merchant_id} uses backend {backend.name!r}, not 'salesforce'",
                [(f"merchants.{merchant_id}.backend", "must be 'salesforce' for this command")],
            )
            return
        checks = run_checks(backend.client, backend.config, backend.merchant)
        org = backend.config.url_base
    failed = problems(checks)
    if as_json:
        emit_json({"ready": not failed, "checks": [c.as_dict() for c in checks]})
    else:
        for check in checks:
            click.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.check}")
            if not check.ok:
                click.echo(f"      problem: {check.problem}")
                click.echo(f"      fix:     {check.fix}")
        if failed:
            click.echo(
                f"\n{org} is NOT ready for merchant {merchant_id}: {len(failed)} problem(s)."
            )
        else:
            click.echo(f"\n{org} is ready for merchant {merchant_id} ({len(checks)} checks).")
    sys.exit(1 if failed else 0)
