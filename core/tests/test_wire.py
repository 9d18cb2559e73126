"""The native JSON format: round trips, and malformed input always gives a named error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omsbridge import wire
from omsbridge.errors import InvalidTransaction
from omsbridge.model import (
    Address,
    Adjustment,
    AdjustmentType,
    CardTender,
    CashTender,
    Customer,
    DigitalWalletTender,
    Fulfillment,
    FulfillmentType,
    GiftCardTender,
    LineItem,
    LineKind,
    OriginalLine,
    TaxLine,
    Transaction,
    TransactionKind,
)

CENT = Decimal("0.01")
money = st.decimals(min_value=0, max_value=2000, places=2, allow_nan=False, allow_infinity=False)
text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
).filter(lambda s: s.strip() != "")
ident = st.from_regex(r"[A-Z][A-Z0-9\-]{0,10}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30))]
    ),
)
addresses = st.builds(
    Address,
    line1=text,
    city=text,
    country=st.sampled_from(["US", "CA", "FR"]),
    postal_code=st.none() | ident,
)
customers = st.builds(
    Customer,
    customer_id=st.none() | ident,
    email=st.just("jane@example.com"),
    first_name=st.none() | text,
    last_name=st.none() | text,
)
fulfillments = st.one_of(
    st.just(Fulfillment()),
    st.builds(
        Fulfillment,
        type=st.just(FulfillmentType.IN_STORE),
        subtype=st.just("PICKUP_LATER"),
        store_id=ident,
    ),
    st.builds(
        Fulfillment,
        type=st.just(FulfillmentType.ONLINE),
        ship_to=addresses,
        shipping_method=st.none() | ident,
    ),
    st.builds(Fulfillment, type=st.just(FulfillmentType.SHIP_TO_STORE), store_id=ident),
)


@st.composite
def lines(draw: st.DrawFn, number: int, kind: LineKind) -> LineItem:
    qty = Decimal(draw(st.integers(1, 5)))
    price = draw(money)
    subtotal = qty * price
    discount = (
        draw(st.decimals(min_value=0, max_value=subtotal, places=2)) if subtotal else Decimal(0)
    )
    adjustments = (
        (Adjustment(AdjustmentType.PROMOTION, -discount, promotion_id="P1"),) if discount else ()
    )
    taxes = tuple(TaxLine(draw(text), draw(money)) for _ in range(draw(st.integers(0, 2))))
    if kind == LineKind.RETURN:
        original = draw(
            st.none()
            | st.builds(
                OriginalLine,
                order_id=ident,
                line_number=st.integers(1, 9),
                purchased_quantity=st.just(qty + 1),
            )
        )
        return LineItem(
            number,
            draw(ident),
            qty,
            price,
            name=draw(st.none() | text),
            kind=kind,
            taxes=taxes,
            adjustments=adjustments,
            return_reason=draw(text),
            original=original,
        )
    return LineItem(
        number,
        draw(ident),
        qty,
        price,
        name=draw(st.none() | text),
        taxes=taxes,
        adjustments=adjustments,
        fulfillment=draw(fulfillments),
        line_id=draw(st.none() | ident.map(lambda i: f"{i}-{number}")),  # unique per line
    )


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    kind = draw(st.sampled_from(list(TransactionKind)))
    kinds = {
        TransactionKind.SALE: [LineKind.SALE],
        TransactionKind.RETURN: [LineKind.RETURN],
        TransactionKind.EXCHANGE: [LineKind.RETURN, LineKind.SALE],
    }[kind]
    count = draw(st.integers(len(kinds), 5))
    line_kinds = kinds + [draw(st.sampled_from(kinds)) for _ in range(count - len(kinds))]
    items = tuple(draw(lines(i + 1, k)) for i, k in enumerate(line_kinds))
    total = sum((line.signed_total for line in items), Decimal(0))
    tenders: list[Any] = []
    if total != 0:
        first = (total / 2).quantize(CENT) if draw(st.booleans()) else total
        makers = [
            lambda a: CashTender(a),
            lambda a: CardTender(a, brand="VISA", last4="4242", auth_code="A1"),
            lambda a: DigitalWalletTender(a, wallet="APPLE_PAY"),
            lambda a: GiftCardTender(a, last4="7731"),
        ]
        tenders.append(draw(st.sampled_from(makers))(first))
        if total - first:
            tenders.append(draw(st.sampled_from(makers))(total - first))
    return Transaction(
        transaction_id=draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,20}", fullmatch=True)),
        kind=kind,
        created_at=draw(times),
        currency="USD",
        store_id=draw(ident),
        lines=items,
        total=total,
        tenders=tuple(tenders),
        customer=draw(customers),
        order_number=draw(st.none() | ident),
        attributes=draw(st.dictionaries(ident, text, max_size=2)),
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(transactions())
def test_valid_transaction_round_trips_unchanged(txn: Transaction) -> None:
    text = wire.dumps(txn)
    again = wire.loads(text, Transaction)
    assert again == txn
    assert wire.dumps(again) == text
    assert "e" not in json.loads(text)["total"].lower()  # amounts never in exponent form


def test_examples_survive_a_round_trip(example):
    for name in ("mixed-cart", "exchange", "sale-split-tender", "endless-aisle"):
        txn = wire.structure(example(name), Transaction)
        canonical = wire.dumps(txn)
        assert wire.loads(canonical, Transaction) == txn
        assert wire.dumps(wire.loads(canonical, Transaction)) == canonical


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    data = wire.unstructure(draw(transactions()))
    for _ in range(draw(st.integers(1, 3))):
        node = data
        path = []
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            path.append((node, key))
            node = node[key]
        if not path:
            return draw(json_values)
        parent, key = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[key] = draw(json_values)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=5))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return data


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_malformed_input_gives_named_error_never_a_crash(data: Any) -> None:
    try:
        wire.structure(data, Transaction)
    except InvalidTransaction as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.message.strip()
            assert "Traceback" not in issue.message


@given(st.binary(max_size=60) | st.text(max_size=60))
def test_garbage_text_gives_named_error(raw: Any) -> None:
    try:
        wire.loads(raw, Transaction)
    except InvalidTransaction as exc:
        assert exc.issues


def test_not_a_number_is_refused(example):
    text = json.dumps(example("sale-cash")).replace('"43.43"', "NaN", 1)
    with pytest.raises(InvalidTransaction, match="NaN is not a number JSON allows"):
        wire.loads(text, Transaction)


def test_json_numbers_become_decimals(example):
    text = json.dumps(example("sale-cash")).replace('"43.43"', "43.43", 1)
    txn = wire.loads(text, Transaction)
    assert isinstance(txn.total, Decimal) and txn.total == Decimal("43.43")
