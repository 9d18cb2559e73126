"""A transaction in a currency the merchant does not take is refused by the bridge, named, before
any request: an EUR sale must never become a USD order of the same amount."""

from __future__ import annotations

import attrs
import pytest
from fakes import MemoryBackend
from test_config import GOOD, problems, write

from omsbridge import Bridge, Capability, wire
from omsbridge.errors import InvalidTransaction
from omsbridge.model import Transaction
from omsbridge.store import EntryState


class MultiCurrencyMemory(MemoryBackend):
    """The in-memory backend, recording each order in the transaction's own currency."""

    capabilities = MemoryBackend.capabilities | {Capability.MULTI_CURRENCY}


def _bridge(tmp_path, pm, registry, monkeypatch, *, extra: str = "", multi: bool = False):
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    text = GOOD.replace('currency = "USD"\n', f'currency = "USD"\n{extra}')
    bridge = Bridge.from_config(write(tmp_path, text), registry=registry, plugin_manager=pm)
    if multi:
        monkeypatch.setattr(MemoryBackend, "capabilities", MultiCurrencyMemory.capabilities)
    return bridge


def _sale(example, currency: str, tid: str = "T-EUR-1") -> Transaction:
    sale = wire.structure(example("sale-cash"), Transaction)
    return attrs.evolve(sale, currency=currency, transaction_id=tid)


def _sent(merchant, monkeypatch) -> list[Transaction]:
    sent: list[Transaction] = []
    real = merchant.backend.post

    def spy(transaction):
        sent.append(transaction)
        return real(transaction)

    monkeypatch.setattr(merchant.backend, "post", spy)
    return sent


def test_eur_sale_to_usd_merchant_is_refused_with_the_currency_named(
    tmp_path, pm, registry, monkeypatch, example
):
    bridge = _bridge(tmp_path, pm, registry, monkeypatch)
    merchant = bridge.for_merchant("SHOPNOW")
    sent = _sent(merchant, monkeypatch)
    with pytest.raises(InvalidTransaction) as info:
        merchant.post(_sale(example, "EUR"))
    [issue] = info.value.issues
    assert issue.path == "currency"
    assert "takes USD" in issue.message and "'EUR'" in issue.message
    assert info.value.code == "CURRENCY_NOT_ACCEPTED"
    assert sent == [], "the backend was called for a sale in the wrong currency"
    # Through the outbox it is a dead letter naming the reason, never a posted order.
    entry = bridge.store.find("SHOPNOW", "T-EUR-1")
    assert entry is not None and entry.state == EntryState.DEAD
    assert entry.last_error is not None and entry.last_error.code == "CURRENCY_NOT_ACCEPTED"
    # The batch path (the export job's) refuses it the same way.
    [outcome] = merchant.post_batch([_sale(example, "EUR", "T-EUR-2")])
    assert isinstance(outcome, InvalidTransaction) and outcome.issues[0].path == "currency"
    assert sent == []
    # The merchant's own currency goes through.
    assert merchant.post(_sale(example, "USD", "T-USD-1")).created
    bridge.close()


def test_several_currencies_with_a_multi_currency_backend(
    tmp_path, pm, registry, monkeypatch, example
):
    bridge = _bridge(
        tmp_path, pm, registry, monkeypatch, extra='currencies = ["USD", "EUR"]\n', multi=True
    )
    merchant = bridge.for_merchant("SHOPNOW")
    assert merchant.post(_sale(example, "EUR"), outbox=False).created
    with pytest.raises(InvalidTransaction) as info:
        merchant.post(_sale(example, "GBP", "T-GBP-1"), outbox=False)
    assert info.value.issues[0].path == "currency"
    assert "takes EUR or USD, got 'GBP'" in info.value.issues[0].message
    bridge.close()


def test_several_currencies_but_a_single_currency_backend_takes_only_the_merchant_currency(
    tmp_path, pm, registry, monkeypatch, example
):
    bridge = _bridge(tmp_path, pm, registry, monkeypatch, extra='currencies = ["USD", "EUR"]\n')
    merchant = bridge.for_merchant("SHOPNOW")
    sent = _sent(merchant, monkeypatch)
    with pytest.raises(InvalidTransaction) as info:
        merchant.post(_sale(example, "EUR"), outbox=False)
    message = info.value.issues[0].message
    assert "takes USD, got 'EUR'" in message and "takes one currency per merchant" in message
    assert sent == []
    bridge.close()


def test_no_currency_configured_means_no_check(tmp_path, pm, registry, monkeypatch, example):
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    text = GOOD.replace('currency = "USD"\n', "")
    bridge = Bridge.from_config(write(tmp_path, text), registry=registry, plugin_manager=pm)
    assert bridge.for_merchant("SHOPNOW").post(_sale(example, "EUR"), outbox=False).created
    bridge.close()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('currencies = "USD"', "merchants.SHOPNOW.currencies: must be a list of ISO 4217 codes"),
        ("currencies = []", "merchants.SHOPNOW.currencies: must be a list of ISO 4217 codes"),
        ('currencies = ["USD", "eur"]', "merchants.SHOPNOW.currencies: must be ISO 4217 codes"),
        ('currencies = ["EUR", "GBP"]', "must include the merchant's currency 'USD'"),
    ],
)
def test_currencies_config_is_checked(tmp_path, registry, monkeypatch, line, expected):
    monkeypatch.setenv("SHOPNOW_KEY", "k")
    found = problems(
        tmp_path, GOOD.replace('currency = "USD"\n', f'currency = "USD"\n{line}\n'), registry
    )
    assert any(expected in p for p in found), found
