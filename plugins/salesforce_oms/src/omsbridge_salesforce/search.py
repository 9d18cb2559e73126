"""BORIS / Customer 360 order search: an OrderQuery as safely escaped SOQL, with keyset paging.

The seed's search fields are OrderNumber, FirstName, LastName, BillingEmailAddress and
BillToContactId. Names match the customer's Person Account or the original order's ``Name``
(where the connector writes the customer's name, as in the seed's ``Name LIKE 'Amanda
Freeman%'`` example). Pages are keyset-paged on (OrderedDate, OrderNumber), newest first, so a page is
stable however deep it is (SOQL ``OFFSET`` stops at 2,000). The cursor is opaque: it carries
the criteria, so a cursor alone fetches the next page.
"""

from __future__ import annotations

from typing import Any

import attrs

from omsbridge import InvalidTransaction, Issue, OrderQuery, cursor
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.reading import parse_datetime, summary_query
from omsbridge_salesforce.soql import escape_like, literal, looks_like_id, soql

__all__ = ["decode_cursor", "encode_cursor", "search_soql"]

_CRITERIA = ("order_number", "first_name", "last_name", "email", "customer_id")


def encode_cursor(query: OrderQuery, last: dict[str, Any]) -> str:
    """An opaque cursor continuing ``query`` after the row ``last`` (core's shared format)."""
    if query.cursor:  # a later page: carry the criteria its cursor carried, as _criteria does
        carried, _ = decode_cursor(query)
        given = {k: getattr(query, k) for k in _CRITERIA if getattr(query, k)}
        given.update(
            {k: getattr(query, k) for k in ("placed_from", "placed_to") if getattr(query, k)}
        )
        query = attrs.evolve(carried, **given)
    return cursor.encode_cursor(query, [last.get("OrderedDate"), last.get("OrderNumber")])


def _ordered_date(value: Any) -> str | None:
    """A position's OrderedDate, refused (ValueError) unless Salesforce's date-time format."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("the position's date is not a date-time")
    try:
        parse_datetime(value)
    except ValueError:
        raise ValueError("the position's date is not a date-time") from None
    return value


_AFTER = (_ordered_date, cursor.position(str, optional=True, max_len=80))


def decode_cursor(query: OrderQuery) -> tuple[OrderQuery, tuple[Any, ...]]:
    """The criteria and (OrderedDate, OrderNumber) position in ``query.cursor``;
    :class:`InvalidTransaction` (``INVALID_CURSOR``) for one this backend did not make."""
    return cursor.decode_cursor(query, _AFTER, backend="salesforce")


def _criteria(query: OrderQuery) -> dict[str, Any]:
    """The query's criteria, merged with those carried by its cursor (whose page size wins)."""
    found: dict[str, Any] = {k: getattr(query, k) for k in _CRITERIA if getattr(query, k)}
    for name in ("placed_from", "placed_to"):
        if getattr(query, name) is not None:
            found[name] = getattr(query, name)
    found["n"] = query.page_size
    if query.cursor:
        carried, after = decode_cursor(query)
        for key in (*_CRITERIA, "placed_from", "placed_to"):
            value = getattr(carried, key)
            if value is not None and value != "":
                found.setdefault(key, value)
        found["n"] = carried.page_size
        found["after"] = list(after)
    return found


def search_soql(config: SalesforceConfig, query: OrderQuery) -> tuple[str, int, dict[str, Any]]:
    """The SOQL for one page of ``query`` (one row more than the page, to know if more follow).

    Returns (soql, page size, criteria used).
    """
    c = _criteria(query)
    where: list[str] = []
    if c.get("order_number"):
        where.append(
            soql(
                "(OrderNumber = {0} OR OriginalOrder.OrderReferenceNumber = {0})",
                c["order_number"],
            )
        )
    if c.get("email"):
        where.append(soql("BillingEmailAddress = {}", c["email"]))
    if c.get("first_name"):
        name = escape_like(c["first_name"])
        where.append(
            f"(Account.FirstName LIKE '{name}%' OR OriginalOrder.Name LIKE '{name}%')"
            if config.person_accounts
            else f"OriginalOrder.Name LIKE '{name}%'"
        )
    if c.get("last_name"):
        name = escape_like(c["last_name"])
        where.append(
            f"(Account.LastName LIKE '{name}%' OR OriginalOrder.Name LIKE '% {name}%')"
            if config.person_accounts
            else f"OriginalOrder.Name LIKE '% {name}%'"
        )
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
