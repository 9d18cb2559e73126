"""``omsbridge salesforce ...``: commands of the Salesforce plugin (``preflight``,
``catalog-sync``).

Registered through ``omsbridge_register_commands``; they use core's ``--config/--merchant``
options, error reporting and exit statuses (:mod:`omsbridge.cli._merchant`): 0 ready, 1 a
problem to fix (the org, the config, refused credentials), 75 worth retrying later (network,
Salesforce unavailable, API limit); see :class:`omsbridge.cli.exit_codes.ExitCode`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from omsbridge.cli._merchant import fail, merchant_options, open_merchant
from omsbridge.cli._output import emit_json, json_option

__all__ = ["catalog_sync", "preflight", "salesforce"]


def _salesforce_backend(merchant: Any, merchant_id: str, as_json: bool) -> Any:
    """The merchant's Salesforce backend, or None after telling the user it has another one."""
    from omsbridge_salesforce.backend import SalesforceBackend

    backend = merchant.backend
    if isinstance(backend, SalesforceBackend):
        return backend
    fail(
        as_json,
        "ConfigError",
        None,
        f"merchant {merchant_id} uses backend {backend.name!r}, not 'salesforce'",
        [(f"merchants.{merchant_id}.backend", "must be 'salesforce' for this command")],
    )
    return None


@click.group()
def salesforce() -> None:
    """Salesforce Order Management: org onboarding and catalog tools."""


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
    from omsbridge_salesforce.preflight import preflight as run_checks
    from omsbridge_salesforce.preflight import problems

    with open_merchant(config_file, merchant_id, as_json) as merchant:
        backend = _salesforce_backend(merchant, merchant_id, as_json)
        if backend is None:
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


@salesforce.command("catalog-sync")
@merchant_options
@click.option("--full", is_flag=True, help="Reload the whole catalog, not only what changed.")
@json_option
def catalog_sync(config_file: Path, merchant_id: str, full: bool, as_json: bool) -> None:
    """Sync the merchant's catalog index now (needs catalog_sync in its settings).

    Loads every Product2 with a StockKeepingUnit and its price-book entries into the bridge's
    store, or (after a first load) reads what changed since the last sync. Prints the API
    calls it took. Exit 0 when synced, 1 when the merchant has no catalog_sync, 75 when
    Salesforce could not be reached (try again).

    \b
    Example:
      omsbridge salesforce catalog-sync --config omsbridge.toml --merchant SHOPNOW
    """
    with open_merchant(config_file, merchant_id, as_json) as merchant:
        backend = _salesforce_backend(merchant, merchant_id, as_json)
        if backend is None:
            return
        catalog = backend.lookups.catalog
        if catalog is None:
            fail(
                as_json,
                "ConfigError",
                None,
                f"merchant {merchant_id} keeps no catalog index",
                [
                    (
                        f"merchants.{merchant_id}.salesforce.catalog_sync",
                        'set a refresh interval such as "5m" to keep one',
                    )
                ],
            )
            return
        report = catalog.sync(full=full)
    if as_json:
        emit_json(
            {
                "merchant_id": merchant_id,
                "full": report.full,
                "api_calls": report.calls,
                "rows_read": report.changed,
                "products": report.products,
                "duplicate_skus": list(report.duplicates),
            }
        )
    else:
        click.echo(
            f"catalog of {merchant_id} {'loaded' if report.full else 'refreshed'}: "
            f"{report.changed} row(s) read in {report.calls} API call(s); "
            f"{report.products} product(s) with a SKU indexed"
        )
        if report.duplicates:
            click.echo(
                f"SKU(s) held by more than one Product2 (the oldest is used): "
                f"{', '.join(report.duplicates)}"
            )
