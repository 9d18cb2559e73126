"""Search cursors (issue 11, item 7): opaque, checked, and a bad one is a named error.

Before the shared helper, these cursors raised ValueError/TypeError/AttributeError out of the
Salesforce backend's search (a traceback from ``omsbridge search --cursor``), and ``n: 100000``
became ``LIMIT 100001``.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from omsbridge.cursor import decode_cursor, encode_cursor, position
from omsbridge.errors import InvalidTransaction
from omsbridge.model import OrderQuery

AFTER = (position(str, optional=True), position(int))


def forged(payload: object, version: str = "c1.") -> str:
    raw = json.dumps(payload).encode()
    return version + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_round_trip_carries_criteria_and_position():
    query = OrderQuery(
        email="a@example.com", placed_from=datetime(2026, 1, 1, tzinfo=UTC), page_size=7
    )
    cursor = encode_cursor(query, ["2026-11-20T15:30:00.000+0000", 105])
    assert cursor.startswith("c1.") and "=" not in cursor
    carried, after = decode_cursor(OrderQuery(cursor=cursor), AFTER)
    assert carried == query
    assert after == ("2026-11-20T15:30:00.000+0000", 105)


GOOD_Q = {"email": "a@example.com"}


@pytest.mark.parametrize(
    ("cursor", "why"),
    [
        ("not-a-cursor", "not a version this omsbridge writes"),
        ("c1.%%%", "not base64url"),
        ("c1.A", "not base64url"),
        ("c1." + base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="), "expected UTF-8"),
        ("c1." + base64.urlsafe_b64encode(b"{not json").decode(), "not valid JSON"),
        (forged([1, 2]), 'expected an object with "q" and "after"'),
        (forged({"q": GOOD_Q}), 'expected an object with "q" and "after"'),
        (forged({"q": GOOD_Q, "after": "x", "extra": 1}), 'expected an object with "q"'),
        (forged({"q": GOOD_Q, "after": None}), "expected a position of 2 values"),
        (forged({"q": GOOD_Q, "after": [None]}), "expected a position of 2 values"),
        (forged({"q": GOOD_Q, "after": [None, "7"]}), "a position value is not a int"),
        (forged({"q": GOOD_Q, "after": [None, True]}), "a position value is not a int"),
        (forged({"q": GOOD_Q, "after": [5, 7]}), "a position value is not a str"),
        (forged({"q": GOOD_Q, "after": ["x" * 300, 7]}), "a position value is too long"),
        (forged({"q": {**GOOD_Q, "page_size": 100000}, "after": [None, 1]}), "page_size: must"),
        (forged({"q": {**GOOD_Q, "page_size": "5"}, "after": [None, 1]}), "page_size: expected"),
        (forged({"q": "x", "after": [None, 1]}), "expected an object"),
        (forged({"q": {}, "after": [None, 1]}), "give at least one of"),
        (forged({"q": {"cursor": "c1.x"}, "after": [None, 1]}), "a cursor inside a cursor"),
        (forged({"q": {**GOOD_Q, "nope": 1}, "after": [None, 1]}), "nope: unknown field"),
        (forged({"q": {**GOOD_Q, "placed_from": "yesterday"}, "after": [None, 1]}), "placed"),
        ("c1." + base64.urlsafe_b64encode(b"[" * 3000).decode(), "levels"),
    ],
)
def test_a_bad_cursor_is_a_named_error(cursor, why):
    with pytest.raises(InvalidTransaction) as caught:
        decode_cursor(OrderQuery(cursor=cursor), AFTER, backend="test")
    error = caught.value
    assert error.code == "INVALID_CURSOR" and error.backend == "test"
    assert [i.path for i in error.issues] == ["cursor"]
    assert why in error.issues[0].message


def test_an_overlong_cursor_is_refused_by_the_query_itself():
    with pytest.raises(InvalidTransaction, match="cursor: must be at most 4096 characters"):
        OrderQuery(cursor="c1." + "A" * 5000)


def test_long_criteria_still_fit_in_a_cursor():
    query = OrderQuery(**{k: "x" * 255 for k in ("first_name", "last_name", "email")})
    cursor = encode_cursor(query, ["2026-11-20T15:30:00.000+0000", 10**12])
    carried, _ = decode_cursor(OrderQuery(cursor=cursor), AFTER)
    assert carried == query
