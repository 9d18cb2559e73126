"""SOQL literals: quotes, backslashes and LIKE wildcards are always literal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from omsbridge_salesforce.soql import (
    escape,
    escape_like,
    in_list,
    like,
    literal,
    looks_like_id,
    quote,
    soql,
)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("O'Brien", "O\\'Brien"),
        ("back\\slash", "back\\\\slash"),
        ("\\'", "\\\\\\'"),
        ('say "hi"', 'say \\"hi\\"'),
        ("line\nbreak\ttab\r", "line\\nbreak\\ttab\\r"),
        ("50%_off", "50%_off"),  # wildcards only matter inside LIKE
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_injection_in_equality_stays_a_literal() -> None:
    text = soql("SELECT Id FROM Account WHERE PersonEmail = {}", "x' OR Name != '")
    assert text == "SELECT Id FROM Account WHERE PersonEmail = 'x\\' OR Name != \\''"


def test_injection_in_like_stays_a_literal() -> None:
    text = soql("SELECT Id FROM Order WHERE Name LIKE {:like}", "%' OR Name LIKE '")
    assert text == "SELECT Id FROM Order WHERE Name LIKE '\\%\\' OR Name LIKE \\'%'"


def test_like_escapes_wildcards() -> None:
    assert escape_like("50%_off") == "50\\%\\_off"
    assert like("Amanda Freeman") == "'Amanda Freeman%'"
    assert like("Ter%", prefix=False) == "'Ter\\%'"
    assert like("a_b", contains=True) == "'%a\\_b%'"
    assert like("O'Brien\\") == "'O\\'Brien\\\\%'"


def test_literals() -> None:
    assert quote("x") == "'x'"
    assert literal(None) == "null"
    assert literal(True) == "true"
    assert literal(3) == "3"
    assert literal(Decimal("12.50")) == "12.50"
    assert literal(date(2026, 1, 5)) == "2026-01-05"
    plus_one = timezone(timedelta(hours=1))
    assert literal(datetime(2026, 1, 5, 11, 15, tzinfo=plus_one)) == "2026-01-05T10:15:00Z"
    with pytest.raises(ValueError):
        literal(datetime(2026, 1, 5))  # naive: refuse to guess the zone
    with pytest.raises(TypeError):
        literal(1.5)  # floats never go into queries
    assert literal(datetime(2026, 1, 5, tzinfo=UTC)) == "2026-01-05T00:00:00Z"


def test_in_list() -> None:
    assert in_list(["a", "O'B"]) == "('a','O\\'B')"
    assert soql("Name IN {:in}", ["x", "y"]) == "Name IN ('x','y')"
    with pytest.raises(ValueError):
        in_list([])


def test_template_refuses_conversions_and_unknown_specs() -> None:
    with pytest.raises(ValueError):
        soql("{!r}", "x")
    with pytest.raises(ValueError):
        soql("{:upper}", "x")


def test_looks_like_id() -> None:
    assert looks_like_id("801R0000000EAAkIAO")
    assert looks_like_id("801R0000000EAAk")
    assert not looks_like_id("801R0000000EAAkIAA")  # wrong checksum
    assert not looks_like_id("T-1")
    assert not looks_like_id("' OR Id != '")
