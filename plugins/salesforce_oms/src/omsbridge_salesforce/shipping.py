"""Shipment fields for a store's SHIPPED step, limited to what the Shipment object has.

``Shipment.Provider`` is a picklist whose default values are ``FedEx``, ``UPS`` and ``USPS``
(Object Reference); a carrier that is not one of them is kept in ``Description`` instead of
being written as a value the org's picklist does not have. Shipment has no ship-date field
(``ExpectedDeliveryDate`` and ``ActualDeliveryDate`` are delivery dates): the record's
``CreatedDate`` is when it shipped.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PROVIDERS", "SHIPMENT_FIELDS", "carrier_fields", "carrier_of"]

PROVIDERS = ("FedEx", "UPS", "USPS")
"""Shipment.Provider's default picklist values."""

SHIPMENT_FIELDS = (
    "Id, FulfillmentOrderId, Provider, TrackingNumber, Status, CreatedDate, ActualDeliveryDate"
)
"""Shipment fields an order's detail reads (Description, where another carrier is noted, is
not read yet: the local sandbox of this release lacks the field)."""

_BY_KEY = {re.sub(r"[^a-z]", "", p.lower()): p for p in PROVIDERS}
_CARRIER_NOTE = "Carrier: "


def carrier_fields(carrier: str | None) -> dict[str, Any]:
    """``Provider`` when the carrier is a Provider value (FedEx, fedex, Fed-Ex...), otherwise
    the carrier in ``Description``; nothing for no carrier."""
    if not carrier or not carrier.strip():
        return {}
    provider = _BY_KEY.get(re.sub(r"[^a-z]", "", carrier.lower()))
    if provider is not None:
        return {"Provider": provider}
    return {"Description": f"{_CARRIER_NOTE}{carrier.strip()}"[:32000]}


def carrier_of(row: dict[str, Any]) -> str | None:
    """The carrier of a Shipment row: its Provider, else the one noted in Description."""
    if row.get("Provider"):
        return str(row["Provider"])
    description = str(row.get("Description") or "")
    if description.startswith(_CARRIER_NOTE):
        return description[len(_CARRIER_NOTE) :].splitlines()[0].strip() or None
    return None
