"""Order Management behaviour: activation, quantities, Connect actions, BOPIS seed data."""

from __future__ import annotations

from typing import Any

from sf_sandbox_helpers import Api, node, order_graph, post_graph, sale

from omsbridge_salesforce_sandbox import SalesforceSandbox
from omsbridge_salesforce_sandbox.faults import Fault

OS = "commerce/order-management/order-summaries"


def _item(api: Api, item_id: str) -> dict[str, Any]:
    return api.record("OrderItemSummary", item_id)


def _change(item_id: str, quantity: float, reason: str = "Wrong Item") -> dict[str, Any]:
    return {
        "changeItems": [
            {
                "orderItemSummaryId": item_id,
                "quantity": quantity,
                "reason": reason,
                "shippingReductionFlag": False,
            }
        ]
    }


def test_unmanaged_or_flowless_orders_get_no_summary_until_connect_creates_it(
    demo_app: Api,
) -> None:
    api = demo_app
    # Order has no OrderLifeCycleType field in Salesforce (it belongs to OrderSummary).
    refused_field = post_graph(api, order_graph(api.sandbox.demo, txn="U-0", lifecycle="UNMANAGED"))
    assert node(refused_field, 0, "refOrder")["body"][0] == {
        "message": "No such column 'OrderLifeCycleType' on sobject of type Order",
        "errorCode": "INVALID_FIELD",
    }
    api.sandbox.configure(auto_order_summary=False)  # the org's flow switched off
    unmanaged = sale(api, txn="U-1")
    assert unmanaged["summary_id"] is None
    created = api.post(OS, {"orderId": unmanaged["order_id"], "orderLifeCycleType": "UNMANAGED"})
    assert created.status_code == 201
    body = created.json()
    assert body == {"orderSummaryId": body["orderSummaryId"], "success": True, "errors": []}
    summary = api.record("OrderSummary", body["orderSummaryId"])
    assert summary["OrderLifeCycleType"] == "UNMANAGED"
    again = api.post(OS, {"orderId": unmanaged["order_id"]})
    assert again.status_code == 400
    error = again.json()[0]
    assert error["errorCode"] == "INVALID_API_INPUT"
    assert error["output"]["success"] is False and error["output"]["errors"][0]["message"]
    # Most actions refuse UNMANAGED summaries.
    refused = api.post(f"{OS}/{body['orderSummaryId']}/actions/submit-cancel", _change("x", 1))
    assert refused.status_code == 400 and "MANAGED" in refused.json()[0]["message"]
    draft = post_graph(api, order_graph(api.sandbox.demo, "d", txn="U-3", activate=False))
    draft_id = node(draft, 0, "refOrder")["body"]["id"]
    not_active = api.post(OS, {"orderId": draft_id})
    assert not_active.status_code == 400 and "activated" in not_active.json()[0]["message"]
    missing = api.post(OS, {})
    assert missing.status_code == 400
    assert missing.json()[0]["message"] == "Missing required input: orderId"


def test_cancel_preview_submit_and_quantity_bookkeeping(demo_app: Api) -> None:
    api = demo_app
    order = sale(api, txn="C-1", method="ONLINE-DEFAULT")
    tee = order["items"][0]["Id"]
    before = _item(api, tee)
    assert before["QuantityAvailableToCancel"] == 2.0 and before["Status"] == "ORDERED"
    preview = api.post(f"{OS}/{order['summary_id']}/actions/preview-cancel", _change(tee, 1))
    assert preview.status_code == 201
    body = preview.json()
    assert body["success"] is True and body["orderSummaryId"] == order["summary_id"]
    assert body["changeBalances"]["totalAdjustedProductAmount"] == 22.5  # (50 - 5) / 2
    assert set(body["changeBalances"]) >= {
        "grandTotalAmount",
        "totalExcessFundsAmount",
        "totalRefundableAmount",
        "totalTaxAmount",
    }
    assert _item(api, tee)["QuantityCanceled"] == 0.0  # preview changes nothing
    submitted = api.post(f"{OS}/{order['summary_id']}/actions/submit-cancel", _change(tee, 1))
    assert submitted.status_code == 201
    result = submitted.json()
    change_order = api.record("Order", result["changeOrderId"])
    assert change_order["RelatedOrderId"] == order["order_id"]
    assert change_order["IsReductionOrder"] is True and change_order["TotalAmount"] == -22.5
    after = _item(api, tee)
    assert (
        after["QuantityCanceled"],
        after["QuantityAvailableToCancel"],
        after["QuantityNetOrdered"],
    ) == (1.0, 1.0, 1.0)
    assert result["changeBalances"]["totalExcessFundsAmount"] > 0
    too_many = api.post(f"{OS}/{order['summary_id']}/actions/submit-cancel", _change(tee, 2))
    assert too_many.status_code == 400
    error = too_many.json()[0]
    assert (
        error["errorCode"] == "INVALID_API_INPUT" and "more than the quantity" in error["message"]
    )
    assert error["output"] == {
        "changeBalances": None,
        "changeOrderId": None,
        "success": False,
        "errors": [{"errorCode": "INVALID_API_INPUT", "message": error["message"]}],
    }
    assert _item(api, tee)["QuantityCanceled"] == 1.0
    unknown = api.post(f"{OS}/1Os000000000000AAA/actions/submit-cancel", _change(tee, 1))
    assert unknown.status_code == 404


def test_returns_need_fulfilled_quantity_then_credit_memo_and_refund(demo_app: Api) -> None:
    api = demo_app
    online = sale(api, txn="R-0", method="ONLINE-DEFAULT")
    tee_online = online["items"][0]["Id"]
    refused = api.post(f"{OS}/{online['summary_id']}/actions/submit-return", _change(tee_online, 1))
    assert refused.status_code == 400 and "available to return (0)" in refused.json()[0]["message"]
    store_sale = sale(api, txn="R-1")  # IN_STORE-DEFAULT: fulfilled at once
    tee = store_sale["items"][0]["Id"]
    summary = store_sale["summary_id"]
    preview = api.post(f"{OS}/{summary}/actions/preview-return", _change(tee, 1)).json()
    assert preview["success"] and preview["changeBalances"]["totalRefundableAmount"] > 0
    returned = api.post(f"{OS}/{summary}/actions/submit-return", _change(tee, 1))
    assert returned.status_code == 201
    change_id = returned.json()["changeOrderId"]
    item = _item(api, tee)
    assert item["QuantityReturned"] == 1.0 and item["QuantityAvailableToReturn"] == 1.0
    memo = api.post(f"{OS}/{summary}/actions/create-credit-memo", {"changeOrderIds": [change_id]})
    assert memo.status_code == 201
    memo_id = memo.json()["creditMemoId"]
    assert memo.json() == {"creditMemoId": memo_id, "success": True, "errors": []}
    credit = api.record("CreditMemo", memo_id)
    assert credit["TotalAmountWithTax"] == 24.5  # (50 - 5) / 2 + 4.00 tax / 2
    twice = api.post(f"{OS}/{summary}/actions/create-credit-memo", {"changeOrderIds": [change_id]})
    assert twice.status_code == 400
    refund = api.post(
        f"{OS}/{summary}/async-actions/ensure-refunds-async", {"creditMemoId": memo_id}
    )
    assert refund.status_code == 201
    assert set(refund.json()) == {"backgroundOperationId", "success", "errors"}
    refunds = api.rows(
        f"SELECT Amount, Status FROM Refund WHERE OrderPaymentSummary.OrderSummaryId = '{summary}'"
    )
    assert refunds == [{**refunds[0], "Amount": 24.5, "Status": "Processed"}]
    payment = api.rows(
        f"SELECT RefundedAmount FROM OrderPaymentSummary WHERE OrderSummaryId = '{summary}'"
    )[0]
    assert payment["RefundedAmount"] == 24.5
    again = api.post(
        f"{OS}/{summary}/async-actions/ensure-refunds-async", {"creditMemoId": memo_id}
    )
    assert again.status_code == 400
    neither = api.post(f"{OS}/{summary}/async-actions/ensure-refunds-async", {})
    assert neither.status_code == 400
    excess = api.post(
        f"{OS}/{summary}/async-actions/ensure-refunds-async", {"excessFundsAmount": 5000}
    )
    assert excess.status_code == 400


def test_cancel_then_refund_excess_funds(demo_app: Api) -> None:
    api = demo_app
    order = sale(api, txn="E-1", method="ONLINE-DEFAULT")
    belt = order["items"][1]["Id"]
    result = api.post(f"{OS}/{order['summary_id']}/actions/submit-cancel", _change(belt, 1)).json()
    excess = result["changeBalances"]["totalExcessFundsAmount"]
    assert excess == 48.6  # 45 + 8% tax
    refunded = api.post(
        f"{OS}/{order['summary_id']}/async-actions/ensure-refunds-async",
        {"excessFundsAmount": excess},
    )
    assert refunded.status_code == 201


def test_fulfillment_orders_cancel_items_invoice_and_funds(demo_app: Api) -> None:
    api = demo_app
    demo = api.sandbox.demo
    order = sale(api, txn="F-1", method="Store Pickup")
    summary = order["summary_id"]
    group = api.rows(f"SELECT Id FROM OrderDeliveryGroupSummary WHERE OrderSummaryId = '{summary}'")
    tee, belt = order["items"][0]["Id"], order["items"][1]["Id"]
    body = {
        "orderSummaryId": summary,
        "orderDeliveryGroupSummaryId": group[0]["Id"],
        "fulfillmentGroups": [
            {
                "fulfilledFromLocationId": demo["locations"]["store-001"],
                "fulfillmentType": "Retail Store",
                "orderItemSummaries": [
                    {"orderItemSummaryId": tee, "quantity": 2},
                    {"orderItemSummaryId": belt, "quantity": 1},
                ],
            }
        ],
    }
    too_many = {
        **body,
        "fulfillmentGroups": [
            {
                **body["fulfillmentGroups"][0],
                "orderItemSummaries": [{"orderItemSummaryId": tee, "quantity": 3}],
            }
        ],
    }
    assert api.post("commerce/fulfillment/fulfillment-orders", too_many).status_code == 400
    created = api.post("commerce/fulfillment/fulfillment-orders", body)
    assert created.status_code == 201
    fo_id = created.json()["fulfillmentOrderIds"][0]
    assert created.json() == {"fulfillmentOrderIds": [fo_id], "success": True, "errors": []}
    fo = api.rows(
        "SELECT Status, StatusCategory, FulfilledFromLocation.warehouseID__c, "
        "DeliveryMethod.Name, (SELECT Id, Quantity FROM FulfillmentOrderLineItems) "
        f"FROM FulfillmentOrder WHERE Id = '{fo_id}'"
    )[0]
    assert fo["Status"] == "Allocated" and fo["StatusCategory"] == "ACTIVATED"
    assert fo["FulfilledFromLocation"]["warehouseID__c"] == "store-001"
    assert fo["DeliveryMethod"]["Name"] == "Store Pickup"
    assert _item(api, tee)["QuantityAllocated"] == 2.0
    assert _item(api, tee)["QuantityAvailableToCancel"] == 0.0
    blocked = api.post(f"{OS}/{summary}/actions/submit-cancel", _change(tee, 1))
    assert blocked.status_code == 400  # allocated quantity must leave the FO first
    tee_line = next(
        r["Id"] for r in fo["FulfillmentOrderLineItems"]["records"] if r["Quantity"] == 2.0
    )
    over = api.post(
        f"commerce/fulfillment/fulfillment-orders/{fo_id}/actions/cancel-item",
        {
            "fulfillmentOrderLineItemsToCancel": [
                {"fulfillmentOrderLineItemId": tee_line, "quantity": 3}
            ]
        },
    )
    assert over.status_code == 400
    cancel = api.post(
        f"commerce/fulfillment/fulfillment-orders/{fo_id}/actions/cancel-item",
        {
            "fulfillmentOrderLineItemsToCancel": [
                {"fulfillmentOrderLineItemId": tee_line, "quantity": 1}
            ]
        },
    )
    assert cancel.status_code == 201 and cancel.json() == {"success": True, "errors": []}
    assert _item(api, tee)["QuantityAvailableToCancel"] == 1.0
    assert api.post(f"{OS}/{summary}/actions/submit-cancel", _change(tee, 1)).status_code == 201
    invoice = api.post(
        f"commerce/fulfillment/fulfillment-orders/{fo_id}/actions/create-invoice", {}
    )
    assert invoice.status_code == 201
    funds = api.post(
        f"{OS}/{summary}/async-actions/ensure-funds-async",
        # isAllowPartial is a required input (Connect guide, Ensure Funds Async Input).
        {"invoiceId": invoice.json()["invoiceId"], "isAllowPartial": False},
    )
    assert funds.status_code == 201 and funds.json()["success"] is True
    assert (
        api.patch(f"sobjects/FulfillmentOrder/{fo_id}", {"Status": "Fulfilled"}).status_code == 204
    )
    assert _item(api, belt)["QuantityFulfilled"] == 1.0
    assert _item(api, belt)["QuantityAvailableToReturn"] == 1.0
    closed = api.post(
        f"commerce/fulfillment/fulfillment-orders/{fo_id}/actions/cancel-item",
        {
            "fulfillmentOrderLineItemsToCancel": [
                {"fulfillmentOrderLineItemId": tee_line, "quantity": 1}
            ]
        },
    )
    assert closed.status_code == 400


def test_cancel_all_fo_lines_cancels_the_fulfillment_order(demo_app: Api) -> None:
    api = demo_app
    fo_id = api.sandbox.demo["orders"][1]["fulfillment_order_id"]
    lines = api.rows(
        f"SELECT Id, Quantity FROM FulfillmentOrderLineItem WHERE FulfillmentOrderId = '{fo_id}'"
    )
    response = api.post(
        f"commerce/fulfillment/fulfillment-orders/{fo_id}/actions/cancel-item",
        {
            "fulfillmentOrderLineItemsToCancel": [
                {"fulfillmentOrderLineItemId": r["Id"], "quantity": r["Quantity"]} for r in lines
            ]
        },
    )
    assert response.status_code == 201
    assert api.record("FulfillmentOrder", fo_id)["Status"] == "Cancelled"


def test_return_orders_and_return_items(demo_app: Api) -> None:
    api = demo_app
    order = sale(api, txn="RO-1")
    tee = order["items"][0]["Id"]
    over = api.post(
        "commerce/returns/return-orders",
        {
            "orderSummaryId": order["summary_id"],
            "returnOrderLifeCycleType": "Managed",
            "status": "Submitted",
            "returnOrderLineItems": [
                {
                    "orderItemSummaryId": tee,
                    "quantityExpected": 3,
                    "reasonForReturn": "Damaged",
                    "canReduceShipping": False,
                }
            ],
        },
    )
    assert over.status_code == 400
    created = api.post(
        "commerce/returns/return-orders",
        {
            "orderSummaryId": order["summary_id"],
            "returnOrderLifeCycleType": "Managed",
            "status": "Submitted",
            "returnOrderLineItems": [
                {
                    "orderItemSummaryId": tee,
                    "quantityExpected": "2",
                    "quantityReceived": "0",
                    "reasonForReturn": "Damaged",
                    "canReduceShipping": False,
                }
            ],
        },
    )
    assert created.status_code == 201
    return_id = created.json()["returnOrderId"]
    assert _item(api, tee)["QuantityReturnInitiated"] == 2.0
    assert _item(api, tee)["QuantityAvailableToReturn"] == 0.0
    line = api.rows(f"SELECT Id FROM ReturnOrderLineItem WHERE ReturnOrderId = '{return_id}'")[0]
    processed = api.post(
        f"commerce/returns/return-orders/{return_id}/actions/return-items",
        {
            "returnOrderItems": [
                {
                    "returnOrderLineItemId": line["Id"],
                    "quantityReturned": "1",
                    "quantityReceived": "1",
                    "quantityToCancel": "0",
                    "quantityRejected": "0",
                }
            ]
        },
    )
    assert processed.status_code == 201
    body = processed.json()
    assert body["success"] is True and body["changeOrderId"]
    assert len(body["returnLineItemSplits"]) == 1
    item = _item(api, tee)
    assert (item["QuantityReturned"], item["QuantityReturnInitiated"]) == (1.0, 1.0)
    again = api.post(
        f"commerce/returns/return-orders/{return_id}/actions/return-items",
        {"returnOrderItems": [{"returnOrderLineItemId": line["Id"], "quantityReturned": "1"}]},
    )
    assert again.status_code == 400
    memo = api.post(
        f"{OS}/{order['summary_id']}/actions/create-credit-memo",
        {"changeOrderIds": [body["changeOrderId"]]},
    )
    assert memo.status_code == 201


def test_demo_org_has_bopis_orders_at_stores(sf_sandbox_demo: Any) -> None:
    sandbox: SalesforceSandbox = sf_sandbox_demo.sandbox
    demo = sandbox.demo
    assert sandbox.credentials["username"] == "integration@omsbridge.sandbox"
    bopis = [o for o in demo["orders"] if o["kind"] == "BOPIS"]
    assert {o["store_id"] for o in bopis} == {"store-001", "store-002"}
    with sf_sandbox_demo.client() as http:
        api = Api(http, sandbox)
        rows = api.rows(
            "SELECT Id, Status, DeliveryMethod.Name, FulfilledFromLocation.warehouseID__c, "
            "OrderSummary.OrderNumber FROM FulfillmentOrder "
            "WHERE DeliveryMethod.Name = 'Store Pickup' ORDER BY FulfilledFromLocation.Name"
        )
        assert [r["FulfilledFromLocation"]["warehouseID__c"] for r in rows] == [
            "store-001",
            "store-002",
        ]
        assert all(r["Status"] == "Allocated" for r in rows)
        skus = {r["StockKeepingUnit"] for r in api.rows("SELECT StockKeepingUnit FROM Product2")}
        assert {"TEE-BLK-M", "SNK-RUN-42"} <= skus
        standard = api.rows("SELECT Id FROM Pricebook2 WHERE IsStandard = true")
        assert [r["Id"] for r in standard] == [demo["standard_pricebook_id"]]
        methods = {r["Name"] for r in api.rows("SELECT Name FROM OrderDeliveryMethod")}
        assert {"IN_STORE-DEFAULT", "IN_STORE-PICKUP_LATER", "ONLINE-DEFAULT"} <= methods
        assert api.rows(
            "SELECT PaymentGatewayName FROM PaymentGateway WHERE PaymentGatewayName = 'CashPOS'"
        )
        shipped = next(o for o in demo["orders"] if o["kind"] == "SHIPPED")
        item = api.rows(
            "SELECT QuantityAvailableToReturn FROM OrderItemSummary WHERE "
            f"OrderSummaryId = '{shipped['order_summary_id']}' AND TypeCode = 'Product'"
        )
        assert item[0]["QuantityAvailableToReturn"] == 1.0  # BORIS-ready


def test_order_rules(demo_app: Api) -> None:
    api = demo_app
    demo = api.sandbox.demo
    graph = order_graph(demo, txn="X-1", activate=False)
    result = post_graph(api, graph)
    order_id = node(result, 0, "refOrder")["body"]["id"]
    odg = node(result, 0, "refOdg")["body"]["id"]
    other_book = api.rows(
        "SELECT Id FROM PricebookEntry WHERE Pricebook2.IsStandard = true AND "
        "Product2.StockKeepingUnit = 'TEE-BLK-M'"
    )[0]["Id"]
    wrong_book = api.post(
        "sobjects/OrderItem",
        {
            "OrderId": order_id,
            "PricebookEntryId": other_book,
            "Quantity": 1,
            "UnitPrice": 25,
            "OrderDeliveryGroupId": odg,
        },
    )
    assert wrong_book.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    wrong_product = api.post(
        "sobjects/OrderItem",
        {
            "OrderId": order_id,
            "PricebookEntryId": demo["pricebook_entries"]["TEE-BLK-M"],
            "Product2Id": demo["products"]["TOTE-CNV"],
            "Quantity": 1,
            "UnitPrice": 25,
        },
    )
    assert wrong_product.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    bad_type = api.post(
        "sobjects/OrderItem",
        {
            "OrderId": order_id,
            "PricebookEntryId": demo["pricebook_entries"]["TEE-BLK-M"],
            "Quantity": 1,
            "UnitPrice": 25,
            "Type": "Gift",
        },
    )
    assert bad_type.json() == [
        {
            "message": "Type: bad value for restricted picklist field: Gift",
            "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "fields": ["Type"],
        }
    ]
    assert api.patch(f"sobjects/Order/{order_id}", {"Status": "Activated"}).status_code == 204
    late = api.post(
        "sobjects/OrderItem",
        {
            "OrderId": order_id,
            "PricebookEntryId": demo["pricebook_entries"]["TEE-BLK-M"],
            "Quantity": 1,
            "UnitPrice": 25,
        },
    )
    assert late.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    back = api.patch(f"sobjects/Order/{order_id}", {"Status": "Draft"})
    assert back.status_code == 400
    summary = api.rows(f"SELECT Id FROM OrderSummary WHERE OriginalOrderId = '{order_id}'")
    insert = api.post("sobjects/OrderSummary", {"OriginalOrderId": order_id})
    assert insert.status_code == 400 and summary


def test_a_refund_failing_at_the_gateway_shows_only_as_a_process_exception_event(
    demo_app: Api,
) -> None:
    api = demo_app
    order = sale(api, txn="E-2", method="ONLINE-DEFAULT")
    belt = order["items"][1]["Id"]
    result = api.post(f"{OS}/{order['summary_id']}/actions/submit-cancel", _change(belt, 1)).json()
    excess = result["changeBalances"]["totalExcessFundsAmount"]
    api.sandbox.faults.add(Fault("gateway", path="*/async-actions/ensure-refunds-async", count=1))
    answer = api.post(
        f"{OS}/{order['summary_id']}/async-actions/ensure-refunds-async",
        {"excessFundsAmount": excess},
    )
    # The caller hears success: the failure comes later, as an event only.
    assert answer.status_code == 201 and answer.json()["success"] is True
    operation = answer.json()["backgroundOperationId"]
    payment = api.rows(
        "SELECT RefundedAmount FROM OrderPaymentSummary "
        f"WHERE OrderSummaryId = '{order['summary_id']}'"
    )[0]
    assert payment["RefundedAmount"] == 0  # no money moved
    failures = api.sandbox.events.retained("/event/ProcessExceptionEvent")
    assert len(failures) == 1
    event = failures[0].payload
    assert event["OrderSummaryId"] == order["summary_id"]
    assert event["AttachedToId"] == order["summary_id"]  # excess funds: the summary itself
    assert event["BackgroundOperationId"] == operation
    assert event["ExceptionType"] == "Payment" and event["Message"]
    # The rule was used up: the next refund goes through.
    again = api.post(
        f"{OS}/{order['summary_id']}/async-actions/ensure-refunds-async",
        {"excessFundsAmount": excess},
    )
    assert again.status_code == 201
    assert len(api.sandbox.events.retained("/event/ProcessExceptionEvent")) == 1
