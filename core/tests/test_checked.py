"""omsbridge.checked: only the very object marked counts as checked, and only while it lives."""

from __future__ import annotations

import gc

from omsbridge.checked import is_checked, mark_checked


class _Thing:
    pass


def test_only_the_marked_object_is_checked() -> None:
    marked, other = _Thing(), _Thing()
    assert mark_checked(marked) is marked
    assert is_checked(marked)
    assert not is_checked(other)


def test_a_mark_dies_with_its_object() -> None:
    thing = _Thing()
    mark_checked(thing)
    key = id(thing)
    del thing
    gc.collect()
    # A new object may reuse the id: it must not inherit the mark.
    survivors = [_Thing() for _ in range(1000)]
    assert not any(is_checked(s) for s in survivors if id(s) == key)
    from omsbridge import checked

    assert key not in checked._marks
