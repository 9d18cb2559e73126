"""The steps of a sale after its graph: the OrderSummary and the take-with fulfillment order.

A plain Order Management org has no flow doing either, so by default the connector does them:

1. ``order_summary_creation = "connect"``: ``POST /commerce/order-management/order-summaries``
   with ``orderId``, ``orderLifeCycleType`` and ``externalReferenceIdentifier`` = the transaction
   id (Salesforce's case-sensitive duplicate guard, API 56+). ``"flow"``: the org's flow made it
   on activation; it is only looked up when step 2 needs it.
2. ``take_with_fulfillment = "connector"``: the take-with (IN_STORE-DEFAULT) lines are goods the
   customer carried out, but Order Management counts a line returnable only once it is fulfilled
   (``QuantityAvailableToReturn`` follows ``QuantityFulfilled``). So a FulfillmentOrder is
   created for them at the store's Location (``POST /commerce/fulfillment/fulfillment-orders``,
   ``fulfillmentType`` "Retail Store") and set to ``Fulfilled``, a default Status of the CLOSED
   category.

Every step finds what exists before it writes, so a retry of the same transaction (after a lost
answer, a timeout, a failure half-way) does only what is missing: the summary is looked up by
its original order, a line already on a fulfillment order has no quantity left to fulfil, and
only fulfillment orders still open are set fulfilled. Never two summaries, never two FOs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from omsbridge import BackendError, LineItem, Transaction, TransientBackendError
from omsbridge_salesforce.client import SalesforceClient
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.graph import external_line_id
from omsbridge_salesforce.lookups import Lookups
from omsbridge_salesforce.reading import OPEN_FULFILLMENT, as_decimal
from omsbridge_salesforce.soql import soql

__all__ = ["CREATE_FULFILLMENT_ORDERS", "CREATE_ORDER_SUMMARY", "TAKE_WITH_STATUS", "SaleSteps"]

log = logging.getLogger(__name__)

CREATE_ORDER_SUMMARY = "/commerce/order-management/order-summaries"
"""Connect: create an OrderSummary from an activated Order."""
CREATE_FULFILLMENT_ORDERS = "/commerce/fulfillment/fulfillment-orders"
"""Connect: create FulfillmentOrders for one OrderDeliveryGroupSummary."""
TAKE_WITH_STATUS = "Fulfilled"
"""FulfillmentOrder.Status of a take-with order: a default value of the CLOSED category."""
TAKE_WITH_TYPE = "Retail Store"
"""FulfillmentOrder.Type (``fulfillmentType``) of a take-with order: a default value."""

_ZERO = Decimal(0)


class SaleSteps:
    """Completes posted sales: summary (Connect) and take-with fulfillment, resumably."""

    def __init__(
        self, client: SalesforceClient, config: SalesforceConfig, lookups: Lookups
    ) -> None:
        self._client = client
        self._config = config
        self._lookups = lookups

    def needed(self, transaction: Transaction) -> bool:
        """Whether the sale has steps after its graph (no call is made to find out)."""
        return self._config.order_summary_creation == "connect" or bool(
            self._take_with(transaction)
        )

    def complete(self, transaction: Transaction, order_id: str, *, fresh: bool) -> None:
        """Run the missing steps for the sale posted as ``order_id``.

        ``fresh``: the order was created by this very post (nothing after it can exist yet), so
        the summary is created without looking for one first."""
        take_with = self._take_with(transaction)
        if self._config.order_summary_creation != "connect" and not take_with:
            return
        summary_id = self._summary(transaction, order_id, fresh=fresh)
        if take_with:
            self._fulfil_take_with(transaction, summary_id, take_with)

    # -- the summary --------------------------------------------------------------------------

    def _summary(self, transaction: Transaction, order_id: str, *, fresh: bool) -> str:
        if self._config.order_summary_creation != "connect":
            found = self._find_summary(order_id)
            if found is None:
                # The org's flow has not made it (yet): a retry finds it or says so again.
                raise TransientBackendError(
                    f"order {order_id} has no OrderSummary yet: the org's flow on activation "
                    'creates it (order_summary_creation = "flow"); if the org has no such '
                    'flow, set order_summary_creation = "connect"',
                    code="NO_ORDER_SUMMARY",
                    backend="salesforce",
                )
            return found
        if not fresh:
            found = self._find_summary(order_id)
            if found is not None:
                return found
        body = {
            "orderId": order_id,
            "orderLifeCycleType": self._config.order_life_cycle_type,
            "externalReferenceIdentifier": transaction.transaction_id,
        }
        try:
            out = self._client.connect(
                CREATE_ORDER_SUMMARY, body, context=f"create order summary {order_id}"
            )
        except BackendError as error:
            # A duplicate (created by a first attempt whose answer was lost, or by a flow the
            # config does not know of) or a lost answer: the summary may exist all the same.
            found = self._find_summary(order_id)
            if found is None:
                raise
            log.info("order summary of %s exists (%s); using it", order_id, error.code)
            return found
        summary_id = out.get("orderSummaryId")
        if not summary_id:
            found = self._find_summary(order_id)
            if found is None:
                raise TransientBackendError(
                    f"create order summary {order_id}: no orderSummaryId in the answer",
                    code="NO_ORDER_SUMMARY",
                    backend="salesforce",
                )
            return found
        return str(summary_id)

    def _find_summary(self, order_id: str) -> str | None:
        rows = self._client.query(
            soql("SELECT Id FROM OrderSummary WHERE OriginalOrderId = {} LIMIT 1", order_id)
        )
        return str(rows[0]["Id"]) if rows else None

    # -- take-with lines ----------------------------------------------------------------------

    def _take_with(self, transaction: Transaction) -> list[LineItem]:
        if self._config.take_with_fulfillment != "connector":
            return []
        return [line for line in transaction.sale_lines if line.fulfillment.is_take_with]

    def _fulfil_take_with(
        self, transaction: Transaction, summary_id: str, lines: Sequence[LineItem]
    ) -> None:
        ext = self._config.order_item_external_id_field
        stores = {external_line_id(transaction, line): _store(transaction, line) for line in lines}
        items = self._client.query(
            soql(
                f"SELECT Id, OrderDeliveryGroupSummaryId, QuantityAvailableToFulfill, {ext} "
                "FROM OrderItemSummary WHERE OrderSummaryId = {} AND TypeCode = 'Product'",
                summary_id,
            )
        )
        mine = [item for item in items if item.get(ext) in stores]
        # One FO per delivery group and store; a line already allocated has nothing available.
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for item in mine:
            available = as_decimal(item.get("QuantityAvailableToFulfill"))
            if available > _ZERO:
                key = (str(item["OrderDeliveryGroupSummaryId"]), stores[item[ext]])
                groups.setdefault(key, []).append(
                    {"orderItemSummaryId": item["Id"], "quantity": available}
                )
        created: list[str] = []
        for (group_id, store_id), summaries in groups.items():
            out = self._client.connect(
                CREATE_FULFILLMENT_ORDERS,
                {
                    "orderSummaryId": summary_id,
                    "orderDeliveryGroupSummaryId": group_id,
                    "fulfillmentGroups": [
                        {
                            "fulfilledFromLocationId": self._lookups.store_location(store_id),
                            "fulfillmentType": TAKE_WITH_TYPE,
                            "orderItemSummaries": summaries,
                        }
                    ],
                },
                context=f"create take-with fulfillment order {transaction.transaction_id}",
            )
            created.extend(str(i) for i in out.get("fulfillmentOrderIds") or [])
        if not created:
            # Nothing new: an earlier attempt (or the org) may have left one open.
            created = self._open_orders([item["Id"] for item in mine])
        for fo_id in dict.fromkeys(created):
            self._client.update("FulfillmentOrder", fo_id, {"Status": TAKE_WITH_STATUS})

    def _open_orders(self, item_ids: list[str]) -> list[str]:
        if not item_ids:
            return []
        rows = self._client.query(
            soql(
                "SELECT FulfillmentOrderId FROM FulfillmentOrderLineItem WHERE "
                f"OrderItemSummaryId IN {{:in}} AND FulfillmentOrder.{OPEN_FULFILLMENT}",
                item_ids,
            )
        )
        return [str(row["FulfillmentOrderId"]) for row in rows]


def _store(transaction: Transaction, line: LineItem) -> str:
    return line.fulfillment.store_id or transaction.store_id
