"""Importing fulfillment orders: the seed's FulfillmentOrder -> POS Order mapping, in full.

One FulfillmentOrder query (lines, delivery method, store, recipient), then one composite call
for the lines' taxes and price adjustments (OrderItemTaxLineItemSummary,
OrderItemAdjustmentLineSummary), shared out over the fulfillment order's quantity. The
seed's import conditions apply everywhere: open status category, ``statuses_to_process`` and
``filter_query``; the store comes from the ORDER_STORE_ID Location field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote as url_quote

import attrs

from omsbridge import (
    Adjustment,
    AdjustmentType,
    FulfillmentEvent,
    FulfillmentOrder,
    InvalidTransaction,
    Rejected,
    TaxLine,
)
from omsbridge.model._checks import minor_units
from omsbridge_salesforce.auth import BACKEND
from omsbridge_salesforce.client import SalesforceClient, error_from
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.reading import (
    OPEN_FULFILLMENT,
    as_decimal,
    fulfillment_order,
    fulfillment_order_query,
    parse_datetime,
)
from omsbridge_salesforce.soql import soql

__all__ = ["OPEN_FULFILLMENT", "FulfillmentImport"]


_IDS_PER_QUERY = 150  # keeps a WHERE Id IN (...) well inside SOQL's length limit


class FulfillmentImport:
    """Reads fulfillment orders of one org as POS fulfillment orders."""

    def __init__(
        self, client: SalesforceClient, config: SalesforceConfig, *, currency: str | None = None
    ) -> None:
        self._client = client
        self._config = config
        self._currency = currency

    def conditions(self) -> list[str]:
        """The seed's import conditions: open, in ``statuses_to_process``, ``filter_query``."""
        where = [OPEN_FULFILLMENT]
        if self._config.statuses_to_process:
            where.append(soql("Status IN {:in}", list(self._config.statuses_to_process)))
        if self._config.filter_query:
            where.append(self._config.filter_query)
        return where

    def for_store(self, store_id: str | None) -> list[FulfillmentOrder]:
        """Importable fulfillment orders (of one store, through the ORDER_STORE_ID field)."""
        where = self.conditions()
        if store_id is not None:
            field = self._config.store_id_field
            if field is None:
                raise Rejected(
                    "fulfillment orders by store need a custom_fields entry for ORDER_STORE_ID "
                    "on LOCATION (e.g. warehouseID__c)",
                    code="NO_STORE_FIELD",
                    backend=BACKEND,
                )
            where.append(soql(f"FulfilledFromLocation.{field} = {{}}", store_id))
        return self.orders(where, limit=2000)

    def by_ids(self, ids: Sequence[str], *, importable: bool = True) -> list[FulfillmentOrder]:
        """The named fulfillment orders (only importable ones unless told otherwise).

        One order — what an event names — costs one API call: the order, its taxes and its
        adjustments are read in one composite request."""
        unique = list(dict.fromkeys(ids))
        if len(unique) == 1:
            where = [*(self.conditions() if importable else []), soql("Id = {}", unique[0])]
            return self._one(where)
        found: list[FulfillmentOrder] = []
        for start in range(0, len(unique), _IDS_PER_QUERY):
            chunk = unique[start : start + _IDS_PER_QUERY]
            where = [*(self.conditions() if importable else []), soql("Id IN {:in}", chunk)]
            found.extend(self.orders(where, limit=len(chunk)))
        return found

    def orders(self, where: Sequence[str], *, limit: int = 200) -> list[FulfillmentOrder]:
        """Fulfillment orders matching ``where``, with their lines' taxes and adjustments."""
        rows = self._client.query(fulfillment_order_query(self._config, where, limit=limit))
        if not rows:
            return []
        taxes, adjustments = self._line_details(rows)
        return [self._map(row, taxes, adjustments) for row in rows]

    def _one(self, where: Sequence[str]) -> list[FulfillmentOrder]:
        # Later subrequests filter on the first one's OrderSummaryId (a composite reference).
        summary = "'@{fo.records[0].OrderSummaryId}'"
        named = {
            "fo": fulfillment_order_query(self._config, where, limit=1),
            "tax": "SELECT OrderItemSummaryId, Name, Amount, Rate FROM "
            f"OrderItemTaxLineItemSummary WHERE OrderSummaryId = {summary}",
            "adj": "SELECT OrderItemSummaryId, Name, Amount FROM "
            f"OrderItemAdjustmentLineSummary WHERE OrderSummaryId = {summary}",
        }
        results = self._client.composite(
            [
                {
                    "method": "GET",
                    "url": self._client.data_path("/query", query=True)
                    + "?q="
                    + url_quote(text, safe="@{}[]."),
                    "referenceId": name,
                }
                for name, text in named.items()
            ]
        )
        first = results["fo"]
        if not first.ok:
            raise error_from(first.status, first.body, context="query fulfillment order")
        rows = list((first.body or {}).get("records") or [])
        if not rows:
            return []
        records: dict[str, list[dict[str, Any]]] = {}
        for name in ("tax", "adj"):
            sub = results[name]
            if not sub.ok:
                raise error_from(sub.status, sub.body, context=f"query {name}")
            records[name] = list(sub.body.get("records") or [])
            next_url = sub.body.get("nextRecordsUrl") if not sub.body.get("done", True) else None
            while next_url:
                page = self._client.query_page(next_url=next_url)
                records[name].extend(page.records)
                next_url = page.next_url
        taxes: dict[str, list[dict[str, Any]]] = {}
        adjustments: dict[str, list[dict[str, Any]]] = {}
        for record in records["tax"]:
            taxes.setdefault(record["OrderItemSummaryId"], []).append(record)
        for record in records["adj"]:
            adjustments.setdefault(record["OrderItemSummaryId"], []).append(record)
        return [self._map(rows[0], taxes, adjustments)]

    def catch_up_events(self, since: datetime | None = None) -> list[FulfillmentEvent]:
        """One synthetic event per importable fulfillment order (changed at or after
        ``since``, when given), for a catch-up after a gap in the event feed.

        Event ids are derived from the order, its status and its last change, so a catch-up
        repeated after a crash is deduplicated by the listener."""
        where = self.conditions()
        if since is not None:
            stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            where.append(f"LastModifiedDate >= {stamp}")
        rows = self._client.query(
            "SELECT Id, Status, OrderSummary.OriginalOrderId, LastModifiedDate "
            "FROM FulfillmentOrder WHERE "
            + " AND ".join(f"({c})" for c in where)
            + " ORDER BY LastModifiedDate ASC"
        )
        return [
            FulfillmentEvent(
                event_id=f"catch-up:{row['Id']}:{row.get('Status')}:{row.get('LastModifiedDate')}",
                fulfillment_order_id=row["Id"],
                new_status=str(row.get("Status") or ""),
                checkpoint="catch-up",
                order_id=(row.get("OrderSummary") or {}).get("OriginalOrderId"),
                occurred_at=parse_datetime(row.get("LastModifiedDate")),
            )
            for row in rows
        ]

    def _line_details(
        self, rows: Iterable[Mapping[str, Any]]
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
        item_ids = sorted(
            {
                line["OrderItemSummaryId"]
                for row in rows
                for line in _line_rows(row)
                if line.get("OrderItemSummaryId")
            }
        )
        if not item_ids:
            return {}, {}
        taxes: dict[str, list[dict[str, Any]]] = {}
        adjustments: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(item_ids), _IDS_PER_QUERY):
            chunk = item_ids[start : start + _IDS_PER_QUERY]
            found = self._client.queries(
                {
                    "tax": soql(
                        "SELECT OrderItemSummaryId, Name, Amount, Rate FROM "
                        "OrderItemTaxLineItemSummary WHERE OrderItemSummaryId IN {:in}",
                        chunk,
                    ),
                    "adj": soql(
                        "SELECT OrderItemSummaryId, Name, Amount FROM "
                        "OrderItemAdjustmentLineSummary WHERE OrderItemSummaryId IN {:in}",
                        chunk,
                    ),
                }
            )
            for record in found["tax"]:
                taxes.setdefault(record["OrderItemSummaryId"], []).append(record)
            for record in found["adj"]:
                adjustments.setdefault(record["OrderItemSummaryId"], []).append(record)
        return taxes, adjustments

    def _map(
        self,
        row: Mapping[str, Any],
        taxes: Mapping[str, list[dict[str, Any]]],
        adjustments: Mapping[str, list[dict[str, Any]]],
    ) -> FulfillmentOrder:
        order = fulfillment_order(self._config, row, self._currency)
        by_id = {line["Id"]: line for line in _line_rows(row)}
        exponent = Decimal(1).scaleb(-minor_units(order.currency))
        lines = []
        for line in order.lines:
            raw = by_id.get(line.line_id) or {}
            item_id = raw.get("OrderItemSummaryId")
            ordered = as_decimal((raw.get("OrderItemSummary") or {}).get("QuantityOrdered"))
            # Taxes and adjustments belong to the whole order line; this store gets its share.
            share = line.quantity / ordered if ordered > 0 else Decimal(1)
            lines.append(
                attrs.evolve(
                    line,
                    taxes=tuple(_tax(t, share, exponent) for t in taxes.get(item_id or "", [])),
                    adjustments=tuple(
                        a
                        for a in (
                            _adjustment(r, share, exponent)
                            for r in adjustments.get(item_id or "", [])
                        )
                        if a is not None
                    ),
                )
            )
        return attrs.evolve(order, lines=tuple(lines))


def _line_rows(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((row.get("FulfillmentOrderLineItems") or {}).get("records") or [])


def _tax(record: Mapping[str, Any], share: Decimal, exponent: Decimal) -> TaxLine:
    rate = record.get("Rate")
    fraction = as_decimal(rate) / 100 if rate is not None else None
    return TaxLine(
        name=str(record.get("Name") or "Tax"),
        amount=(as_decimal(record.get("Amount")) * share).quantize(exponent),
        rate=fraction if fraction is not None and 0 <= fraction <= 1 else None,
    )


def _adjustment(record: Mapping[str, Any], share: Decimal, exponent: Decimal) -> Adjustment | None:
    amount = (as_decimal(record.get("Amount")) * share).quantize(exponent)
    name = record.get("Name") or None
    try:
        if amount <= 0:
            return Adjustment(AdjustmentType.PROMOTION, amount, description=name)
        return Adjustment(
            AdjustmentType.PRICE_OVERRIDE,
            amount,
            description=name,
            reason="price raised in Salesforce Order Management",
        )
    except InvalidTransaction:
        return None
