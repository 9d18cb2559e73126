"""Request bodies of the SPI that have no class in the core model.

Everything else on the wire is a core model class (``Transaction``, ``OrderPage``,
``OrderDetail``...) written and read with :mod:`omsbridge.wire`, so client and server share one
converter and the OpenAPI schemas are generated from these classes too.
"""

from __future__ import annotations

import attrs

from omsbridge.errors import InvalidTransaction, Issue
from omsbridge.model import CancelLine


def _reason_issues(reason: object) -> list[Issue]:
    if not isinstance(reason, str) or not reason.strip():
        return [Issue("reason", "is required and must not be blank")]
    return []


@attrs.frozen
class CancelOrderRequest:
    """Body of ``POST /orders/{order_id}/cancel``: cancel everything still open on the order."""

    reason: str

    def __attrs_post_init__(self) -> None:
        issues = _reason_issues(self.reason)
        if issues:
            raise InvalidTransaction(issues)


@attrs.frozen
class CancelLinesRequest:
    """Body of ``POST /orders/{order_id}/cancel-lines``: cancel a quantity of some lines."""

    lines: tuple[CancelLine, ...]
    reason: str

    def __attrs_post_init__(self) -> None:
        issues = [] if self.lines else [Issue("lines", "give at least one line to cancel")]
        numbers = [line.line_number for line in self.lines]
        issues += [
            Issue(f"lines[{i}].line_number", "appears more than once")
            for i, number in enumerate(numbers)
            if numbers.count(number) > 1
        ]
        issues += _reason_issues(self.reason)
        if issues:
            raise InvalidTransaction(issues)


@attrs.frozen
class ErrorIssue:
    """One problem with the request, named by its path (``lines[2].quantity``)."""

    path: str
    message: str


@attrs.frozen
class ErrorBody:
    """Every error the SPI answers: a stable ``code``, a readable ``message``, and for bad input
    the ``field`` path of the first problem and ``issues`` listing all of them."""

    code: str
    message: str
    field: str | None = None
    issues: tuple[ErrorIssue, ...] = ()
