"""omsbridge backend for Salesforce Order Management, and a local Salesforce OMS sandbox.

Modules, one job each: :mod:`.config` (settings), :mod:`.auth` (OAuth), :mod:`.client` (the only
HTTP code, error mapping), :mod:`.soql` (escaping), :mod:`.lookups` (reference records),
:mod:`.graph` (a sale as one composite graph), :mod:`.changes` (Connect actions),
:mod:`.reading` / :mod:`.search` (reads), :mod:`.backend` (the SPI), :mod:`.hookspecs` (the
integrator's graph hook), :mod:`.plugin` (entry point). See docs/salesforce.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omsbridge_salesforce.backend import SalesforceBackend
    from omsbridge_salesforce.config import SalesforceConfig

__all__ = ["SalesforceBackend", "SalesforceConfig"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing the sandbox does not load the backend (and the other way round).
    if name == "SalesforceBackend":
        from omsbridge_salesforce.backend import SalesforceBackend

        return SalesforceBackend
    if name == "SalesforceConfig":
        from omsbridge_salesforce.config import SalesforceConfig

        return SalesforceConfig
    raise AttributeError(name)
