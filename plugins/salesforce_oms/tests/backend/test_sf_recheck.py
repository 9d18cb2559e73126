"""The backend re-checks a transaction's invariants unless omsbridge itself just decoded it
(omsbridge.checked): the export job and ``omsbridge post`` mark what they decode."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sf_backend_helpers import line, sale

from omsbridge import InvalidTransaction, Transaction, wire
from omsbridge.checked import mark_checked
from omsbridge_salesforce import backend as backend_module
from omsbridge_salesforce.backend import SalesforceBackend


@pytest.fixture
def rechecks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = backend_module._recheck

    def spy(transaction: Any) -> None:
        calls.append(transaction.transaction_id)
        real(transaction)

    monkeypatch.setattr(backend_module, "_recheck", spy)
    return calls


def test_a_decoded_transaction_is_not_checked_twice(
    backend: SalesforceBackend, rechecks: list[str]
) -> None:
    text = wire.dumps(sale([line(1, "A")], txn_id="T-C1"))
    txn = mark_checked(wire.loads(text, Transaction))
    assert backend.post(txn).created
    assert rechecks == []


def test_an_object_from_elsewhere_is_still_checked(
    backend: SalesforceBackend, rechecks: list[str]
) -> None:
    txn = sale([line(1, "A")], txn_id="T-C2")
    object.__setattr__(txn.lines[0], "quantity", Decimal(-1))
    with pytest.raises(InvalidTransaction) as info:
        backend.post(txn)
    assert rechecks == ["T-C2"]
    assert "lines[0].quantity" in str(info.value)
