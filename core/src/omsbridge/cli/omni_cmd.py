"""``omsbridge listen`` and ``omsbridge fulfil``: the omnichannel side from the command line.

``listen`` runs the event listeners (the worker's, with the config's durable checkpoints) for
one merchant or every merchant whose backend has events, and prints each fulfillment order
as it is imported; ``fulfil`` reports a store's step on a fulfillment order. Both work with
any backend through the SPI.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
import pluggy

from omsbridge.cli._merchant import (
    config_option,
    fail,
    fail_invalid,
    merchant_options,
    open_merchant,
)
from omsbridge.cli._output import emit_json, json_option

__all__ = ["fulfil", "listen"]

_hookimpl = pluggy.HookimplMarker("omsbridge")  # omsbridge.hookimpl, without importing the core


class _Printer:
    """A POS-side observer that prints each imported fulfillment order (one line each)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.count = 0
        self._lock = threading.Lock()

    @_hookimpl
    def omsbridge_fulfillment_order_received(
        self, merchant_id: str, fulfillment_order: Any
    ) -> None:
        """Print the order (JSON lines with ``--json``)."""
        from omsbridge.cli._output import stable

        fo = fulfillment_order
        if self.as_json:
            line = json.dumps(
                {"merchant_id": merchant_id, "fulfillment_order": stable(fo)},
                default=str,
                separators=(",", ":"),
            )
        else:
            units = sum((li.quantity for li in fo.lines), Decimal(0))
            line = (
                f"{merchant_id} {fo.fulfillment_order_id} {fo.kind} {fo.status} "
                f"store={fo.store_id or '-'} order={fo.order_number or fo.order_id} "
                f"lines={len(fo.lines)} units={units} total={fo.total if fo.total is not None else '-'} "
                f"{fo.currency}"
            )
        with self._lock:
            self.count += 1
            click.echo(line)


@click.command()
@config_option
@click.option(
    "--merchant",
    "merchant_id",
    help="Listen for this merchant only (default: every merchant whose backend has events).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds (default: until Ctrl-C or SIGTERM).",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Long-poll seconds per read of the event feed.",
)
@json_option
def listen(
    config_file: Path, merchant_id: str | None, duration: float | None, wait: float, as_json: bool
) -> None:
    """Follow fulfillment events and print each order imported for the stores.

    Checkpoints are kept in the config's store, so a restart resumes where this stopped; the
    POS's own plugins receive the orders too (``omsbridge_fulfillment_order_received``).

    \b
    Example:
      omsbridge listen --config omsbridge.toml --merchant SHOPNOW --json
    """
    from omsbridge.bridge import Bridge
    from omsbridge.errors import ConfigError, OMSBridgeError
    from omsbridge.listen import Listener, ListenerSettings
    from omsbridge.plugins import load_entry_point_plugins, new_plugin_manager
    from omsbridge.spi import Capability

    printer = _Printer(as_json)
    pm = new_plugin_manager()
    load_entry_point_plugins(pm)
    pm.register(printer, name="omsbridge-listen")
    try:
        bridge = Bridge.from_config(config_file, plugin_manager=pm)
    except ConfigError as exc:
        fail(as_json, "ConfigError", None, str(exc), [(i.path, i.message) for i in exc.issues])
        return
    with bridge:
        try:
            ids = [merchant_id] if merchant_id else bridge.merchant_ids
            merchants = [bridge.for_merchant(m) for m in ids]
        except OMSBridgeError as exc:
            fail(as_json, type(exc).__name__, None, str(exc), [])
            return
        listening = [m for m in merchants if Capability.EVENTS in m.backend.capabilities]
        if merchant_id and not listening:
            fail(
                as_json,
                "Unsupported",
                "UNSUPPORTED",
                f"merchant {merchant_id!r}: backend {merchants[0].backend.name!r} has no events",
                [],
            )
            return
        settings = ListenerSettings(wait=wait)
        stop = threading.Event()
        _stop_on_signals(stop)
        threads = []
        for merchant in listening:
            listener = Listener(merchant, bridge.store, settings=settings)
            thread = threading.Thread(
                target=listener.run, args=(stop,), name=f"listen-{merchant.merchant_id}"
            )
            thread.start()
            threads.append(thread)
        click.echo(
            f"listening for {', '.join(m.merchant_id for m in listening) or 'no merchant'}",
            err=True,
        )
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            stop.wait(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))
        stop.set()
        for thread in threads:
            thread.join()
    click.echo(f"{printer.count} fulfillment order(s) imported", err=True)


def _stop_on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def on_signal(signum: int, frame: object) -> None:
        logging.getLogger(__name__).info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _fulfil_line(value: str) -> tuple[str, Decimal]:
    line_id, _, quantity = value.rpartition(":")
    try:
        number = Decimal(quantity)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not LINE_ID:QTY (e.g. FOL-1:2)") from None
    if not line_id or not number.is_finite():
        raise click.BadParameter(f"{value!r} is not LINE_ID:QTY (e.g. FOL-1:2)")
    return line_id, number


_ACTIONS = (
    "PICK", "PACK", "READY_FOR_PICKUP", "PICKED_UP", "SHIPPED", "RECEIVED", "CANCEL", "REJECT",
)  # fmt: skip


@click.command()
@click.argument("fulfillment_order_id")
@click.argument("action", type=click.Choice(_ACTIONS, case_sensitive=False))
@merchant_options
@click.option(
    "--line",
    "lines",
    multiple=True,
    metavar="LINE_ID:QTY",
    help="Only part of the order (CANCEL, RECEIVED); repeatable.",
)
@click.option("--reason", help="Why (required for CANCEL and REJECT).")
@click.option("--tracking", "tracking_number", help="Tracking number (SHIPPED).")
@click.option("--carrier", help="Carrier (SHIPPED).")
@json_option
def fulfil(
    fulfillment_order_id: str,
    action: str,
    config_file: Path,
    merchant_id: str | None,
    lines: tuple[str, ...],
    reason: str | None,
    tracking_number: str | None,
    carrier: str | None,
    as_json: bool,
) -> None:
    """Report a store's step on a fulfillment order to the merchant's OMS.

    ACTION is PICK, PACK, READY_FOR_PICKUP, PICKED_UP, SHIPPED, RECEIVED, CANCEL or REJECT.

    \b
    Example:
      omsbridge fulfil --config omsbridge.toml --merchant SHOPNOW 0a3xx000000085AAA PACK
      omsbridge fulfil --config omsbridge.toml --merchant SHOPNOW FO-1 CANCEL \\
          --line FOL-2:1 --reason "Damaged"
    """
    from datetime import UTC, datetime

    from omsbridge.errors import InvalidTransaction
    from omsbridge.model import FulfillmentAction, FulfillmentLine, FulfillmentUpdate

    parsed = [_fulfil_line(value) for value in lines]
    try:
        update = FulfillmentUpdate(
            fulfillment_order_id,
            FulfillmentAction(action.upper()),
            lines=tuple(FulfillmentLine(line_id, qty) for line_id, qty in parsed),
            reason=reason,
            carrier=carrier,
            tracking_number=tracking_number,
            occurred_at=datetime.now(UTC),
        )
    except InvalidTransaction as exc:
        fail_invalid(as_json, exc)
        return
    with open_merchant(config_file, merchant_id, as_json) as merchant:
        merchant.update_fulfillment(update)
    if as_json:
        emit_json(
            {"ok": True, "fulfillment_order_id": fulfillment_order_id, "action": str(update.action)}
        )
        return
    part = f" ({len(update.lines)} line(s))" if update.lines else ""
    click.echo(f"{fulfillment_order_id}: {update.action}{part} reported")
