"""SalesforceConfig: the seed's PS OMS Configuration, every wrong value refused with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from omsbridge import ConfigError, FulfillmentAction
from omsbridge.config import parse_config
from omsbridge.registry import BackendRegistry
from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce.config import SalesforceConfig


@pytest.fixture
def registry() -> BackendRegistry:
    r = BackendRegistry()
    r.register(SalesforceBackend)
    return r


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_PASSWORD", "hgj6576AhgA^=@8")
    monkeypatch.setenv("SF_SECRET", "consumer-secret")
    monkeypatch.setenv("SF_TOKEN", "SECTOKEN")


BASE: dict[str, Any] = {
    "url_base": "https://ps--uat.my.salesforce.com/",
    "username": "psintegration@predictspring.com",
    "password": {"env": "SF_PASSWORD"},
    "client_id": "3MVG9abc",
    "client_secret": {"env": "SF_SECRET"},
}


def load(registry: BackendRegistry, tmp_path: Path, **settings: Any) -> SalesforceConfig:
    data = {"merchants": {"SHOPNOW": {"backend": "salesforce", "salesforce": {**BASE, **settings}}}}
    cfg = parse_config(data, base_dir=tmp_path, registry=registry)
    return cfg.merchants["SHOPNOW"].settings  # type: ignore[no-any-return]


def problems(registry: BackendRegistry, tmp_path: Path, **settings: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load(registry, tmp_path, **settings)
    return {i.path: i.message for i in info.value.issues}


def test_seed_configuration_loads(registry: BackendRegistry, tmp_path: Path) -> None:
    cfg = load(
        registry,
        tmp_path,
        api_version="v58.0",
        query_api_version="v58.0",
        custom_fields=[
            {
                "oms_field_name": "warehouseID__c",
                "pos_field": "ORDER_STORE_ID",
                "apply_to": ["LOCATION"],
            }
        ],
        filter_query="DeliveryMethod.Name = 'Store Pickup CAD'",
        status_canceled_value="Processing Cancel",
        cash_payment_gateway_name="CashPOS",
        statuses_to_process=["Invoice Paid"],
        return_window_days=14,
        security_token={"env": "SF_TOKEN"},
    )
    assert cfg.service == "LIGHTNING"
    assert cfg.store_id_field == "warehouseID__c"
    assert cfg.password is not None and cfg.password.reveal() == "hgj6576AhgA^=@8"
    assert cfg.fulfillment_status(FulfillmentAction.CANCEL) == "Processing Cancel"
    assert cfg.fulfillment_status(FulfillmentAction.PACK) == "Pickpack"
    assert cfg.delivery_method_name("IN_STORE-PICKUP_LATER") == "IN_STORE-PICKUP_LATER"
    assert cfg.effective_token_url == "https://ps--uat.my.salesforce.com/services/oauth2/token"


def test_secrets_never_in_repr(registry: BackendRegistry, tmp_path: Path) -> None:
    cfg = load(registry, tmp_path, security_token={"env": "SF_TOKEN"})
    text = repr(cfg) + str(cfg)
    for secret in ("hgj6576AhgA^=@8", "consumer-secret", "SECTOKEN"):
        assert secret not in text
    assert "env:SF_PASSWORD" in text


def test_literal_secret_refused(registry: BackendRegistry, tmp_path: Path) -> None:
    found = problems(registry, tmp_path, password="plain-text")
    assert "secret reference" in found["merchants.SHOPNOW.salesforce.password"]


def test_mappings_merge_over_defaults(registry: BackendRegistry, tmp_path: Path) -> None:
    cfg = load(
        registry,
        tmp_path,
        delivery_methods={"ONLINE-DEFAULT": "Standard Shipping"},
        fulfillment_statuses={"READY_FOR_PICKUP": "Ready"},
    )
    assert cfg.delivery_method_name("ONLINE-DEFAULT") == "Standard Shipping"
    assert cfg.delivery_method_name("IN_STORE-DEFAULT") == "IN_STORE-DEFAULT"
    assert cfg.fulfillment_status(FulfillmentAction.READY_FOR_PICKUP) == "Ready"
    assert cfg.fulfillment_status(FulfillmentAction.PICKED_UP) == "Picked Up"


P = "merchants.SHOPNOW.salesforce."


@pytest.mark.parametrize(
    ("settings", "path", "fragment"),
    [
        ({"url_base": "https://example.com"}, "url_base", "my.salesforce.com"),
        ({"url_base": "http://ps.my.salesforce.com"}, "url_base", "https"),
        ({"url_base": "http://127.0.0.1:8765"}, "url_base", "allow_insecure_sandbox_url"),
        (
            {"url_base": "http://10.0.0.1:8765", "allow_insecure_sandbox_url": True},
            "url_base",
            "https",
        ),
        ({"service": "CLASSIC"}, "service", "LIGHTNING"),
        ({"api_version": "49.0"}, "api_version", "v62.0"),
        ({"api_version": "v49.0"}, "api_version", "v50.0"),
        ({"query_api_version": "vX"}, "query_api_version", "v62.0"),
        ({"auth_flow": "saml"}, "auth_flow", "password, client_credentials, jwt_bearer"),
        ({"status_canceled_value": " "}, "status_canceled_value", "blank"),
        ({"statuses_to_process": ["Invoice Paid", ""]}, "statuses_to_process[1]", "blank"),
        ({"delivery_methods": {"PICKUP": "X"}}, "delivery_methods.PICKUP", "FULFILLMENTTYPE"),
        (
            {"delivery_methods": {"IN_STORE-DEFAULT": ""}},
            "delivery_methods.IN_STORE-DEFAULT",
            "blank",
        ),
        (
            {"fulfillment_statuses": {"CANCEL": "X"}},
            "fulfillment_statuses.CANCEL",
            "status_canceled_value",
        ),
        ({"fulfillment_statuses": {"FLY": "X"}}, "fulfillment_statuses.FLY", "unknown action"),
        ({"return_window_days": 0}, "return_window_days", "1-3650"),
        ({"read_timeout": 0}, "read_timeout", "seconds"),
        ({"price_book_name": "{merchant}-{locale}"}, "price_book_name", "placeholder"),
        ({"order_external_id_field": "Bad Field"}, "order_external_id_field", "API name"),
        ({"filter_query": "Status = 'x'; DELETE"}, "filter_query", "';'"),
        (
            {"security_token": {"env": "SF_TOKEN"}, "auth_flow": "client_credentials"},
            "security_token",
            "only applies",
        ),
        ({"send_order_life_cycle_type": True}, "send_order_life_cycle_type", "order_summary"),
        ({"send_order_life_cycle_type": False}, "send_order_life_cycle_type", "removed"),
        ({"order_summary_creation": "apex"}, "order_summary_creation", "connect, flow"),
        ({"order_life_cycle_type": "Managed"}, "order_life_cycle_type", "MANAGED, UNMANAGED"),
        ({"take_with_fulfillment": "pos"}, "take_with_fulfillment", "connector, flow"),
        ({"default_change_reason": ""}, "default_change_reason", "blank"),
        ({"change_reasons": {"Damaged": " "}}, "change_reasons.Damaged", "blank"),
    ],
)
def test_wrong_values_refused_with_path(
    registry: BackendRegistry, tmp_path: Path, settings: dict[str, Any], path: str, fragment: str
) -> None:
    found = problems(registry, tmp_path, **settings)
    assert P + path in found, found
    assert fragment in found[P + path]


def test_custom_field_rules(registry: BackendRegistry, tmp_path: Path) -> None:
    found = problems(
        registry,
        tmp_path,
        custom_fields=[
            {"oms_field_name": "warehouseID__c", "pos_field": "ORDER_ID", "apply_to": ["ORDER"]}
        ],
    )
    assert "ORDER_STORE_ID" in found[P + "custom_fields[0].pos_field"]
    assert "LOCATION" in found[P + "custom_fields[0].apply_to"]


def test_unknown_key_refused(registry: BackendRegistry, tmp_path: Path) -> None:
    assert P + "UrlBase" in problems(registry, tmp_path, UrlBase="x")


def test_all_problems_reported_together(registry: BackendRegistry, tmp_path: Path) -> None:
    found = problems(registry, tmp_path, service="X", api_version="v1", return_window_days=-1)
    assert {P + "service", P + "api_version", P + "return_window_days"} <= set(found)


def test_sandbox_url_needs_the_explicit_option(registry: BackendRegistry, tmp_path: Path) -> None:
    cfg = load(
        registry, tmp_path, url_base="http://127.0.0.1:8765", allow_insecure_sandbox_url=True
    )
    assert cfg.url_base == "http://127.0.0.1:8765"


def test_flow_requirements(registry: BackendRegistry, tmp_path: Path) -> None:
    found = problems(registry, tmp_path, auth_flow="jwt_bearer")
    assert "jwt_bearer" in found[P + "private_key"]
    found = problems(registry, tmp_path, client_secret=None)
    assert "required" in found[P + "client_secret"]


def test_jwt_key_must_be_rsa_pem(registry: BackendRegistry, tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key")
    found = problems(
        registry,
        tmp_path,
        auth_flow="jwt_bearer",
        private_key={"file": "bad.pem"},
        password=None,
        client_secret=None,
    )
    assert "RSA" in found[P + "private_key"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "key.pem").write_bytes(pem)
    cfg = load(
        registry,
        tmp_path,
        auth_flow="jwt_bearer",
        private_key={"file": "key.pem"},
        password=None,
        client_secret=None,
        audience="https://test.salesforce.com",
    )
    assert cfg.private_key is not None and "PRIVATE KEY" not in repr(cfg)


def test_name_templates() -> None:
    from sf_backend_helpers import config

    cfg = config()
    assert cfg.name_for(cfg.default_account_name, "SHOPNOW20140910", "en_US", "US") == (
        "SHOPNOW20140910-en_US-US"
    )
    assert cfg.name_for(cfg.sales_channel_name, "M", None, "US") == "M-US-POS"


def test_docs_example_loads(
    registry: BackendRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re
    import tomllib

    docs = Path(__file__).parents[4] / "docs" / "salesforce.md"
    if not docs.exists():  # pragma: no cover - installed without the repository
        pytest.skip("docs not available")
    block = re.search(r"```toml\n(.*?)```", docs.read_text(), re.S)
    assert block is not None
    for var in ("SHOPNOW_SF_PASSWORD", "SHOPNOW_SF_TOKEN", "SHOPNOW_SF_CLIENT_SECRET"):
        monkeypatch.setenv(var, "x")
    cfg = parse_config(tomllib.loads(block.group(1)), base_dir=tmp_path, registry=registry)
    settings = cfg.merchants["SHOPNOW20140910"].settings
    assert settings.delivery_method_name("ONLINE-DEFAULT") == "Standard Shipping"
    assert settings.return_window_days == 14


def test_plain_org_defaults(registry: BackendRegistry, tmp_path: Path) -> None:
    cfg = load(registry, tmp_path)
    assert (cfg.order_summary_creation, cfg.order_life_cycle_type) == ("connect", "MANAGED")
    assert cfg.take_with_fulfillment == "connector" and cfg.multi_currency is False
    assert dict(cfg.change_reasons) == {} and cfg.default_change_reason == "Unknown"
    mapped = load(registry, tmp_path, change_reasons={"Damaged": "Damaged"})
    assert mapped.change_reasons["Damaged"] == "Damaged"
