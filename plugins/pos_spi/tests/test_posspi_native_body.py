"""The backend posts a transaction the export job read from the outbox as the stored JSON (no
decode-encode round trip), any other transaction as a fresh encoding; the POST_ORDER answer is
read directly when it has the usual shape and checked the usual way otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from posspi_support import sale

from omsbridge import wire
from omsbridge.errors import TransientBackendError
from omsbridge.http_direct import DirectClient
from omsbridge.model import PostResult
from omsbridge.store import EntryState, OutboxEntry
from omsbridge_posspi import PosSpiBackend
from omsbridge_posspi import backend as backend_module
from omsbridge_posspi.client import SpiResponse


@pytest.fixture
def bodies(monkeypatch: pytest.MonkeyPatch) -> list[bytes | None]:
    """The body of every request the backends send from now on."""
    sent: list[bytes | None] = []
    original = DirectClient.request

    def spy(self: DirectClient, method: str, url: str, **kwargs: Any) -> Any:
        sent.append(kwargs.get("content"))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(DirectClient, "request", spy)
    return sent


def _entry(payload: str) -> OutboxEntry:
    now = datetime.now(UTC)
    return OutboxEntry(7, "M", "T-1", "SALE", EntryState.PENDING, 0, now, now, now, payload)


def test_an_outbox_transaction_is_sent_as_its_stored_json(
    backend: PosSpiBackend, bodies: list[bytes | None]
) -> None:
    txn = sale("T-NATIVE", lines=(("SKU-É", "2", "10.00"),))
    stored = wire.dumps(txn, indent=1)  # a spelling a fresh encoding would not produce
    result = backend.post(_entry(stored).transaction_to_post())
    assert bodies == [stored.encode("utf-8")]
    assert result.created and result.transaction_id == "T-NATIVE"
    detail = backend.get_order(result.order_id)
    assert [line.sku for line in detail.lines] == ["SKU-É"] and detail.total == txn.total


def test_any_other_transaction_is_encoded(
    backend: PosSpiBackend, bodies: list[bytes | None]
) -> None:
    txn = sale("T-FRESH")
    backend.post(txn)
    assert bodies == [json.dumps(wire.unstructure(txn)).encode("utf-8")]


def test_a_payload_not_as_written_is_encoded_afresh(
    backend: PosSpiBackend, bodies: list[bytes | None]
) -> None:
    data = json.loads(wire.dumps(sale("T-ODD")))
    data["total"] = 20.0  # the checked decode takes a number; wire.dumps writes a string
    backend.post(_entry(json.dumps(data)).transaction_to_post())
    assert len(bodies) == 1 and json.loads(bodies[0] or b"")["total"] == "20.0"


@pytest.mark.parametrize(
    ("status", "data", "expected"),
    [
        (201, {"transaction_id": "T", "order_id": "O", "order_number": "N", "created": True},
         PostResult("T", "O", "N", True)),
        (200, {"transaction_id": "T", "order_id": "O", "created": True},
         PostResult("T", "O", None, False)),  # the status decides
        (201, {"transaction_id": "T", "order_id": "O"}, PostResult("T", "O", None, True)),
    ],
)  # fmt: skip
def test_the_usual_answer_is_read_as_the_checked_read_would(status, data, expected) -> None:
    assert backend_module._post_result(SpiResponse(status, data, {})) == expected


@pytest.mark.parametrize(
    "data",
    [
        {"transaction_id": "T", "order_id": 5},
        {"transaction_id": "T", "order_id": "O", "surprise": 1},
        {"transaction_id": "T"},
        {"transaction_id": "T", "order_id": "O", "created": "yes"},
        ["T", "O"],
        None,
    ],
)
def test_an_answer_that_breaks_the_contract_is_still_refused(data) -> None:
    with pytest.raises(TransientBackendError) as info:
        backend_module._post_result(SpiResponse(201, data, {}))
    assert info.value.code == "INVALID_RESPONSE"
