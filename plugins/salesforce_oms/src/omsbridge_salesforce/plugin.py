"""The omsbridge plugin entry point of the Salesforce distribution (entry point ``salesforce``)."""

from __future__ import annotations

from collections.abc import Callable

import click

from omsbridge import hookimpl


@hookimpl
def omsbridge_register_sandboxes(register: Callable[[click.Command], None]) -> None:
    """Offer ``omsbridge sandbox salesforce``: the local Salesforce OMS emulator."""
    from omsbridge_salesforce.sandbox.cli import command

    register(command)
