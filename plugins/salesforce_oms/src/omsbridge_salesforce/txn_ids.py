"""Transaction ids are case-sensitive; the org's external-id field may not be.

omsbridge treats ``POS-7f3a-abc`` and ``POS-7F3A-ABC`` as two transactions. A Salesforce
external-id field is case-insensitive unless created with "case sensitive" (the setup
package's ``Order.POS_Transaction_Id__c`` is, see ``plugins/salesforce_oms/org-setup``), and
SOQL compares text ignoring case. So an order found by its transaction id is only "the same
transaction" when the stored id is equal case included; a twin that differs only in case and
meets ``DUPLICATE_VALUE`` is refused with :func:`case_collision`, never reported as posted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from omsbridge import Rejected

__all__ = ["CASE_COLLISION", "case_collision", "exact_row", "twin_row"]

CASE_COLLISION = "TRANSACTION_ID_CASE_COLLISION"
SETUP_FIELD = "POS_Transaction_Id__c"
"""The setup package's case-sensitive external-id field on Order."""


def exact_row(
    rows: Iterable[Mapping[str, Any]], field: str, transaction_id: str
) -> Mapping[str, Any] | None:
    """The row whose ``field`` equals ``transaction_id`` exactly (case included)."""
    return next((row for row in rows if row.get(field) == transaction_id), None)


def twin_row(
    rows: Iterable[Mapping[str, Any]], field: str, transaction_id: str
) -> Mapping[str, Any] | None:
    """A row whose ``field`` equals ``transaction_id`` ignoring case only (a case twin)."""
    folded = transaction_id.casefold()
    for row in rows:
        value = row.get(field)
        if isinstance(value, str) and value != transaction_id and value.casefold() == folded:
            return row
    return None


def case_collision(
    transaction_id: str, stored: str, order_number: str | None, field: str
) -> Rejected:
    """The error for a transaction whose id differs only in case from a posted one."""
    held = f"order {order_number}" if order_number else "an order"
    return Rejected(
        f"transaction {transaction_id!r} was not posted: Salesforce holds {held} for "
        f"{stored!r}, which differs only in case, and the org's external-id field "
        f"Order.{field} is not case-sensitive, so it counts them as one. Transaction ids are "
        "case-sensitive in omsbridge: deploy the setup package's case-sensitive field "
        f"(plugins/salesforce_oms/org-setup: Order.{SETUP_FIELD}, external id, unique, case "
        "sensitive), point order_external_id_field at it, then requeue this transaction",
        code=CASE_COLLISION,
        backend="salesforce",
    )
