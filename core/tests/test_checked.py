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


def test_native_json_only_for_the_marked_object_it_was_given_with() -> None:
    from omsbridge.checked import native_json

    with_json, without, other = _Thing(), _Thing(), _Thing()
    mark_checked(with_json, native='{"a": 1}')
    mark_checked(without)
    assert native_json(with_json) == '{"a": 1}'
    assert native_json(without) is None and is_checked(without)
    assert native_json(other) is None


def test_an_outbox_entry_to_post_carries_its_payload_only_when_read_as_written() -> None:
    import json
    from datetime import UTC, datetime

    from paths import EXAMPLES

    from omsbridge import wire
    from omsbridge.checked import native_json
    from omsbridge.model import Transaction
    from omsbridge.store import EntryState, OutboxEntry

    text = wire.dumps(wire.loads((EXAMPLES / "sale-cash.json").read_text(), Transaction))
    odd = json.loads(text)
    odd["total"] = 43.43  # accepted by the checked decode, not as wire.dumps writes it
    now = datetime.now(UTC)

    def entry(payload: str) -> OutboxEntry:
        return OutboxEntry(1, "M", "T", "SALE", EntryState.PENDING, 0, now, now, now, payload)

    written = entry(text).transaction_to_post()
    assert is_checked(written) and native_json(written) == text
    rewritten = entry(json.dumps(odd)).transaction_to_post()
    assert is_checked(rewritten) and native_json(rewritten) is None
    assert rewritten == written
