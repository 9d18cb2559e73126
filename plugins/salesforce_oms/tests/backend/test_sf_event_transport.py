"""The event_transport settings: Pub/Sub by default, CometD on request, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_sf_config import load, problems

from omsbridge.registry import BackendRegistry
from omsbridge_salesforce.backend import SalesforceBackend


@pytest.fixture
def registry() -> BackendRegistry:
    r = BackendRegistry()
    r.register(SalesforceBackend)
    return r


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_PASSWORD", "hgj6576AhgA^=@8")
    monkeypatch.setenv("SF_SECRET", "consumer-secret")


def test_pubsub_is_the_default_for_an_org(registry: BackendRegistry, tmp_path: Path) -> None:
    cfg = load(registry, tmp_path)
    assert cfg.transport == "pubsub"
    assert cfg.pubsub_endpoint == "api.pubsub.salesforce.com:443" and cfg.pubsub_tls
    assert load(registry, tmp_path, event_transport="cometd").transport == "cometd"


def test_the_loopback_sandbox(registry: BackendRegistry, tmp_path: Path) -> None:
    sandbox = {"url_base": "http://127.0.0.1:8765", "allow_insecure_sandbox_url": True}
    assert load(registry, tmp_path, **sandbox).transport == "cometd"  # no gRPC port given
    cfg = load(registry, tmp_path, **sandbox, pubsub_endpoint="127.0.0.1:9000")
    assert cfg.transport == "pubsub" and not cfg.pubsub_tls
    found = problems(registry, tmp_path, **sandbox, event_transport="pubsub")
    assert "pubsub_endpoint" in found["merchants.SHOPNOW.salesforce.pubsub_endpoint"]


def test_bad_values_are_refused_with_their_path(registry: BackendRegistry, tmp_path: Path) -> None:
    found = problems(
        registry,
        tmp_path,
        event_transport="grpc",
        pubsub_endpoint="api.pubsub.salesforce.com",
        pubsub_batch_size=500,
        stall_timeout=1,
    )
    prefix = "merchants.SHOPNOW.salesforce."
    assert found[prefix + "event_transport"] == "must be pubsub or cometd, got 'grpc'"
    assert found[prefix + "pubsub_endpoint"].startswith("must be host:port")
    assert found[prefix + "pubsub_batch_size"] == "must be 1-100, got 500"
    assert found[prefix + "stall_timeout"].startswith("must be a number of seconds, 5-3600")


def test_a_ca_file_means_tls_trusting_it(registry: BackendRegistry, tmp_path: Path) -> None:
    sandbox = {"url_base": "http://127.0.0.1:8765", "allow_insecure_sandbox_url": True}
    pem = tmp_path / "sandbox.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    cfg = load(
        registry,
        tmp_path,
        **sandbox,
        pubsub_endpoint="127.0.0.1:9000",
        pubsub_ca_file=str(pem),
    )
    assert cfg.pubsub_tls and cfg.pubsub_root_certificates == pem.read_bytes()
    prefix = "merchants.SHOPNOW.salesforce.pubsub_ca_file"
    missing = problems(registry, tmp_path, pubsub_ca_file=str(tmp_path / "nope.pem"))
    assert missing[prefix] == f"{tmp_path / 'nope.pem'}: not a file"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    found = problems(registry, tmp_path, pubsub_ca_file=str(junk))
    assert found[prefix] == f"{junk}: expected PEM certificates (BEGIN CERTIFICATE)"
    assert problems(registry, tmp_path, pubsub_ca_file=5)[prefix] == (
        "expected a string, got a number (5)"
    )
