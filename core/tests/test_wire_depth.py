"""wire.structure refuses input nested deeper than MAX_DEPTH, naming where, before cattrs sees it."""

from __future__ import annotations

from typing import Any

import pytest

from omsbridge import InvalidTransaction, Transaction, wire
from omsbridge.wire import MAX_DEPTH


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


def test_the_first_too_deep_path_is_named() -> None:
    data = {"lines": [{"note": "x"}, {"metadata": _nested(MAX_DEPTH + 5)}], "a": 1}
    with pytest.raises(InvalidTransaction) as caught:
        wire.structure(data, Transaction)
    (issue,) = caught.value.issues
    assert issue.path.startswith("lines[1].metadata")
    assert f"at most {MAX_DEPTH} levels" in issue.message


def test_as_deep_as_allowed_is_not_refused_for_depth() -> None:
    data = {"metadata": _nested(MAX_DEPTH - 1)}
    with pytest.raises(InvalidTransaction) as caught:
        wire.structure(data, Transaction)  # other fields are missing: refused for those
    assert all("levels of nested" not in i.message for i in caught.value.issues)


def test_deep_leaves_and_plain_values() -> None:
    assert wire._too_deep("text") is None
    assert wire._too_deep([1, "a", None]) is None
    assert wire._too_deep(_nested(MAX_DEPTH)) is None
    assert wire._too_deep(_nested(MAX_DEPTH + 1)) is not None
