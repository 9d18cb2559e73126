"""Property: every input is either a valid, exactly consistent transaction, or refused with
InvalidTransaction whose every problem names a path in the format's words. No other exception.

CI runs a fixed, derandomised sample (a few seconds); ``nox -s fuzz`` runs the same properties
with many more random examples (``OMSBRIDGE_FUZZ_EXAMPLES``, default there 20,000).
"""

from __future__ import annotations

import copy
import json
import os
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wire import customers, fulfillments, ident, text, times

from omsbridge import wire
from omsbridge.errors import InvalidTransaction
from omsbridge.model import Transaction, minor_units

_FUZZ = int(os.environ.get("OMSBRIDGE_FUZZ_EXAMPLES", "0"))
"""0 in CI: fixed seed, modest counts. ``nox -s fuzz`` sets it to run long and random."""


def _settings(ci_examples: int) -> settings:
    return settings(
        max_examples=_FUZZ or ci_examples,
        derandomize=not _FUZZ,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


CURRENCIES = {"USD": 2, "JPY": 0, "KWD": 3, "EUR": 2}


def _amount(draw: st.DrawFn, places: int, low: int = 0, high: int = 10**6) -> Decimal:
    cents = draw(st.integers(low, high))
    return Decimal(cents).scaleb(-places) if places else Decimal(cents)


@st.composite
def valid_data(draw: st.DrawFn) -> dict[str, Any]:
    """Plain JSON-ready data of a valid transaction: sales, returns, exchanges, charges,
    order-level discounts, split tenders, cash with change, three currency precisions."""
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    places = CURRENCIES[currency]
    kind = draw(st.sampled_from(["SALE", "RETURN", "EXCHANGE"]))
    line_kinds = {"SALE": ["SALE"], "RETURN": ["RETURN"], "EXCHANGE": ["RETURN", "SALE"]}[kind]
    line_kinds += [draw(st.sampled_from(line_kinds)) for _ in range(draw(st.integers(0, 3)))]
    lines: list[dict[str, Any]] = []
    total = Decimal(0)
    fulfilment_of_sales: list[Any] = []
    for number, line_kind in enumerate(line_kinds, start=1):
        quantity = Decimal(draw(st.integers(1, 5)))
        price = _amount(draw, places)
        discount = _amount(draw, places, 0, int(quantity * price * 10**places))
        taxes = [_amount(draw, places, 0, 10**4) for _ in range(draw(st.integers(0, 2)))]
        line: dict[str, Any] = {
            "line_number": number,
            "line_id": f"L{number}",
            "sku": draw(ident),
            "quantity": str(quantity),
            "unit_price": str(price),
            "kind": line_kind,
            "taxes": [{"name": draw(text), "amount": str(t)} for t in taxes],
        }
        if discount:
            line["adjustments"] = [{"type": "DISCOUNT", "amount": str(-discount)}]
        worth = quantity * price - discount + sum(taxes, Decimal(0))
        if line_kind == "RETURN":
            line["return_reason"] = draw(text)
            total -= worth
        else:
            fulfillment = draw(fulfillments)
            line["fulfillment"] = wire.unstructure(fulfillment)
            fulfilment_of_sales.append(line["fulfillment"])
            total += worth
        lines.append(line)
    data: dict[str, Any] = {
        "transaction_id": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,20}", fullmatch=True)),
        "kind": kind,
        "created_at": draw(times).isoformat(),
        "currency": currency,
        "store_id": draw(ident),
        "lines": lines,
        "customer": wire.unstructure(draw(customers)),
    }
    if fulfilment_of_sales and draw(st.booleans()):
        charge = _amount(draw, places, 0, 10**4)
        tax = _amount(draw, places, 0, 10**3)
        data["charges"] = [
            {
                "type": "DELIVERY",
                "amount": str(charge),
                "fulfillment": copy.deepcopy(draw(st.sampled_from(fulfilment_of_sales))),
                "taxes": [{"name": "Delivery tax", "amount": str(tax)}],
            }
        ]
        total += charge + tax
    if total > 0 and draw(st.booleans()):
        off = _amount(draw, places, 0, int(total * 10**places))
        data["adjustments"] = [{"type": "COUPON", "amount": str(-off), "code": "C1"}]
        total -= off
    # A SALE's parts are never negative and a RETURN has no charges or order discounts, so the
    # total has the sign its kind requires.
    data["total"] = str(total)
    data["tenders"] = _tenders(draw, total, places)
    return data


def _tenders(draw: st.DrawFn, total: Decimal, places: int) -> list[dict[str, Any]]:
    if total == 0:
        return []
    first = total if draw(st.booleans()) else (total / 2).quantize(Decimal(1).scaleb(-places))
    out = []
    for amount in (first, total - first):
        if not amount:
            continue
        how = draw(st.sampled_from(["cash", "card", "gift_card", "digital_wallet"]))
        tender: dict[str, Any] = {"type": how, "amount": str(amount)}
        if how == "cash" and amount > 0 and draw(st.booleans()):
            change = _amount(draw, places, 0, 10**4)
            tender.update(tendered=str(amount + change), change=str(change))
        elif how == "card":
            tender.update(brand="VISA", last4="4242")
        elif how == "gift_card":
            tender.update(last4="7731")
        elif how == "digital_wallet":
            tender.update(wallet="APPLE_PAY")
        out.append(tender)
    return out


# Values that have broken validators before: wrong kinds, odd and huge numbers, unicode, depth.
def _nested(depth: int) -> Any:
    node: list[Any] = []
    top = node
    for _ in range(depth):
        node.append([])
        node = node[0]
    return top


ODD_TEXT = [
    "1E+1000000",
    "-1E+1000000",
    "1E-1000000",
    "NaN",
    "sNaN",
    "Infinity",
    "-0",
    "0.125",
    "10.005",
    "3.0000000000000000000000000001",
    "1000000000000000000000000000000.01",
    "9999999999999999.99",
    "99999999999999999",
    "1e3",
    ".5",
    "5.",
    " 12.50 ",
    "١٢",
    "12,50",
    "",
    " ",
    "\u0000",
    "\U0001f4b0",
    "\u202eLTR",
    "a" * 300,
    "0E-5000",
    "0E+5000",
    "1." + "0" * 500,
    "-0E-100",
]  # fmt: skip
ODD_NUMBERS = [
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("-Infinity"),
    Decimal("1E+999999"),
    Decimal("1E-999999"),
    Decimal("-0.00"),
    1.5,
    float("nan"),
]  # fmt: skip

hostile = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from(ODD_TEXT),
    st.sampled_from(ODD_NUMBERS),
    st.text(max_size=8),
    st.integers(1, 200).map(_nested),
    # Fresh copies: a later mutation may append to the value drawn here.
    st.sampled_from([[], {}, [1], {"a": 1}, [[[]]], {"type": ["cash"]}]).map(copy.deepcopy),
)


@st.composite
def mutated_data(draw: st.DrawFn) -> Any:
    """A valid transaction with 1-3 mutations at random places: replace (wrong kind, odd
    number, unicode, deep nesting), delete (a missing key), add (an unknown key or item)."""
    data = draw(valid_data())
    for _ in range(draw(st.integers(1, 3))):
        node: Any = data
        path: list[tuple[Any, Any]] = []
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)):
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            path.append((node, key))
            node = node[key]
        if not path:
            return draw(hostile)
        parent, key = path[-1]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[key] = draw(hostile)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=5))] = draw(hostile)
        else:
            parent.append(draw(hostile))
    return data


_INTERNALS = re.compile(
    r"object is not|unhashable|<class|Traceback|NoneType|has no attribute|positional argument|"
    r"not subscriptable|not iterable|decimal\.|InvalidOperation|ConversionSyntax|__\w+__|"
    r"\bdict\b|\blist\b|\btuple\b|\bint\b|\bstr\b|Structuring"
)
_QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"")
_WHOLE_DOCUMENT = (
    "expected a transaction object, got",
    "expected at most 32 levels",
    "expected UTF-8 text",
    "not valid JSON:",
)


def assert_named(exc: InvalidTransaction) -> None:
    """Every problem names its path (or is about the whole document) and no Python leaks out."""
    assert exc.issues
    for issue in exc.issues:
        assert issue.message.strip(), issue
        assert issue.path or issue.message.startswith(_WHOLE_DOCUMENT), issue
        if not issue.message.startswith("not valid JSON:"):  # json's own parser message
            # The input's own values are quoted in messages; only the words around them count.
            words = _QUOTED.sub("", issue.message)
            assert not _INTERNALS.search(words), issue


def _f(value: Decimal) -> Fraction:
    return Fraction(value)


def assert_exactly_consistent(txn: Transaction) -> None:
    """Recompute every total with Fractions, independently of Decimal and its contexts."""
    places = minor_units(txn.currency)

    def in_minor_units(value: Decimal) -> bool:
        return (_f(value) * 10**places).denominator == 1

    computed = Fraction(0)
    for line in txn.lines:
        worth = _f(line.quantity) * _f(line.unit_price)
        worth += sum((_f(a.amount) for a in line.adjustments), Fraction(0))
        worth += sum((_f(t.amount) for t in line.taxes), Fraction(0))
        assert worth >= 0
        assert all(t.amount >= 0 and in_minor_units(t.amount) for t in line.taxes)
        assert in_minor_units(line.unit_price)
        assert _f(line.total) == worth  # the model's own arithmetic is exact too
        computed += -worth if line.kind == "RETURN" else worth
    computed += sum((_f(a.amount) for a in txn.adjustments), Fraction(0))
    for charge in txn.charges:
        assert all(t.amount >= 0 and in_minor_units(t.amount) for t in charge.taxes)
        computed += _f(charge.amount) + sum((_f(t.amount) for t in charge.taxes), Fraction(0))
    assert computed == _f(txn.total)
    assert _f(txn.computed_total) == computed
    assert sum((_f(t.amount) for t in txn.tenders), Fraction(0)) == _f(txn.total)
    for tender in txn.tenders:
        assert in_minor_units(tender.amount)
        for name in ("tendered", "change"):
            value = getattr(tender, name, None)
            assert value is None or in_minor_units(value)
    assert in_minor_units(txn.total)
    if txn.kind == "SALE":
        assert txn.total >= 0
    if txn.kind == "RETURN":
        assert txn.total <= 0
    ids = [line.line_id for line in txn.lines if line.line_id is not None]
    assert len(ids) == len(set(ids))


def check(data: Any) -> Transaction | None:
    """The property itself, for data already decoded from JSON."""
    try:
        txn = wire.structure(data, Transaction)
    except InvalidTransaction as exc:
        assert_named(exc)
        return None
    assert_exactly_consistent(txn)
    return txn


@_settings(150)
@given(valid_data())
def test_generated_transactions_are_valid_and_exact(data: dict[str, Any]) -> None:
    txn = check(copy.deepcopy(data))
    assert txn is not None, data  # the generator builds only valid ones
    assert wire.loads(wire.dumps(txn), Transaction) == txn


@_settings(600)
@given(mutated_data())
def test_mutated_transactions_are_valid_or_refused_with_paths(data: Any) -> None:
    check(data)


@_settings(200)
@given(mutated_data(), st.data())
def test_mutated_json_text_is_valid_or_refused_with_paths(data: Any, more: st.DataObject) -> None:
    try:
        raw = json.dumps(data, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except ValueError:  # NaN floats cannot be JSON at all; covered as Python data above
        return
    if raw and more.draw(st.booleans()):  # flip a byte: broken UTF-8 or broken JSON
        at = more.draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([more.draw(st.integers(0, 255))]) + raw[at + 1 :]
    try:
        txn = wire.loads(raw, Transaction)
    except InvalidTransaction as exc:
        assert_named(exc)
    else:
        assert_exactly_consistent(txn)
