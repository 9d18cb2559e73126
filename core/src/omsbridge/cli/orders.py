"""``omsbridge post / search / order / cancel``: order operations on any merchant's backend.

Every command takes ``--config FILE [--merchant ID]`` (the merchant may be left out when the
config has exactly one) and goes through :class:`omsbridge.Bridge`,
so it works with whatever backend the merchant is configured for (and its local sandbox).
Errors print the error class, code and message and exit 1 (75 for a retryable error, so a
script can tell "try again later" apart from "fix the input" and from a usage error, 2);
``post`` exits 3 when the OMS could not take the transaction now and it waits in the outbox for
the export job. The table: :mod:`omsbridge.cli.exit_codes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import click

from omsbridge.cli._merchant import fail_invalid, merchant_options, open_merchant
from omsbridge.cli._output import emit_json, emit_json_lines, json_option, nl_option
from omsbridge.errors import InvalidTransaction

__all__ = ["cancel", "order", "post", "search"]

F = TypeVar("F", bound=Callable[..., Any])

_LINE = re.compile(r"^(\d+):(\d+(?:\.\d+)?)$")


@click.command()
@click.argument("file", type=click.File("rb"))
@merchant_options
@json_option
def post(file: Any, config_file: Path, merchant_id: str | None, as_json: bool) -> None:
    """Post a transaction (native JSON) to the merchant's backend; safe to repeat.

    FILE is a JSON file, or - for standard input.

    \b
    Example:
      omsbridge post examples/transactions/sale-card.json --config omsbridge.toml \\
          --merchant SHOPNOW --json
      make-sale | omsbridge post - --config omsbridge.toml
    """
    from omsbridge import wire
    from omsbridge.checked import mark_checked
    from omsbridge.model import Transaction

    try:
        transaction = mark_checked(wire.loads(file.read(), Transaction))
    except InvalidTransaction as exc:
        fail_invalid(as_json, exc)
        return
    with open_merchant(config_file, merchant_id, as_json) as merchant:
        result = merchant.post(transaction)
    if as_json:
        emit_json(result)
        return
    verb = "posted" if result.created else "already posted"
    click.echo(
        f"{result.transaction_id}: {verb} as order {result.order_number or '-'} ({result.order_id})"
    )


@click.command()
@merchant_options
@click.option("--order-number", help="The order number.")
@click.option("--email", help="The customer's (billing) email address.")
@click.option("--first-name", help="The customer's first name (prefix).")
@click.option("--last-name", help="The customer's last name (prefix).")
@click.option("--customer-id", help="The customer's id in the OMS.")
@click.option("--from", "placed_from", type=click.DateTime(), help="Placed at or after (UTC).")
@click.option("--to", "placed_to", type=click.DateTime(), help="Placed at or before (UTC).")
@click.option("--page-size", type=int, default=20, show_default=True, help="Hits per page.")
@click.option("--cursor", help="next_cursor of the previous page.")
@json_option
@nl_option
def search(
    config_file: Path,
    merchant_id: str | None,
    order_number: str | None,
    email: str | None,
    first_name: str | None,
    last_name: str | None,
    customer_id: str | None,
    placed_from: datetime | None,
    placed_to: datetime | None,
    page_size: int,
    cursor: str | None,
    as_json: bool,
    as_lines: bool,
) -> None:
    """Search the merchant's orders (all criteria must match), newest first.

    \b
    Example:
      omsbridge search --config omsbridge.toml --merchant SHOPNOW --last-name Freeman --json
      omsbridge search --config omsbridge.toml --email jane@example.com --nl
    """
    from datetime import UTC

    from omsbridge.model import OrderQuery

    criteria = (order_number, email, first_name, last_name, customer_id, placed_from, placed_to)
    if cursor is None and all(c is None for c in criteria):
        raise click.UsageError(
            "give at least one of --order-number, --email, --first-name, --last-name, "
            "--customer-id, --from, --to"
        )

    try:
        query = OrderQuery(
            order_number=order_number, first_name=first_name, last_name=last_name, email=email,
            customer_id=customer_id,
            placed_from=placed_from.replace(tzinfo=UTC) if placed_from else None,
            placed_to=placed_to.replace(tzinfo=UTC) if placed_to else None,
            page_size=page_size, cursor=cursor,
        )  # fmt: skip
    except InvalidTransaction as exc:
        fail_invalid(as_json, exc)
        return
    with open_merchant(config_file, merchant_id, as_json) as merchant:
        page = merchant.search_orders(query)
    if as_lines:
        # One hit per line; the next page's cursor (if any) goes to standard error.
        emit_json_lines(page.hits)
        if page.next_cursor:
            click.echo(f"more: --cursor {page.next_cursor}", err=True)
        return
    if as_json:
        emit_json(page)
        return
    if not page.hits:
        click.echo("no orders found")
    for hit in page.hits:
        click.echo(
            f"{hit.order_number}  {hit.placed_at:%Y-%m-%d %H:%M %z}  {hit.total} "
            f"{hit.currency}  {hit.item_count} item(s)  {hit.status}  {hit.email or ''}"
        )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


@click.command()
@click.argument("order_id")
@merchant_options
@json_option
def order(order_id: str, config_file: Path, merchant_id: str | None, as_json: bool) -> None:
    """Show one order: lines with quantities, payments, fulfillment orders, shipments.

    \b
    Example:
      omsbridge order 00000100 --config omsbridge.toml --merchant SHOPNOW --json
    """
    from omsbridge import wire

    with open_merchant(config_file, merchant_id, as_json) as merchant:
        detail = merchant.get_order(order_id)
    if as_json:
        # The normalized status is derived (a property): written beside the stored fields.
        emit_json({**wire.unstructure(detail), "status": str(detail.status)})
        return
    totals = detail.totals
    click.echo(
        f"order {detail.order_number} ({detail.order_id})  {detail.status} "
        f"({detail.backend_status})  placed {detail.placed_at:%Y-%m-%d %H:%M %z}"
    )
    click.echo(
        f"  totals: ordered {totals.ordered}  cancelled {totals.cancelled}  returned "
        f"{totals.returned}  net {totals.net} {detail.currency}"
    )
    for line in detail.lines:
        click.echo(
            f"  {line.line_number}. {line.sku} x{line.quantity_ordered} @ {line.unit_price}"
            f"  fulfilled {line.quantity_fulfilled}  cancelled {line.quantity_cancelled}"
            f"  returned {line.quantity_returned}"
        )
    for payment in detail.payments:
        card = f" {payment.brand or ''} ****{payment.last4}" if payment.last4 else ""
        click.echo(f"  payment {payment.kind}{card} {payment.amount}")
    for fo in detail.fulfillment_orders:
        click.echo(
            f"  fulfillment {fo.fulfillment_order_id} {fo.status} store {fo.store_id or '-'}"
        )
    for shipment in detail.shipments:
        click.echo(f"  shipment {shipment.carrier or ''} {shipment.tracking_number or ''}")


def _cancel_line(value: str) -> tuple[int, Decimal]:
    match = _LINE.match(value)
    if not match:
        raise click.BadParameter(f"{value!r} is not LINE:QTY (e.g. 2:1)")
    try:
        return int(match.group(1)), Decimal(match.group(2))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise click.BadParameter(f"{value!r} is not LINE:QTY") from None


@click.command()
@click.argument("order_id")
@merchant_options
@click.option(
    "--line",
    "lines",
    multiple=True,
    metavar="N:QTY",
    help="Cancel QTY of line N (repeatable); without it the whole order is cancelled.",
)
@click.option("--reason", required=True, help="Why (the OMS's cancel reason).")
@json_option
def cancel(
    order_id: str,
    config_file: Path,
    merchant_id: str | None,
    lines: tuple[str, ...],
    reason: str,
    as_json: bool,
) -> None:
    """Cancel an order, or some quantity of some lines.

    \b
    Examples:
      omsbridge cancel 00000100 --reason "No show" --config omsbridge.toml --merchant SHOPNOW
      omsbridge cancel 00000100 --line 2:1 --reason "Damaged" --config ... --merchant ...
    """
    from omsbridge.model import CancelLine

    try:
        wanted = [CancelLine(n, qty) for n, qty in (_cancel_line(v) for v in lines)]
    except InvalidTransaction as exc:
        fail_invalid(as_json, exc)
        return
    with open_merchant(config_file, merchant_id, as_json) as merchant:
        if wanted:
            result = merchant.cancel_items(order_id, wanted, reason=reason)
        else:
            result = merchant.cancel_order(order_id, reason=reason)
    if as_json:
        emit_json(result)
        return
    done = ", ".join(f"line {c.line_number} x{c.quantity}" for c in result.cancelled)
    click.echo(f"order {result.order_id}: cancelled {done}; status {result.status or '-'}")
