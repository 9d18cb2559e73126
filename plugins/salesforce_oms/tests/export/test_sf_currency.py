"""Currencies against the sandbox: a merchant of a single-currency org (``multi_currency =
false``) takes only its ``currency``; a multi-currency org records an EUR sale as an EUR order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from sf_export_helpers import count, make_sale, sf_config, write_config

from omsbridge import Bridge
from omsbridge.errors import InvalidTransaction
from omsbridge_salesforce.client import SalesforceClient


def _config(path: Path, url: str, settings_extra: str) -> Path:
    write_config(path, url, ["SHOP"])
    text = path.read_text().replace(
        'currency = "USD"\n', 'currency = "USD"\ncurrencies = ["USD", "EUR"]\n'
    )
    if settings_extra:  # replaces the helper's own line for the same key
        key = settings_extra.split("=")[0].strip()
        text = "".join(
            line for line in text.splitlines(keepends=True) if not line.startswith(f"{key} =")
        )
    path.write_text(text + settings_extra)
    return path


def test_single_currency_org_refuses_eur_before_any_request(
    sf_sandbox: Any, tmp_path: Path
) -> None:
    config = _config(tmp_path / "omsbridge.toml", sf_sandbox.url, "multi_currency = false\n")
    with Bridge.from_config(config) as bridge:
        merchant = bridge.for_merchant("SHOP")
        eur = attrs.evolve(make_sale("EUR-1", 1), currency="EUR")
        with pytest.raises(InvalidTransaction) as info:
            merchant.post(eur, outbox=False)
        assert info.value.issues[0].path == "currency"
        assert "takes USD, got 'EUR'" in info.value.issues[0].message
        assert count(sf_sandbox.url, "Order") == 0
        # The merchant's currency still posts.
        assert merchant.post(make_sale("USD-1", 1), outbox=False).created
    assert count(sf_sandbox.url, "Order") == 1


def test_multi_currency_org_posts_eur_as_an_eur_order(sf_sandbox: Any, tmp_path: Path) -> None:
    config = _config(tmp_path / "omsbridge.toml", sf_sandbox.url, "")
    with Bridge.from_config(config) as bridge:
        eur = attrs.evolve(make_sale("EUR-2", 1), currency="EUR")
        result = bridge.for_merchant("SHOP").post(eur, outbox=False)
    client = SalesforceClient(sf_config(sf_sandbox.url))
    try:
        [row] = client.query(f"SELECT CurrencyIsoCode FROM Order WHERE Id = '{result.order_id}'")
    finally:
        client.close()
    assert row["CurrencyIsoCode"] == "EUR"
