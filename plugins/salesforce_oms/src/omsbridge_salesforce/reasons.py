"""The reason of a return or cancel as Order Management takes it.

A Connect change item's ``reason`` must be a value of the org's
``OrderItemSummaryChange.Reason`` picklist (Salesforce's only default value is ``Unknown``),
so the POS's reason goes through the ``change_reasons`` setting, falling back to
``default_change_reason``. The POS's own words go to ``reasonForChangeText`` (Change Item
Input, API 59.0 and later, at most 255 characters) so nothing the store typed is lost.
"""

from __future__ import annotations

from typing import Any

from omsbridge_salesforce.config import SalesforceConfig

__all__ = ["REASON_TEXT_SINCE", "change_reason"]

REASON_TEXT_SINCE = 59
"""First API version whose Change Item Input has ``reasonForChangeText``."""

_TEXT_MAX = 255


def change_reason(config: SalesforceConfig, pos_reason: str | None) -> dict[str, Any]:
    """The ``reason`` (and, where the API version has it, ``reasonForChangeText``) keys of one
    Connect change item for a POS reason (None: no reason given)."""
    text = (pos_reason or "").strip()
    keys: dict[str, Any] = {
        "reason": config.change_reasons.get(text, config.default_change_reason)
        if text
        else config.default_change_reason
    }
    if text and config.api_number >= REASON_TEXT_SINCE:
        keys["reasonForChangeText"] = text[:_TEXT_MAX]
    return keys
