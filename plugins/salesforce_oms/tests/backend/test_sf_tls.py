"""Every merchant's Salesforce clients share one TLS context (a worker holds thousands)."""

from __future__ import annotations

import httpx
import pytest
from sf_backend_helpers import config

from omsbridge_salesforce import _tls
from omsbridge_salesforce.client import SalesforceClient
from omsbridge_salesforce.streaming.bayeux import BayeuxClient
from omsbridge_salesforce.streaming.bayeux_async import AsyncBayeuxClient


def test_clients_of_many_merchants_load_the_ca_bundle_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from httpx._transports import default as transports

    built: list[object] = []
    real = transports.create_ssl_context

    def counting(verify: object = True, **kwargs: object) -> ssl.SSLContext:
        if not isinstance(verify, ssl.SSLContext):  # a given context is used as it is
            built.append(verify)
        return real(verify=verify, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transports, "create_ssl_context", counting)
    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    _tls.shared_tls.cache_clear()
    clients = [SalesforceClient(config(f"https://m{n}.my.salesforce.com")) for n in range(20)]
    feeds = [BayeuxClient(f"https://m{n}.my.salesforce.com/cometd/62.0") for n in range(20)]
    sessions = [AsyncBayeuxClient(f"https://m{n}.my.salesforce.com/cometd/62.0") for n in range(20)]
    try:
        # 20 REST clients, their 20 token clients, 20 blocking and 20 asyncio CometD clients
        # (the listeners' sessions): one context in all
        # (httpx would otherwise build and load one per client, about 0.85 MB each).
        assert len(built) == 1
    finally:
        for client in clients:
            client.close()
        for feed in feeds:
            feed.close()
        assert all(session._transport is not None for session in sessions)
        _tls.shared_tls.cache_clear()
