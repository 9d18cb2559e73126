"""The order graph: every POS flow as one composite graph, amounts exact, limits enforced."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import attrs
import pytest
from sf_backend_helpers import (
    WHEN,
    D,
    cash,
    config,
    customer,
    delivery,
    line,
    online,
    pickup_later,
    promo,
    sale,
    tax,
    wallet,
)

from omsbridge import (
    Adjustment,
    AdjustmentType,
    CardTender,
    Charge,
    ChargeType,
    GiftCardTender,
    InvalidTransaction,
    LineItem,
    LineKind,
    OriginalLine,
    Transaction,
    TransactionKind,
)
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.graph import (
    DeliveryMethodRef,
    OrderGraph,
    OrderRefs,
    ProductRef,
    build_order_graph,
    prorate,
)

CFG = config()
METHODS = {
    m: DeliveryMethodRef(f"2Dm{i}", f"01tD{i}", f"01uD{i}")
    for i, m in enumerate(["IN_STORE-DEFAULT", "IN_STORE-PICKUP_LATER", "ONLINE-DEFAULT"])
}


def refs(*skus: str, card_gateway: str | None = None, cash_gateway: str | None = None) -> OrderRefs:
    return OrderRefs(
        account_id="001ACC",
        pricebook_id="01sPB",
        sales_channel_id="0bISC",
        delivery_methods=METHODS,
        products={s: ProductRef(f"01t{s}", f"01u{s}") for s in skus},
        card_gateway_id=card_gateway,
        cash_gateway_id=cash_gateway,
    )


def nodes(g: OrderGraph, sobject: str, method: str = "POST") -> list[dict[str, Any]]:
    return [n["body"] for n in g.nodes_of(sobject, method)]


def total_of(g: OrderGraph) -> Decimal:
    """What Salesforce will compute the order to be worth."""
    items = sum((b["TotalLineAmount"] for b in nodes(g, "OrderItem")), D(0))
    taxes = sum((b["Amount"] for b in nodes(g, "OrderItemTaxLineItem")), D(0))
    adjustments = sum((b["Amount"] for b in nodes(g, "OrderItemAdjustmentLineItem")), D(0))
    return items + taxes + adjustments


def paid(g: OrderGraph) -> Decimal:
    return sum((b["Amount"] for b in nodes(g, "Payment")), D(0))


def test_take_with_sale() -> None:
    t = sale([line(1, "A", "2", "10.00", taxes=(tax("1.60"),))])
    g = build_order_graph(t, refs("A"), CFG)
    refs_in_order = [n["referenceId"] for n in g.nodes]
    assert refs_in_order == ["ord", "odg0", "it0", "tx0_0", "pg", "pm0", "pay0", "act", "num"]
    order = g.node("ord")["body"]
    assert order["Status"] == "Draft"
    # Order has no OrderLifeCycleType: the lifecycle belongs to the OrderSummary (Connect).
    assert "OrderLifeCycleType" not in order
    assert order["POS_Transaction_Id__c"] == "T-1"
    assert order["SalesChannelId"] == "0bISC" and order["Pricebook2Id"] == "01sPB"
    assert order["EffectiveDate"] == "2026-11-20"
    assert order["OrderedDate"] == "2026-11-20T15:30:00.000Z"
    (odg,) = nodes(g, "OrderDeliveryGroup")
    assert odg["OrderDeliveryMethodId"] == "2Dm0" and odg["OrderId"] == "@{ord.id}"
    (item,) = nodes(g, "OrderItem")
    assert item["Type"] == "Order Product"
    assert item["OrderDeliveryGroupId"] == "@{odg0.id}"
    assert item["PricebookEntryId"] == "01uA" and item["Product2Id"] == "01tA"
    assert item["TotalLineAmount"] == D("20.00")
    assert item["POS_Line_Id__c"] == "T-1-1"
    (tax_line,) = nodes(g, "OrderItemTaxLineItem")
    assert tax_line["Rate"] == D("8.00") and tax_line["Type"] == "Actual"
    activate = g.node("act")
    assert activate["method"] == "PATCH" and activate["url"].endswith("/sobjects/Order/@{ord.id}")
    assert activate["body"] == {"Status": "Activated"}
    assert g.node("num")["method"] == "GET"
    assert total_of(g) == t.total == paid(g)


def test_pos_line_id_is_the_external_order_item_id() -> None:
    t = sale([line(1, "A", line_id="POS-LINE-77")])
    (item,) = nodes(build_order_graph(t, refs("A"), CFG), "OrderItem")
    assert item["POS_Line_Id__c"] == "POS-LINE-77"


def test_pickup_later_and_endless_aisle_use_their_delivery_methods() -> None:
    t = sale([line(1, "A", fulfillment=pickup_later())], customer=customer())
    (odg,) = nodes(build_order_graph(t, refs("A"), CFG), "OrderDeliveryGroup")
    assert odg["OrderDeliveryMethodId"] == "2Dm1"
    assert odg["DeliverToName"] == "Pat O'Brien"
    t = sale([line(1, "A", fulfillment=online())], customer=customer())
    (odg,) = nodes(build_order_graph(t, refs("A"), CFG), "OrderDeliveryGroup")
    assert odg["OrderDeliveryMethodId"] == "2Dm2"
    assert odg["DeliverToCity"] == "San Francisco" and odg["DeliverToPostalCode"] == "94105"
    assert odg["EmailAddress"] == "pat@example.com"


def test_mixed_cart_has_one_delivery_group_per_fulfillment() -> None:
    t = sale(
        [
            line(1, "A"),
            line(2, "B", fulfillment=online()),
            line(3, "C"),
            line(4, "D", fulfillment=pickup_later()),
        ],
        customer=customer(),
    )
    g = build_order_graph(t, refs("A", "B", "C", "D"), CFG)
    groups = nodes(g, "OrderDeliveryGroup")
    assert [grp["OrderDeliveryMethodId"] for grp in groups] == ["2Dm0", "2Dm2", "2Dm1"]
    items = nodes(g, "OrderItem")
    assert [i["OrderDeliveryGroupId"] for i in items] == [
        "@{odg0.id}",
        "@{odg1.id}",
        "@{odg0.id}",
        "@{odg2.id}",
    ]
    assert g.node("ord")["body"]["Name"] == "Pat O'Brien"


def test_delivery_charges_are_delivery_charge_items_in_their_group() -> None:
    t = sale(
        [line(1, "A"), line(2, "B", fulfillment=online())],
        customer=customer(),
        charges=(delivery("7.95", online()),),
    )
    g = build_order_graph(t, refs("A", "B"), CFG)
    charge = g.node("dc0")["body"]
    assert charge["Type"] == "Delivery Charge"
    assert charge["OrderDeliveryGroupId"] == "@{odg1.id}"
    assert charge["PricebookEntryId"] == "01uD2" and charge["Product2Id"] == "01tD2"
    assert charge["TotalLineAmount"] == D("7.95")
    assert total_of(g) == t.total == paid(g)


def test_service_charges_are_refused() -> None:
    t = sale([line(1, "A")], charges=(Charge(ChargeType.SERVICE, D("2.00")),))
    with pytest.raises(InvalidTransaction) as info:
        build_order_graph(t, refs("A"), CFG)
    assert info.value.issues[0].path == "charges[0].type"


def test_order_level_adjustments_are_prorated_exactly() -> None:
    t = sale(
        [line(1, "A", "1", "10.00"), line(2, "B", "1", "20.00"), line(3, "C", "1", "3.33")],
        adjustments=(promo("-10.00"),),
    )
    g = build_order_graph(t, refs("A", "B", "C"), CFG)
    (group,) = nodes(g, "OrderAdjustmentGroup")
    assert group["Type"] == "Header"
    parts = [b["Amount"] for b in nodes(g, "OrderItemAdjustmentLineItem")]
    assert sum(parts, D(0)) == D("-10.00")
    assert parts == [D("-3.00"), D("-6.00"), D("-1.00")]
    assert total_of(g) == t.total == paid(g)


def test_line_adjustments_use_a_split_line_group() -> None:
    off = Adjustment(AdjustmentType.DISCOUNT, D("-2.50"), description="Staff")
    t = sale(
        [line(1, "A", "1", "10.00", adjustments=(off,)), line(2, "B")],
        adjustments=(promo("-1.00"),),
    )
    g = build_order_graph(t, refs("A", "B"), CFG)
    groups = nodes(g, "OrderAdjustmentGroup")
    assert [grp["Type"] for grp in groups] == ["SplitLine", "Header"]
    assert g.node("al0_0")["body"]["Amount"] == D("-2.50")
    assert g.node("al0_0")["body"]["OrderItemId"] == "@{it0.id}"
    assert total_of(g) == t.total == paid(g)


def test_prorate() -> None:
    assert prorate(D("-0.05"), [D(1), D(1), D(1)], 2) == [D("-0.02"), D("-0.02"), D("-0.01")]
    assert prorate(D("10"), [D(0), D(0)], 0) == [D(5), D(5)]
    assert prorate(D("1.00"), [], 2) == []


def test_split_tender_card_and_cash_with_gateways() -> None:
    t = sale(
        [line(1, "A", "1", "100.00")],
        tenders=[
            CardTender(
                D("60.00"),
                brand="Mastercard",
                last4="5454",
                cardholder_name="Pat",
                expiry_month=12,
                expiry_year=2030,
                gateway_reference="GW-1",
            ),
            cash(D("40.00")),
        ],
    )
    g = build_order_graph(t, refs("A", card_gateway="0b0CARD", cash_gateway="0b0CASH"), CFG)
    (card,) = nodes(g, "CardPaymentMethod")
    assert card["ProcessingMode"] == "External" and card["CardType"] == "MasterCard"
    assert card["PaymentGatewayId"] == "0b0CARD"
    assert card["InputCardNumber"].endswith("5454") and card["GatewayToken"] == "GW-1"
    (wallet_node,) = nodes(g, "DigitalWallet")
    assert wallet_node["NickName"] == "Cash" and wallet_node["PaymentGatewayId"] == "0b0CASH"
    assert "Type" not in wallet_node  # no source confirms DigitalWallet.Type
    payments = nodes(g, "Payment")
    assert [p["Amount"] for p in payments] == [D("60.00"), D("40.00")]
    assert all(p["Status"] == "Processed" and p["ProcessingMode"] == "External" for p in payments)
    assert [p.get("PaymentGatewayId") for p in payments] == ["0b0CARD", "0b0CASH"]
    assert (
        payments[0]["PaymentMethodId"] == "@{pm0.id}"
        and payments[0]["PaymentGroupId"] == "@{pg.id}"
    )


def test_cash_without_gateway_has_none() -> None:
    t = sale([line(1, "A")], tenders=[cash(D("10.00"))])
    g = build_order_graph(t, refs("A"), CFG)
    (wallet_node,) = nodes(g, "DigitalWallet")
    assert "PaymentGatewayId" not in wallet_node
    assert "PaymentGatewayId" not in nodes(g, "Payment")[0]


def test_wallets_and_gift_cards_are_digital_wallets() -> None:
    t = sale(
        [line(1, "A", "1", "30.00")],
        tenders=[wallet(D("20.00")), GiftCardTender(D("10.00"), last4="9999")],
    )
    g = build_order_graph(t, refs("A"), CFG)
    wallets = nodes(g, "DigitalWallet")
    assert [w["NickName"] for w in wallets] == ["apple_pay", "Gift card ****9999"]
    assert all("Type" not in w for w in wallets)


def test_exchange_builds_the_sale_part_with_the_credit_as_a_payment() -> None:
    returned = LineItem(
        line_number=1,
        sku="R",
        quantity=D(1),
        unit_price=D("25.00"),
        kind=LineKind.RETURN,
        return_reason="Wrong Size",
        original=OriginalLine(order_id="00000100", line_number=1),
    )
    bought = line(2, "A", "1", "40.00")
    t = Transaction(
        transaction_id="EX-1",
        kind=TransactionKind.EXCHANGE,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=(returned, bought),
        total=D("15.00"),
        tenders=(CardTender(D("15.00"), brand="Visa", last4="4242"),),
    )
    g = build_order_graph(t, refs("A"), CFG, exchange_credit=D("25.00"))
    (item,) = nodes(g, "OrderItem")
    assert item["POS_Line_Id__c"] == "EX-1-2"
    assert [p["Amount"] for p in nodes(g, "Payment")] == [D("15.00"), D("25.00")]
    assert g.node("pmX")["body"]["NickName"] == "Exchange credit"
    assert total_of(g) == paid(g) == D("40.00")


def test_missing_reference_names_the_line() -> None:
    t = sale([line(1, "A"), line(2, "ZZZ")])
    with pytest.raises(InvalidTransaction) as info:
        build_order_graph(t, refs("A"), CFG)
    assert info.value.issues[0].path == "lines[1].sku"


def test_too_big_a_transaction_gets_a_clear_error() -> None:
    lines = [line(i, f"S{i}", taxes=(tax("0.40"), tax("0.40", None))) for i in range(1, 171)]
    t = sale(lines)
    with pytest.raises(InvalidTransaction) as info:
        build_order_graph(t, refs(*(f"S{i}" for i in range(1, 171))), CFG)
    assert info.value.code == "GRAPH_TOO_LARGE"
    assert "500" in str(info.value)


def test_node_kinds_stay_within_the_limit() -> None:
    t = sale(
        [
            line(1, "A", adjustments=(promo("-1.00"),), taxes=(tax("0.72"),)),
            line(2, "B", fulfillment=online()),
        ],
        customer=customer(),
        adjustments=(promo("-1.00"),),
        charges=(delivery("5.00", online()),),
        tenders=None,
    )
    total = t.total
    t = sale(
        list(t.lines),
        customer=customer(),
        adjustments=t.adjustments,
        charges=t.charges,
        tenders=[CardTender(total - D(5), brand="Visa", last4="1111"), cash(D(5))],
    )
    g = build_order_graph(t, refs("A", "B"), CFG)
    assert len(g.kinds()) <= 15
    assert total_of(g) == t.total == paid(g)


def test_graph_build_is_fast() -> None:
    t = sale(
        [line(i, f"S{i}", "2", "9.99", taxes=(tax("1.60"),)) for i in range(1, 6)],
        customer=customer(),
        adjustments=(promo("-5.00"),),
    )
    r = refs(*(f"S{i}" for i in range(1, 6)))
    build_order_graph(t, r, CFG)
    runs = 200
    started = time.process_time()
    for _ in range(runs):
        build_order_graph(t, r, CFG)
    per_build = (time.process_time() - started) / runs
    assert per_build < 0.0005 * 3, f"{per_build * 1000:.3f} ms"  # target 0.5 ms; slack for CI


def test_single_currency_org_is_the_default() -> None:
    g = build_order_graph(sale([line(1, "A")]), refs("A"), config(multi_currency=False))
    assert all("CurrencyIsoCode" not in n.get("body", {}) for n in g.nodes)
    assert attrs.fields(SalesforceConfig).multi_currency.default is False
    multi = build_order_graph(sale([line(1, "A")]), refs("A"), config(multi_currency=True))
    assert multi.node("ord")["body"]["CurrencyIsoCode"] == "USD"
