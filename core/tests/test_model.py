"""Every invariant of the model, each with the path and message its error gives."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from omsbridge import wire
from omsbridge.errors import InvalidTransaction
from omsbridge.model import (
    CancelLine,
    FulfillmentAction,
    FulfillmentLine,
    FulfillmentUpdate,
    LineItem,
    OrderLine,
    OrderQuery,
    Transaction,
)


def issues(data: dict) -> list[str]:
    with pytest.raises(InvalidTransaction) as info:
        wire.structure(data, Transaction)
    return [str(i) for i in info.value.issues]


def test_examples_build(example):
    txn = wire.structure(example("mixed-cart"), Transaction)
    assert txn.total == Decimal("231.56")
    assert [f.method_name for f in txn.fulfillment_groups()] == [
        "IN_STORE-DEFAULT",
        "ONLINE-DEFAULT",
        "IN_STORE-PICKUP_LATER",
    ]


def test_negative_quantity_names_the_line(example):
    data = example("mixed-cart")
    data["lines"][2]["quantity"] = -1
    assert "lines[2].quantity: must be > 0, got -1" in issues(data)


def test_total_must_add_up(example):
    data = example("sale-card")
    data["total"] = "100.00"
    found = issues(data)
    assert "total: is 100.00 but lines, adjustments and charges add up to 179.24" in found


def test_tenders_must_cover_total(example):
    data = example("sale-split-tender")
    data["tenders"][1]["amount"] = "100.00"
    assert "tenders: add up to 150.00 but the total is 205.31" in issues(data)


def test_refund_tender_has_sign_of_total(example):
    data = example("return-no-receipt")
    data["tenders"] = [
        {"type": "cash", "amount": "-20.00"},
        {"type": "cash", "amount": "3.71"},
    ]
    assert "tenders[1].amount: 3.71 has the opposite sign of the total -16.29" in issues(data)


def test_return_quantity_capped_by_original(example):
    data = example("return-with-receipt")
    data["lines"][0]["original"]["purchased_quantity"] = "0.5"
    assert "lines[0].quantity: returns 1 but only 0.5 were bought on the original line" in issues(
        data
    )


def test_return_line_needs_reason(example):
    data = example("return-no-receipt")
    del data["lines"][0]["return_reason"]
    assert "lines[0].return_reason: is required" in issues(data)


def test_sale_line_cannot_carry_original(example):
    data = example("sale-card")
    data["lines"][0]["original"] = {"order_id": "X"}
    assert "lines[0].original: only a RETURN line has an original" in issues(data)


def test_kinds_must_match_lines(example):
    data = example("exchange")
    data["kind"] = "SALE"
    assert "kind: a SALE has only SALE lines; use EXCHANGE to mix in returns" in issues(data)
    data = example("sale-card")
    data["kind"] = "EXCHANGE"
    assert "kind: an EXCHANGE needs at least one SALE line and one RETURN line" in issues(data)


def test_duplicate_line_numbers(example):
    data = example("sale-card")
    data["lines"][1]["line_number"] = 1
    assert "lines[1].line_number: 1 is already used by lines[0]" in issues(data)


def test_timestamps_must_be_aware(example):
    data = example("sale-cash")
    data["created_at"] = "2026-11-22T10:02:11"
    assert any(i.startswith("created_at: must include a timezone offset") for i in issues(data))


def test_money_is_never_float(example):
    data = example("sale-cash")
    data["total"] = 43.43
    assert issues(data) == [
        'total: expected a decimal number such as "12.50", got a float (43.43), which cannot '
        "hold money exactly"
    ]


def test_currency_precision(example):
    data = example("sale-cash")
    data["lines"][0]["unit_price"] = "19.999"
    assert "lines[0].unit_price: must have at most 2 decimal places, got 19.999" in issues(data)


def test_currency_code(example):
    data = example("sale-cash")
    data["currency"] = "usd"
    assert "currency: must be an ISO 4217 code such as USD, got 'usd'" in issues(data)


def test_card_last4(example):
    data = example("sale-card")
    data["tenders"][0]["last4"] = "42"
    assert "tenders[0].last4: must be exactly 4 digits, got '42'" in issues(data)


def test_cash_change_consistent(example):
    data = example("sale-cash")
    data["tenders"][0]["change"] = "1.00"
    assert any(i.startswith("tenders[0].change: tendered 50.00 minus change") for i in issues(data))


def test_unknown_tender_type(example):
    data = example("sale-cash")
    data["tenders"][0]["type"] = "cheque"
    assert issues(data) == [
        "tenders[0].type: must be one of card, cash, digital_wallet, gift_card, got 'cheque'"
    ]


def test_unknown_field_is_refused(example):
    data = example("sale-cash")
    data["lines"][0]["colour"] = "red"
    assert issues(data) == ["lines[0].colour: unknown field"]


def test_missing_fields_all_reported():
    assert issues({}) == [
        f"{name}: is required"
        for name in (
            "transaction_id",
            "kind",
            "created_at",
            "currency",
            "store_id",
            "lines",
            "total",
        )
    ]


def test_discount_cannot_exceed_line(example):
    data = example("sale-with-adjustments")
    data["lines"][1]["adjustments"][0] = {"type": "DISCOUNT", "amount": "-50.00"}
    assert "lines[1].adjustments: discounts -50.00 exceed the line subtotal 45.00" in issues(data)


def test_discount_must_be_negative_and_override_needs_reason(example):
    data = example("sale-with-adjustments")
    data["lines"][0]["adjustments"][0]["amount"] = "12.00"
    del data["lines"][1]["adjustments"][0]["reason"]
    found = issues(data)
    assert "lines[0].adjustments[0].amount: must be <= 0 (a discount), got 12.00" in found


def test_override_needs_reason(example):
    data = example("sale-with-adjustments")
    del data["lines"][1]["adjustments"][0]["reason"]
    assert "lines[1].adjustments[0].reason: is required" in issues(data)


def test_deferred_fulfillment_needs_customer(example):
    data = example("endless-aisle")
    del data["customer"]
    assert "customer: is required when goods are fulfilled later (lines[0] is ONLINE-DEFAULT)" in (
        issues(data)
    )


def test_online_needs_address_and_ship_to_store_needs_store(example):
    data = example("endless-aisle")
    del data["lines"][0]["fulfillment"]["ship_to"]
    assert "lines[0].fulfillment.ship_to: is required for ONLINE fulfillment" in issues(data)
    data = example("ship-to-store")
    del data["lines"][0]["fulfillment"]["store_id"]
    assert "lines[0].fulfillment.store_id: is required" in issues(data)


def test_customer_email_checked(example):
    data = example("sale-card")
    data["customer"]["email"] = "not-an-email"
    assert "customer.email: must be an email address, got 'not-an-email'" in issues(data)


def test_anonymous_sale_allowed(example):
    txn = wire.structure(example("sale-cash"), Transaction)
    assert txn.customer is None


def test_direct_construction_checks_too():
    with pytest.raises(InvalidTransaction, match=r"quantity: must be > 0, got -1"):
        LineItem(line_number=1, sku="A", quantity=Decimal(-1), unit_price=Decimal(1))
    with pytest.raises(InvalidTransaction, match="must be a decimal number, got a float"):
        LineItem(line_number=1, sku="A", quantity=Decimal(1), unit_price=1.5)  # type: ignore[arg-type]


def test_transaction_is_frozen(example):
    txn = wire.structure(example("sale-cash"), Transaction)
    with pytest.raises(AttributeError):
        txn.total = Decimal(0)  # type: ignore[misc]


def test_zero_minor_unit_currency(example):
    data = copy.deepcopy(example("sale-cash"))
    data["currency"] = "JPY"
    found = issues(data)
    assert "lines[0].unit_price: must have at most 0 decimal places, got 19.99" in found


def test_order_query_needs_a_criterion_and_sane_range():
    with pytest.raises(InvalidTransaction, match="give at least one of"):
        OrderQuery()
    now = datetime.now(UTC)
    with pytest.raises(InvalidTransaction, match="placed_to: must not be before placed_from"):
        OrderQuery(placed_from=now, placed_to=now - timedelta(days=1))
    with pytest.raises(InvalidTransaction, match="page_size: must be 1-200, got 0"):
        OrderQuery(email="a@b.co", page_size=0)
    assert OrderQuery(last_name="Doe").criteria == {"last_name": "Doe"}


def test_order_line_quantities():
    line = OrderLine(
        1,
        "A",
        Decimal(3),
        Decimal(10),
        Decimal(30),
        quantity_fulfilled=Decimal(2),
        quantity_cancelled=Decimal(1),
    )
    assert line.quantity_open == 0 and line.quantity_returnable == 2
    with pytest.raises(InvalidTransaction, match="exceed ordered 3"):
        OrderLine(
            1,
            "A",
            Decimal(3),
            Decimal(10),
            Decimal(30),
            quantity_cancelled=Decimal(2),
            quantity_returned=Decimal(2),
        )


def test_fulfillment_update_rules():
    with pytest.raises(InvalidTransaction, match="reason: is required"):
        FulfillmentUpdate("FO1", FulfillmentAction.CANCEL)
    with pytest.raises(InvalidTransaction, match="only CANCEL and RECEIVED apply to part"):
        FulfillmentUpdate("FO1", FulfillmentAction.PACK, lines=(FulfillmentLine("L1", Decimal(1)),))
    partial = FulfillmentUpdate(
        "FO1",
        FulfillmentAction.CANCEL,
        lines=(FulfillmentLine("L1", Decimal(1)),),
        reason="no-show",
    )
    assert partial.lines[0].quantity == 1
    with pytest.raises(InvalidTransaction, match="quantity: must be > 0"):
        CancelLine(1, Decimal(0))
