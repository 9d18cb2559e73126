"""Salesforce record ids: 15/18-character forms, the checksum, and an id generator."""

from __future__ import annotations

import re
import string

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
_SHAPE = re.compile(r"^[a-zA-Z0-9]{15}([A-Z0-5]{3})?$")

# Characters 4-6 of an id: a pod marker and a reserved character, constant for one org.
_POD = "5g0"


def checksum(id15: str) -> str:
    """Return the 3-character case-safety suffix of a 15-character id."""
    suffix = []
    for chunk_start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(id15[chunk_start : chunk_start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix.append(_SUFFIX_ALPHABET[bits])
    return "".join(suffix)


def to18(value: str) -> str:
    """Return the 18-character form of a 15- or 18-character id (raises ValueError if malformed)."""
    if not is_valid(value):
        raise ValueError(f"malformed Salesforce id: {value!r}")
    return value[:15] + checksum(value[:15])


def is_valid(value: object) -> bool:
    """Whether *value* is a well-formed 15-character id, or an 18-character one with a valid
    checksum."""
    if not isinstance(value, str) or not _SHAPE.match(value):
        return False
    if len(value) == 18:
        # The suffix encodes the case of the first 15 characters; compare case-insensitively
        # because an 18-character id is meant to survive case-folding systems.
        return value[15:].upper() == checksum(value[:15])
    return True


def normalize(value: object) -> str | None:
    """The 18-character form of *value*, or None when it is not a well-formed id."""
    if not isinstance(value, str) or not is_valid(value):
        return None
    return to18(value)


def make_id(prefix: str, number: int) -> str:
    """Build the 18-character id for record *number* of the object with key *prefix*."""
    if len(prefix) != 3:
        raise ValueError("key prefix must have 3 characters")
    digits = []
    n = number
    for _ in range(9):
        n, rem = divmod(n, 62)
        digits.append(_BASE62[rem])
    if n:
        raise ValueError("record number too large")
    id15 = prefix + _POD + "".join(reversed(digits))
    return id15 + checksum(id15)


def org_id() -> str:
    """The sandbox org's 18-character Organization id (key prefix 00D)."""
    return make_id("00D", 1_000_001)
