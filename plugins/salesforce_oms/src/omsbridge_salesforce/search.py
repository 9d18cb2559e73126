"""BORIS / Customer 360 order search: an OrderQuery as safely escaped SOQL, with keyset paging.

The seed's search fields are OrderNumber, FirstName, LastName, BillingEmailAddress and
BillToContactId. Names match the customer's Person Account or the original order's ``Name``
(where the connector writes the customer's name, as in the seed's ``Name LIKE 'Amanda
Freeman%'`` example). Pages are keyset-paged on (OrderedDate, OrderNumber), newest first, so a page is
stable however deep it is (SOQL ``OFFSET`` stops at 2,000). The cursor is opaque: it carries
the criteria, so a cursor alone fetches the next page.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from omsbridge import InvalidTransaction, Issue, OrderQuery
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.reading import parse_datetime, summary_query
from omsbridge_salesforce.soql import escape_like, literal, looks_like_id, soql

__all__ = ["decode_cursor", "encode_cursor", "search_soql"]

_CRITERIA = ("order_number", "first_name", "last_name", "email", "customer_id")


def encode_cursor(query: OrderQuery, last: dict[str, Any]) -> str:
    """An opaque cursor continuing ``query`` after the row ``last``."""
    data = {k: getattr(query, k) for k in _CRITERIA if getattr(query, k)}
    for name in ("placed_from", "placed_to"):
        value = getattr(query, name)
        if value is not None:
            data[name] = value.isoformat()
    data["n"] = query.page_size
    data["after"] = [last.get("OrderedDate"), last.get("OrderNumber")]
    raw = json.dumps(data, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The state in a cursor; :class:`InvalidTransaction` for one this backend did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or not isinstance(data.get("after"), list):
            raise ValueError("not a cursor")
        return data
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidTransaction(
            [Issue("cursor", "is not a cursor returned by this backend's search")],
            code="INVALID_CURSOR",
            backend="salesforce",
        ) from None


def _criteria(query: OrderQuery) -> dict[str, Any]:
    """The query's criteria, merged with those carried by its cursor."""
    found: dict[str, Any] = {k: getattr(query, k) for k in _CRITERIA if getattr(query, k)}
    for name in ("placed_from", "placed_to"):
        if getattr(query, name) is not None:
            found[name] = getattr(query, name)
    found["n"] = query.page_size
    if query.cursor:
        state = decode_cursor(query.cursor)
        for key in _CRITERIA:
            if key in state:
                found.setdefault(key, state[key])
        for name in ("placed_from", "placed_to"):
            if name in state and name not in found:
                found[name] = datetime.fromisoformat(state[name])
        found["n"] = int(state.get("n", query.page_size))
        found["after"] = state["after"]
    return found


def search_soql(config: SalesforceConfig, query: OrderQuery) -> tuple[str, int, dict[str, Any]]:
    """The SOQL for one page of ``query`` (one row more than the page, to know if more follow).

    Returns (soql, page size, criteria used).
    """
    c = _criteria(query)
    where: list[str] = []
    if c.get("order_number"):
        where.append(soql("OrderNumber = {}", c["order_number"]))
    if c.get("email"):
        where.append(soql("BillingEmailAddress = {}", c["email"]))
    if c.get("first_name"):
        name = escape_like(c["first_name"])
        where.append(f"(Account.FirstName LIKE '{name}%' OR OriginalOrder.Name LIKE '{name}%')")
    if c.get("last_name"):
        name = escape_like(c["last_name"])
        where.append(f"(Account.LastName LIKE '{name}%' OR OriginalOrder.Name LIKE '% {name}%')")
    if c.get("customer_id"):
        customer = c["customer_id"]
        field = config.order_customer_id_field
        either: list[str] = []
        if field:
            either.append(soql(f"OriginalOrder.{field} = {{}}", customer))
        if looks_like_id(customer):
            either.append(
                soql("AccountId = {} OR OriginalOrder.BillToContactId = {}", customer, customer)
            )
        if not either:
            raise InvalidTransaction(
                [
                    Issue(
                        "customer_id",
                        "must be a Salesforce Account or Contact id (15 or 18 characters); "
                        "POS customer ids are searchable once order_customer_id_field is set",
                    )
                ],
                code="INVALID_CUSTOMER_ID",
                backend="salesforce",
            )
        where.append("(" + " OR ".join(either) + ")")
    if c.get("placed_from") is not None:
        where.append(f"OrderedDate >= {literal(c['placed_from'])}")
    if c.get("placed_to") is not None:
        where.append(f"OrderedDate <= {literal(c['placed_to'])}")
    after = c.get("after")
    if after:
        # OrderNumber breaks ties: unique, zero-padded, and free of the case questions that
        # comparing 18-character Ids raises.
        when, last_number = after
        number = literal(str(last_number or ""))
        if when:
            stamp = literal(parse_datetime(when))
            where.append(
                f"(OrderedDate < {stamp} OR (OrderedDate = {stamp} AND OrderNumber < {number}))"
            )
        else:
            where.append(f"OrderNumber < {number}")
    size = int(c["n"])
    text = summary_query(config, " AND ".join(where) or "Id != null", limit=size + 1)
    text = text.replace("ORDER BY OrderedDate DESC", "ORDER BY OrderedDate DESC, OrderNumber DESC")
    return text, size, c
