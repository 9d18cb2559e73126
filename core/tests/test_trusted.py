"""The outbox's decode without re-validation (omsbridge.trusted): the same objects as the checked
decode, and a fall-back to it for anything not as wire.dumps writes it."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from paths import EXAMPLES
from test_fuzz_transactions import valid_data

from omsbridge import trusted, wire
from omsbridge.errors import InvalidTransaction
from omsbridge.model import Transaction

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


def _direct(text: str) -> Transaction:
    """The trusted builder alone, without its fall-back (which would hide a miss)."""
    return trusted._builder(Transaction)(json.loads(text))  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_examples_decode_to_the_same_objects_without_the_checks(path) -> None:
    checked = wire.loads(path.read_text(), Transaction)
    text = wire.dumps(checked)
    fast = _direct(text)
    assert fast == checked
    assert wire.dumps(fast) == text
    assert trusted.loads(text, Transaction) == checked


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(valid_data())
def test_generated_transactions_decode_to_the_same_objects(data) -> None:
    checked = wire.structure(copy.deepcopy(data), Transaction)
    text = wire.dumps(checked)
    assert _direct(text) == checked


def test_money_stays_decimal_and_times_keep_the_pos_zone() -> None:
    checked = wire.loads((EXAMPLES / "sale-cash.json").read_text(), Transaction)
    fast = _direct(wire.dumps(checked))
    assert type(fast.total) is Decimal and fast.total == checked.total
    assert str(fast.total) == str(checked.total)  # same exponent, not only equal
    assert fast.created_at.utcoffset() == checked.created_at.utcoffset() == timedelta(hours=-8)
    assert type(fast.lines) is tuple and type(fast.tenders[0]) is type(checked.tenders[0])


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["lines"][0].update(quantity=[2]), "lines[0].quantity"),
        (lambda d: d["tenders"][0].update(type="barter"), "tenders[0].type"),
        (lambda d: d.pop("store_id"), "store_id"),
    ],
)
def test_anything_not_as_written_is_decoded_and_refused_the_checked_way(change, path) -> None:
    data = json.loads((EXAMPLES / "sale-cash.json").read_text())
    change(data)
    text = json.dumps(data)
    with pytest.raises(Exception):  # noqa: B017 - the trusted builder refuses it
        _direct(text)
    with pytest.raises(InvalidTransaction) as info:
        trusted.loads(text, Transaction)
    assert path in [i.path for i in info.value.issues]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_text_read_as_written_holds_the_values_a_fresh_encoding_holds(path) -> None:
    # The pos-spi backend sends such text in place of wire.dumps of the object: the values must
    # be the same whatever the spelling (here: indented, keys in reverse order).
    data = json.loads(wire.dumps(wire.loads(path.read_text(), Transaction)))
    text = json.dumps(dict(reversed(list(data.items()))), indent=2, ensure_ascii=False)
    decoded, as_written = trusted.loads_as_written(text, Transaction)
    assert as_written
    assert json.loads(text) == json.loads(wire.dumps(decoded))


def test_text_not_as_written_is_said_so() -> None:
    data = json.loads((EXAMPLES / "sale-cash.json").read_text())
    data["lines"][0]["unit_price"] = 19.99  # a JSON number: wire.dumps writes a string
    text = json.dumps(data)
    decoded, as_written = trusted.loads_as_written(text, Transaction)
    assert not as_written
    assert decoded == wire.loads(text, Transaction)
    assert json.loads(wire.dumps(decoded))["lines"][0]["unit_price"] == "19.99"
