"""Changes to existing orders through Order Management's Connect actions.

* returns (BORIS, POS returns, the return half of an exchange): ``submit-return`` on the original
  OrderSummary, with the lines found by their external order-item id (so the original
  LineNumber is kept), then ``create-credit-memo`` and ``ensure-refunds-async``;
* cancels: ``cancel-item`` on fulfillment orders for allocated quantity, ``submit-cancel`` for
  the rest, then ``ensure-refunds-async`` for the excess funds;
* fulfillment updates: PATCH ``FulfillmentOrder.Status``, ``cancel-item`` for cancelled lines,
  a Shipment for a shipped order with tracking.

Connect actions are not idempotent, so a return is made exactly once by reconciling with what
the org holds (see :mod:`omsbridge_salesforce.returns`): its change order is tagged with the
transaction id (``<txn>#R<n>`` in the order external-id field) and its progress kept in the
change order's Description; after a lost answer, a 5xx or a crash at any step, the next attempt
finds what the org already did (an untagged change order with exactly the planned lines, the
credit memo of that change order, the memo's balance) and only does what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from omsbridge import (
    BackendError,
    CancelLine,
    CancelResult,
    Conflict,
    FulfillmentAction,
    FulfillmentUpdate,
    InvalidTransaction,
    Issue,
    LineItem,
    NotFound,
    Rejected,
    Transaction,
    TransientBackendError,
)
from omsbridge_salesforce.client import SalesforceClient, error_from
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.reading import (
    CLOSED_CATEGORIES,
    OPEN_FULFILLMENT,
    as_decimal,
    as_quantity,
    order_id_of,
    parse_datetime,
    product_items,
    summary_query,
    summary_where,
)
from omsbridge_salesforce.reasons import change_reason
from omsbridge_salesforce.returns import ReturnLedger, memo_of, state_text
from omsbridge_salesforce.shipping import carrier_fields
from omsbridge_salesforce.soql import looks_like_id, soql
from omsbridge_salesforce.txn_ids import case_collision, twin_row

__all__ = ["OrderChanges", "ReturnPlan"]

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
_OM = "/commerce/order-management/order-summaries"
_FO = "/commerce/fulfillment/fulfillment-orders"
_UNTAGGED = "_omsbridge_untagged"  # marks a plan's change order an earlier attempt left untagged
_T = TypeVar("_T")
_CLOSED_FO_CATEGORIES = CLOSED_CATEGORIES
_OPEN_FO = OPEN_FULFILLMENT


@attrs.frozen
class ReturnPlan:
    """One original order's part of a return, checked before anything is written."""

    tag: str
    summary: Mapping[str, Any]
    change_items: tuple[Mapping[str, Any], ...]
    value: Decimal
    """What the POS credits for these lines (their totals)."""
    existing: Mapping[str, Any] | None = None
    """The change order of an earlier attempt (Id, Description), when there was one."""


class OrderChanges:
    """Cancels, returns and fulfillment updates for one merchant's org."""

    def __init__(self, client: SalesforceClient, config: SalesforceConfig) -> None:
        self._client = client
        self._config = config
        self._ledger = ReturnLedger(client, config)
        self._case_sensitive: bool | None = None

    # -- reading ------------------------------------------------------------------------------

    def summary(self, order_ref: str) -> dict[str, Any]:
        """The OrderSummary (with item summaries) of an order id, summary id, number or txn id.

        A change order's id (a return posted earlier) leads to its original order's summary.
        """
        rows = self._client.query(
            summary_query(self._config, summary_where(self._config, order_ref))
        )
        rows = [row for row in rows if self._names(row, order_ref)]
        if not rows:
            related = self._related_original(order_ref)
            if related:
                rows = self._client.query(
                    summary_query(self._config, soql("OriginalOrderId = {}", related))
                )
        if not rows:
            raise NotFound(
                f"no Salesforce order {order_ref!r}", code="ORDER_NOT_FOUND", backend="salesforce"
            )
        if len(rows) > 1:
            raise Conflict(
                f"{order_ref!r} matches more than one Salesforce order",
                code="AMBIGUOUS_ORDER",
                backend="salesforce",
            )
        return rows[0]

    def _names(self, row: Mapping[str, Any], order_ref: str) -> bool:
        """Whether ``order_ref`` names this summary row exactly: SOQL matched the transaction
        id ignoring case, and ``POS-a`` must not find the order of ``POS-A``."""
        if looks_like_id(order_ref) and order_ref[:15] in (
            str(row.get("Id") or "")[:15],
            str(row.get("OriginalOrderId") or "")[:15],
        ):
            return True
        original = row.get("OriginalOrder") or {}
        txn = original.get(self._config.order_external_id_field)
        return bool(
            order_ref in (row.get("OrderNumber"), original.get("OrderReferenceNumber"))
            or txn == order_ref
        )

    def _related_original(self, order_ref: str) -> str | None:
        if not looks_like_id(order_ref):
            return None
        rows = self._client.query(soql("SELECT RelatedOrderId FROM Order WHERE Id = {}", order_ref))
        return rows[0].get("RelatedOrderId") if rows else None

    # -- returns ------------------------------------------------------------------------------

    def plan_returns(self, transaction: Transaction) -> list[ReturnPlan]:
        """Check every return line against its original order; no write happens here."""
        txn = transaction
        issues = [
            Issue(
                f"lines[{i}].original",
                "a return needs its original order (no-receipt returns "
                "are not supported by the Salesforce backend)",
            )
            for i, line in enumerate(txn.lines)
            if line.kind == "RETURN" and line.original is None
        ]
        if issues:
            raise Rejected(
                "unreferenced (no-receipt) returns cannot be posted to Salesforce Order "
                "Management: every returned line needs original.order_id; "
                + "; ".join(str(i) for i in issues),
                code="UNREFERENCED_RETURN",
                backend="salesforce",
            )
        groups: dict[str, list[tuple[int, LineItem]]] = {}
        for i, line in enumerate(txn.lines):
            if line.kind == "RETURN" and line.original is not None:
                groups.setdefault(line.original.order_id, []).append((i, line))
        tags = [f"{txn.transaction_id}#R{n}" for n in range(1, len(groups) + 1)]
        found, summaries = self._tagged_and_summaries(tags, list(groups))
        self.refuse_case_twins(tags, found)
        done = {tag: found[tag] for tag in tags if tag in found}
        plans = []
        for tag, (order_ref, lines) in zip(tags, groups.items(), strict=True):
            try:
                summary = summaries.get(order_ref) or self.summary(order_ref)
            except NotFound as exc:
                # The return itself exists; what it names does not: a refused return.
                raise Rejected(
                    f"the original order {order_ref!r} of the return is not in Salesforce",
                    code="ORIGINAL_ORDER_NOT_FOUND",
                    backend="salesforce",
                ) from exc
            value = sum((line.total for _, line in lines), _ZERO)
            if tag in done:
                # Submitted by an earlier attempt: its quantities are no longer returnable, so
                # only the remaining steps (credit memo, refund) may still be needed.
                plans.append(ReturnPlan(tag, summary, (), value, done[tag]))
                continue
            wanted = self._wanted(summary, lines)
            orphan = self._orphan(summary, wanted)
            if orphan is not None:
                # An earlier attempt's submit-return committed but its answer (or the tagging)
                # was lost: that change order is this return; finish it, never submit again.
                log.warning(
                    "return %s: change order %s was submitted by an earlier attempt; resuming",
                    tag,
                    orphan["Id"],
                )
                plans.append(ReturnPlan(tag, summary, (), value, {**orphan, _UNTAGGED: True}))
                continue
            self._check_window(txn, summary, order_ref)
            items, value = self._change_items(txn, summary, lines)
            plans.append(ReturnPlan(tag, summary, tuple(items), value))
        return plans

    def _wanted(
        self, summary: Mapping[str, Any], lines: list[tuple[int, LineItem]]
    ) -> dict[str, Decimal]:
        """Item summary id -> quantity this return takes from it (lines it cannot find are
        left to :meth:`_change_items` to refuse)."""
        ext = self._config.order_item_external_id_field
        items = product_items(summary)
        by_ext = {i.get(ext): i for i in items if i.get(ext)}
        by_number = {int(i.get("LineNumber") or 0): i for i in items}
        wanted: dict[str, Decimal] = {}
        for _, line in lines:
            original = line.original
            assert original is not None
            ois = by_ext.get(original.line_id) if original.line_id else None
            if ois is None and original.line_number is not None:
                ois = by_number.get(original.line_number)
            if ois is not None:
                wanted[ois["Id"]] = wanted.get(ois["Id"], _ZERO) + line.quantity
        return wanted

    def _orphan(
        self, summary: Mapping[str, Any], wanted: Mapping[str, Decimal]
    ) -> dict[str, Any] | None:
        """The untagged change order an earlier attempt of this return left, if any."""
        returned = {i["Id"]: as_decimal(i.get("QuantityReturned")) for i in product_items(summary)}
        if not wanted or all(returned.get(item, _ZERO) <= 0 for item in wanted):
            return None  # nothing of these lines was ever returned: nothing to find
        original = summary.get("OriginalOrderId")
        if not original:
            return None
        return self._ledger.untagged_change_order(str(original), wanted)

    def _tagged_and_summaries(
        self, tags: Sequence[str], order_refs: Sequence[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """:meth:`tagged_orders` (``exact=False``) and the summaries of ``order_refs`` in ONE
        composite call (the queries do not depend on each other). A summary whose answer is
        not plainly the order (none, several, a change order's) is left out: the caller asks
        :meth:`summary`, which looks further."""
        ext = self._config.order_external_id_field
        named = {
            "tags": soql(
                f"SELECT Id, OrderNumber, Description, {ext} FROM Order WHERE {ext} IN {{:in}}",
                list(tags),
            )
        }
        refs = list(order_refs)[:24]  # 25 subrequests per composite call
        for n, order_ref in enumerate(refs):
            named[f"s{n}"] = summary_query(self._config, summary_where(self._config, order_ref))
        answers = self._client.queries(named)
        summaries = {}
        for n, order_ref in enumerate(refs):
            rows = answers[f"s{n}"]
            if len(rows) == 1 and self._names(rows[0], order_ref):
                summaries[order_ref] = rows[0]
        return {row[ext]: row for row in answers["tags"]}, summaries

    def tagged_orders(
        self, tags: Sequence[str], *, exact: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Orders whose external id is one of ``tags`` (posted sales and submitted returns),
        by external id. SOQL compares text ignoring case; with ``exact`` (the default) only
        ids equal to a tag, case included, are kept: ``POS-a`` is not ``POS-A``."""
        if not tags:
            return {}
        ext = self._config.order_external_id_field
        rows = self._client.query(
            soql(
                f"SELECT Id, OrderNumber, Description, {ext} FROM Order WHERE {ext} IN {{:in}}",
                list(tags),
            )
        )
        wanted = set(tags)
        return {row[ext]: row for row in rows if not exact or row.get(ext) in wanted}

    def refuse_case_twins(self, ids: Sequence[str], found: Mapping[str, Mapping[str, Any]]) -> None:
        """Refuse, before anything is written, an id whose only match in ``found`` (rows of
        :meth:`tagged_orders` with ``exact=False``) differs in case, unless the org's
        external-id field is case-sensitive (then the two are different orders)."""
        ext = self._config.order_external_id_field
        for ident in ids:
            if ident in found:
                continue
            twin = twin_row(found.values(), ext, ident)
            if twin is not None and not self._case_sensitive_ids():
                raise case_collision(ident, twin[ext], twin.get("OrderNumber"), ext)

    def _case_sensitive_ids(self) -> bool:
        """Whether the order external-id field is case-sensitive (its describe's
        ``caseSensitive``; asked once, and only when a case twin was met)."""
        if self._case_sensitive is None:
            ext = self._config.order_external_id_field.lower()
            described = self._client.request(
                "GET", self._client.data_path("/sobjects/Order/describe"), context="describe Order"
            )
            fields = described.get("fields", []) if isinstance(described, dict) else []
            field = next((f for f in fields if str(f.get("name", "")).lower() == ext), {})
            self._case_sensitive = bool(field.get("caseSensitive"))
        return self._case_sensitive

    def _check_window(self, txn: Transaction, summary: Mapping[str, Any], ref: str) -> None:
        days = self._config.return_window_days
        placed = parse_datetime(summary.get("OrderedDate"))
        if not days or placed is None:
            return
        last_day = placed.date() + timedelta(days=days)
        if txn.created_at.date() > last_day:
            raise Rejected(
                f"order {summary.get('OrderNumber') or ref} was placed on {placed.date()} and "
                f"could be returned until {last_day} ({days} days); the return is dated "
                f"{txn.created_at.date()}",
                code="RETURN_WINDOW_EXPIRED",
                backend="salesforce",
            )

    def _change_items(
        self, txn: Transaction, summary: Mapping[str, Any], lines: list[tuple[int, LineItem]]
    ) -> tuple[list[dict[str, Any]], Decimal]:
        ext = self._config.order_item_external_id_field
        items = product_items(summary)
        by_ext = {i.get(ext): i for i in items if i.get(ext)}
        by_number = {int(i.get("LineNumber") or 0): i for i in items}
        wanted: dict[str, Decimal] = {}
        change: list[dict[str, Any]] = []
        issues: list[Issue] = []
        value = _ZERO
        for i, line in lines:
            original = line.original
            assert original is not None
            ois = by_ext.get(original.line_id) if original.line_id else None
            if ois is None and original.line_number is not None:
                ois = by_number.get(original.line_number)
            if ois is None:
                which = original.line_id or original.line_number
                issues.append(
                    Issue(
                        f"lines[{i}].original",
                        f"order {original.order_id} has no line {which!r}"
                        if which
                        else "give line_id or line_number",
                    )
                )
                continue
            wanted[ois["Id"]] = wanted.get(ois["Id"], _ZERO) + line.quantity
            available = as_decimal(ois.get("QuantityAvailableToReturn"))
            if wanted[ois["Id"]] > available:
                issues.append(
                    Issue(
                        f"lines[{i}].quantity",
                        f"returns {wanted[ois['Id']]} of line {ois.get('LineNumber')} but only "
                        f"{available} can be returned",
                    )
                )
                continue
            value += line.total
            change.append(
                {
                    "orderItemSummaryId": ois["Id"],
                    "quantity": line.quantity,
                    **change_reason(self._config, line.return_reason),
                    "shippingReductionFlag": False,
                }
            )
        if issues:
            # More than is returnable (or a line the original does not have) is a business
            # rule refusing the return, not malformed input: Rejected, as the SPI specifies.
            raise Rejected(
                "; ".join(str(issue) for issue in issues),
                code="RETURN_NOT_POSSIBLE",
                backend="salesforce",
            )
        return change, value

    def execute_return(self, plan: ReturnPlan) -> tuple[str, bool]:
        """Submit, tag, credit and refund one planned return, exactly once: a step an earlier
        attempt did (even one whose answer was lost) is found in the org, not done again.

        Returns (change order id, created).
        """
        summary_id = plan.summary["Id"]
        if plan.existing is None:
            change_id = self._submit(plan)
            state, created, resumed = "", True, False
        else:
            change_id = str(plan.existing["Id"])
            state = plan.existing.get("Description") or ""
            created, resumed = False, True
            if "refunded" not in state:
                log.info("return %s was started before (%s); resuming", plan.tag, state or "-")
        if plan.existing is None or plan.existing.get(_UNTAGGED):
            self._tag(plan.tag, change_id)
            state = state_text("submitted")
        memo = memo_of(state)
        if memo is None:
            memo = self._credit(plan, change_id, look_first=resumed)
            self._client.update(
                "Order", change_id, {"Description": state_text("credit memo", memo)}
            )
            state = state_text("credit memo", memo)
        if "refunded" not in state:
            self._refund(summary_id, memo, look_first=resumed)
            self._client.update("Order", change_id, {"Description": state_text("refunded", memo)})
        return change_id, created

    def _submit(self, plan: ReturnPlan) -> str:
        """submit-return; after a lost answer the change order it may have made is looked for."""
        summary_id = plan.summary["Id"]
        try:
            out = self._client.connect(
                f"{_OM}/{summary_id}/actions/submit-return",
                {"changeItems": list(plan.change_items)},
                context="submit-return",
            )
        except TransientBackendError:
            wanted: dict[str, Decimal] = {}
            for item in plan.change_items:
                key = item["orderItemSummaryId"]
                wanted[key] = wanted.get(key, _ZERO) + as_decimal(item["quantity"])
            found = self._quietly(
                lambda: self._ledger.untagged_change_order(
                    str(plan.summary.get("OriginalOrderId")), wanted
                )
            )
            if found is None:
                raise  # not committed (or cannot tell yet): the retry looks again
            log.warning("return %s: submit-return committed, answer lost", plan.tag)
            return str(found["Id"])
        return str(out.get("changeOrderId"))

    def _tag(self, tag: str, change_id: str) -> None:
        """Put the return's tag on its change order (what makes a retry find it)."""
        ext = self._config.order_external_id_field
        try:
            self._client.update(
                "Order", change_id, {ext: tag, "Description": state_text("submitted")}
            )
        except Conflict as exc:
            if exc.code != "DUPLICATE_VALUE":
                raise
            holder = self.tagged_orders([tag], exact=False)
            other = next((key for key in holder if key != tag), None)
            if other is None:
                raise
            raise case_collision(tag, other, holder[other].get("OrderNumber"), ext) from exc

    def _credit(self, plan: ReturnPlan, change_id: str, *, look_first: bool) -> str:
        """create-credit-memo for the change order, unless the org already holds its memo."""
        summary_id = plan.summary["Id"]
        if look_first:
            found = self._ledger.credit_memo(plan.summary, change_id)
            if found is not None:
                log.info("return %s: credit memo %s exists; not created again", plan.tag, found)
                return found
        try:
            out = self._client.connect(
                f"{_OM}/{summary_id}/actions/create-credit-memo",
                {"changeOrderIds": [change_id]},
                context="create-credit-memo",
            )
        except BackendError:
            # A lost answer (or a retry Salesforce refuses because the memo exists): look.
            found = self._quietly(lambda: self._ledger.credit_memo(plan.summary, change_id))
            if found is None:
                raise
            log.warning("return %s: credit memo %s was created, answer lost", plan.tag, found)
            return found
        return str(out.get("creditMemoId"))

    def _refund(self, summary_id: str, memo: str, *, look_first: bool) -> None:
        """ensure-refunds-async for the memo, unless its balance says it was refunded."""
        if look_first and self._refunded(memo):
            return
        try:
            self._client.connect(
                f"{_OM}/{summary_id}/async-actions/ensure-refunds-async",
                {"creditMemoId": memo},
                context="ensure-refunds-async",
            )
        except BackendError:
            if self._quietly(lambda: self._refunded(memo)):
                log.warning("refund of credit memo %s was requested, answer lost", memo)
                return
            raise

    def _refunded(self, memo: str) -> bool:
        balance = self._ledger.memo_balance(memo)
        return balance is not None and balance <= 0

    @staticmethod
    def _quietly(look: Callable[[], _T]) -> _T | None:
        """A reconciliation query after a failure; its own failure means "cannot tell"."""
        try:
            return look()
        except BackendError:
            return None

    # -- cancels ------------------------------------------------------------------------------

    def cancel_order(self, order_ref: str, reason: str) -> CancelResult:
        """Cancel all open quantity: FO lines first (cancel-item), then submit-cancel."""
        summary, open_lines = self._summary_and_open_lines(order_ref)
        for fo_id, lines in open_lines.items():
            self._cancel_fo_lines(
                fo_id, [(line["Id"], as_decimal(line["Quantity"])) for line in lines]
            )
            self._client.update(
                "FulfillmentOrder", fo_id, {"Status": self._config.status_canceled_value}
            )
        summary = self.summary(summary["Id"]) if open_lines else summary
        items = product_items(summary)
        change = [
            (item, as_decimal(item.get("QuantityAvailableToCancel")))
            for item in items
            if as_decimal(item.get("QuantityAvailableToCancel")) > 0
        ]
        if not change:
            raise Conflict(
                f"order {summary.get('OrderNumber')} has nothing left to cancel (everything is "
                "fulfilled, returned or cancelled)",
                code="NOTHING_TO_CANCEL",
                backend="salesforce",
            )
        self._submit_cancel(summary["Id"], [(item["Id"], qty) for item, qty in change], reason)
        remaining = sum((as_decimal(i.get("QuantityNetOrdered")) for i in items), _ZERO) - sum(
            (qty for _, qty in change), _ZERO
        )
        status = summary.get("Status")
        if remaining <= 0:
            status = self._config.status_canceled_value
            self._client.update("OrderSummary", summary["Id"], {"Status": status})
        return CancelResult(
            order_id=order_id_of(summary),
            cancelled=tuple(
                CancelLine(int(item["LineNumber"]), as_quantity(qty)) for item, qty in change
            ),
            status=status,
        )

    def cancel_items(
        self, order_ref: str, lines: Sequence[CancelLine], reason: str
    ) -> CancelResult:
        """Cancel quantities of lines: cancel-item where they sit on a fulfillment order, then
        submit-cancel so the order summary (and its payments) reflect it."""
        summary, open_lines = self._summary_and_open_lines(order_ref)
        by_number = {int(i.get("LineNumber") or 0): i for i in product_items(summary)}
        on_fo: dict[str, list[dict[str, Any]]] = {}
        for fo_lines in open_lines.values():
            for line in fo_lines:
                on_fo.setdefault(line["OrderItemSummaryId"], []).append(line)
        issues: list[Issue] = []
        plan: list[tuple[dict[str, Any], Decimal, Decimal]] = []
        for n, cancel in enumerate(lines):
            item = by_number.get(cancel.line_number)
            if item is None:
                raise NotFound(
                    f"lines[{n}].line_number: order {summary.get('OrderNumber')} has no line "
                    f"{cancel.line_number}",
                    code="LINE_NOT_FOUND",
                    backend="salesforce",
                )
            free = as_decimal(item.get("QuantityAvailableToCancel"))
            allocated = sum((as_decimal(x["Quantity"]) for x in on_fo.get(item["Id"], [])), _ZERO)
            if cancel.quantity > free + allocated:
                issues.append(
                    Issue(
                        f"lines[{n}].quantity",
                        f"cancels {cancel.quantity} but only {free + allocated} of line "
                        f"{cancel.line_number} is open",
                    )
                )
                continue
            plan.append((item, cancel.quantity, max(_ZERO, cancel.quantity - free)))
        if issues:
            # More than is open: a business rule refuses the cancel (the SPI's Rejected).
            raise Rejected(
                "; ".join(str(issue) for issue in issues),
                code="CANCEL_NOT_POSSIBLE",
                backend="salesforce",
            )
        by_fo: dict[str, list[tuple[str, Decimal]]] = {}
        for item, _, from_fo in plan:
            for line in on_fo.get(item["Id"], []):
                if from_fo <= 0:
                    break
                take = min(from_fo, as_decimal(line["Quantity"]))
                by_fo.setdefault(line["FulfillmentOrderId"], []).append((line["Id"], take))
                from_fo -= take
        for fo_id, to_cancel in by_fo.items():
            self._cancel_fo_lines(fo_id, to_cancel)
        self._submit_cancel(summary["Id"], [(item["Id"], qty) for item, qty, _ in plan], reason)
        return CancelResult(
            order_id=order_id_of(summary),
            cancelled=tuple(
                CancelLine(int(item["LineNumber"]), as_quantity(qty)) for item, qty, _ in plan
            ),
            status=summary.get("Status"),
        )

    def _summary_and_open_lines(
        self, order_ref: str
    ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """The order's summary and the open fulfillment-order lines of its items, in ONE call:
        a composite whose second query refers to the first one's answer. When the first answer
        is not plainly the order (none, several, a change order's), it falls back to
        :meth:`summary` and a query of its own."""
        found = self._client.queries(
            {
                "summary": summary_query(self._config, summary_where(self._config, order_ref)),
                "folines": (
                    "SELECT Id, FulfillmentOrderId, OrderItemSummaryId, Quantity "
                    "FROM FulfillmentOrderLineItem "
                    "WHERE OrderItemSummary.OrderSummaryId = '@{summary.records[0].Id}' "
                    f"AND Quantity > 0 AND TypeCode = 'Product' AND FulfillmentOrder.{_OPEN_FO}"
                ),
            },
            referring=["folines"],
        )
        rows = found["summary"]
        if len(rows) == 1 and self._names(rows[0], order_ref):
            summary = rows[0]
            items = {i["Id"] for i in product_items(summary)}
            grouped: dict[str, list[dict[str, Any]]] = {}
            for row in found["folines"]:
                if row.get("OrderItemSummaryId") in items:
                    grouped.setdefault(row["FulfillmentOrderId"], []).append(row)
            return summary, grouped
        summary = self.summary(order_ref)
        return summary, self._open_fo_lines([i["Id"] for i in product_items(summary)])

    def _open_fo_lines(self, item_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not item_ids:
            return {}
        rows = self._client.query(
            soql(
                "SELECT Id, FulfillmentOrderId, OrderItemSummaryId, Quantity "
                "FROM FulfillmentOrderLineItem WHERE OrderItemSummaryId IN {:in} AND Quantity > 0 "
                f"AND TypeCode = 'Product' AND FulfillmentOrder.{_OPEN_FO}",
                item_ids,
            )
        )
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            grouped.setdefault(row["FulfillmentOrderId"], []).append(row)
        return grouped

    def _cancel_fo_lines(self, fo_id: str, lines: list[tuple[str, Decimal]]) -> None:
        self._client.connect(
            f"{_FO}/{fo_id}/actions/cancel-item",
            {
                "fulfillmentOrderLineItemsToCancel": [
                    {"fulfillmentOrderLineItemId": line_id, "quantity": qty}
                    for line_id, qty in lines
                ]
            },
            context="cancel-item",
        )

    def _submit_cancel(
        self, summary_id: str, items: list[tuple[str, Decimal]], reason: str
    ) -> None:
        out = self._client.connect(
            f"{_OM}/{summary_id}/actions/submit-cancel",
            {
                "changeItems": [
                    {
                        "orderItemSummaryId": item_id,
                        "quantity": qty,
                        **change_reason(self._config, reason),
                        "shippingReductionFlag": True,
                    }
                    for item_id, qty in items
                ]
            },
            context="submit-cancel",
        )
        excess = as_decimal((out.get("changeBalances") or {}).get("totalExcessFundsAmount"))
        if excess > 0:
            # The POS took the money: cancelled goods are refunded from the captured funds.
            self._client.connect(
                f"{_OM}/{summary_id}/async-actions/ensure-refunds-async",
                {"excessFundsAmount": excess},
                context="ensure-refunds-async",
            )

    # -- fulfillment --------------------------------------------------------------------------

    def update_fulfillment(self, update: FulfillmentUpdate) -> None:
        """Write a store's step to the FulfillmentOrder (the seed's PATCH of ``Status``).

        * CANCEL (no-show, unavailable item): ``cancel-item`` for the given lines (all open
          lines when none are given), then ``Status = status_canceled_value`` once nothing is
          left open — the merchant's flow keys on that value;
        * REJECT (BOFIS: the store cannot fulfil): ``Status`` = the REJECT status, so Order
          Management re-routes it;
        * SHIPPED: ``Status``, plus a Shipment with the carrier and tracking number;
        * RECEIVED (ship to store): see :meth:`_receive`;
        * the others: ``Status`` as mapped by ``fulfillment_statuses``.
        """
        fo_id = update.fulfillment_order_id
        if not looks_like_id(fo_id):
            # Salesforce answers MALFORMED_ID (400) for it; for the POS it is an unknown order.
            raise NotFound(
                f"no Salesforce fulfillment order {fo_id!r}",
                code="FULFILLMENT_ORDER_NOT_FOUND",
                backend="salesforce",
            )
        if self._check_open(fo_id, update.action):
            return  # already there: a retry after a lost answer, nothing to do twice
        if update.action == FulfillmentAction.CANCEL:
            self._cancel_fulfillment(update)
            return
        if update.action == FulfillmentAction.RECEIVED:
            self._receive(update)
            return
        status = self._config.fulfillment_status(update.action)
        self._client.update("FulfillmentOrder", fo_id, {"Status": status})
        if update.action == FulfillmentAction.SHIPPED and (
            update.tracking_number or update.carrier
        ):
            self._create_shipment(update)

    def _check_open(self, fo_id: str, action: FulfillmentAction) -> bool:
        """Refuse a step on a fulfillment order that is no longer open (one query); True when
        the order already shows what this step would set (the same step again: a no-op).

        Salesforce lets any Status be PATCHed onto a FulfillmentOrder, so without this a
        pickup after a no-show cancel would silently reopen it as Picked Up.
        """
        rows = self._client.query(
            soql("SELECT Id, Status, StatusCategory FROM FulfillmentOrder WHERE Id = {}", fo_id)
        )
        if not rows:
            raise NotFound(
                f"no Salesforce fulfillment order {fo_id!r}",
                code="FULFILLMENT_ORDER_NOT_FOUND",
                backend="salesforce",
            )
        category = rows[0].get("StatusCategory")
        status = rows[0].get("Status")
        if action == FulfillmentAction.CANCEL:
            done = status == self._config.status_canceled_value
        elif action == FulfillmentAction.RECEIVED:
            done = False  # receipts add up: a second one is another parcel, never a no-op
        else:
            done = status == self._config.fulfillment_status(action)
        if done:
            return True
        if str(category or "").upper() in _CLOSED_FO_CATEGORIES:
            raise Conflict(
                f"fulfillment order {fo_id} is {rows[0].get('Status')} ({category}): "
                f"{action} does not follow",
                code="FULFILLMENT_ORDER_CLOSED",
                backend="salesforce",
            )
        return False

    def _fo_lines(self, fo_id: str, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
        fields = ", ".join(["Id", "Quantity", *extra])
        return self._client.query(
            soql(
                f"SELECT {fields} FROM FulfillmentOrderLineItem WHERE FulfillmentOrderId = {{}} "
                "AND TypeCode = 'Product'",
                fo_id,
            )
        )

    def _cancel_fulfillment(self, update: FulfillmentUpdate) -> None:
        fo_id = update.fulfillment_order_id
        lines = [(line.line_id, line.quantity) for line in update.lines]
        remaining: Decimal | None = None
        if not lines:
            rows = self._fo_lines(fo_id)
            lines = [
                (r["Id"], as_decimal(r["Quantity"])) for r in rows if as_decimal(r["Quantity"]) > 0
            ]
            remaining = _ZERO
        if lines:
            self._cancel_fo_lines(fo_id, lines)
        if remaining is None:
            remaining = sum((as_decimal(r["Quantity"]) for r in self._fo_lines(fo_id)), _ZERO)
        if remaining <= 0:
            self._client.update(
                "FulfillmentOrder", fo_id, {"Status": self._config.status_canceled_value}
            )

    def _create_shipment(self, update: FulfillmentUpdate) -> None:
        fo_id = update.fulfillment_order_id
        fo = self._client.get(
            "FulfillmentOrder",
            fo_id,
            [
                "OrderSummaryId",
                "FulfilledToName",
                "FulfilledToStreet",
                "FulfilledToCity",
                "FulfilledToState",
                "FulfilledToPostalCode",
                "FulfilledToCountry",
            ],
        )
        shipment = {
            "FulfillmentOrderId": fo_id,
            "OrderSummaryId": fo.get("OrderSummaryId"),
            "ShipToName": fo.get("FulfilledToName") or "Customer",
            "TrackingNumber": update.tracking_number,
            "Status": "Shipped",
            **carrier_fields(update.carrier),
        }
        for part in ("Street", "City", "State", "PostalCode", "Country"):
            if fo.get(f"FulfilledTo{part}"):
                shipment[f"ShipTo{part}"] = fo[f"FulfilledTo{part}"]
        self._client.create("Shipment", {k: v for k, v in shipment.items() if v is not None})

    def _receive(self, update: FulfillmentUpdate) -> None:
        """Ship to store: the parcel (or part of it) arrived in the store.

        With ``received_quantity_field`` configured, each line's field gets the quantity
        received added (more than expected is refused). Once everything is in — a receipt
        without lines, or the lines' totals reaching their quantities — the fulfillment
        order's Shipments become ``Delivered`` (with ``ActualDeliveryDate``) and its Status
        the RECEIVED status. A partial receipt leaves the Status alone."""
        fo_id = update.fulfillment_order_id
        field = self._config.received_quantity_field
        if update.lines and field is None:
            raise Rejected(
                "a partial ship-to-store receipt needs received_quantity_field (a number field "
                "on FulfillmentOrderLineItem that keeps the quantity received)",
                code="NO_RECEIVED_FIELD",
                backend="salesforce",
            )
        complete = True
        if field is not None:
            rows = {r["Id"]: r for r in self._fo_lines(fo_id, [field])}
            received = {line_id: as_decimal(r.get(field)) for line_id, r in rows.items()}
            wanted = {p.line_id: p.quantity for p in update.lines} or {
                line_id: as_decimal(r["Quantity"]) - received[line_id]
                for line_id, r in rows.items()
            }
            issues = []
            for index, (line_id, quantity) in enumerate(wanted.items()):
                row = rows.get(line_id)
                if row is None:
                    issues.append(
                        Issue(f"lines[{index}].line_id", f"{fo_id} has no line {line_id}")
                    )
                elif received[line_id] + quantity > as_decimal(row["Quantity"]):
                    issues.append(
                        Issue(
                            f"lines[{index}].quantity",
                            f"receives {quantity} of {line_id} but only "
                            f"{as_decimal(row['Quantity']) - received[line_id]} is expected",
                        )
                    )
            if issues:
                raise InvalidTransaction(issues, code="RECEIPT_NOT_POSSIBLE", backend="salesforce")
            changes = [
                (line_id, received[line_id] + quantity)
                for line_id, quantity in wanted.items()
                if quantity > 0
            ]
            self._update_lines(field, changes)
            received.update(dict(changes))
            complete = all(
                received[line_id] >= as_decimal(r["Quantity"]) for line_id, r in rows.items()
            )
        if not complete:
            return
        when = (update.occurred_at or datetime.now(UTC)).isoformat()
        shipments = self._client.query(
            soql(
                "SELECT Id FROM Shipment WHERE FulfillmentOrderId = {} AND Status != 'Delivered'",
                fo_id,
            )
        )
        for shipment in shipments:
            self._client.update(
                "Shipment", shipment["Id"], {"Status": "Delivered", "ActualDeliveryDate": when}
            )
        status = self._config.fulfillment_status(FulfillmentAction.RECEIVED)
        self._client.update("FulfillmentOrder", fo_id, {"Status": status})

    def _update_lines(self, field: str, changes: list[tuple[str, Decimal]]) -> None:
        for start in range(0, len(changes), 25):
            chunk = changes[start : start + 25]
            results = self._client.composite(
                [
                    {
                        "method": "PATCH",
                        "url": self._client.sobject_path("FulfillmentOrderLineItem", line_id),
                        "referenceId": f"line{n}",
                        "body": {field: quantity},
                    }
                    for n, (line_id, quantity) in enumerate(chunk)
                ],
                all_or_none=True,
            )
            for result in results.values():
                if not result.ok:
                    raise error_from(result.status, result.body, context="record receipt")
