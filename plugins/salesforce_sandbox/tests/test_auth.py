"""OAuth token endpoint flows, token expiry and the 401 INVALID_SESSION_ID answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx
import jwt
import pytest
from sf_sandbox_helpers import BASE

from omsbridge_salesforce_sandbox import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    SECURITY_TOKEN,
    USERNAME,
    SandboxServer,
)
from omsbridge_salesforce_sandbox.auth import generate_key_pair

TOKEN = "/services/oauth2/token"


def _post(server: SandboxServer, **form: str) -> httpx.Response:
    return httpx.post(server.url + TOKEN, data=form)


def _password(server: SandboxServer, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "password",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "username": USERNAME,
        "password": PASSWORD,
        **overrides,
    }
    return _post(server, **form)


def _assertion(server: SandboxServer, key: str | None = None, **claims: Any) -> str:
    payload = {
        "iss": CLIENT_ID,
        "sub": USERNAME,
        "aud": "https://login.salesforce.com",
        "exp": int(server.sandbox.clock.timestamp()) + 180,
        **claims,
    }
    private = key or server.sandbox.credentials["jwt_private_key_pem"]
    return jwt.encode(payload, private, algorithm="RS256")


def test_password_flow_response_shape_and_signature(sf_sandbox: SandboxServer) -> None:
    response = _password(sf_sandbox)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert body["instance_url"] == sf_sandbox.url
    assert body["token_type"] == "Bearer"
    org15 = sf_sandbox.sandbox.org_id[:15]
    assert body["access_token"].startswith(org15 + "!")
    assert body["issued_at"].isdigit() and len(body["issued_at"]) == 13  # milliseconds
    expected = base64.b64encode(
        hmac.new(
            CLIENT_SECRET.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert body["signature"] == expected
    assert "refresh_token" not in body
    with_token = _password(sf_sandbox, password=PASSWORD + SECURITY_TOKEN)
    assert with_token.status_code == 200
    identity = httpx.get(body["id"], headers={"Authorization": f"Bearer {body['access_token']}"})
    assert identity.json()["username"] == USERNAME


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"password": "nope"}, "invalid_grant", "authentication failure"),
        ({"username": "ghost@example.com"}, "invalid_grant", "authentication failure"),
        ({"client_id": "unknown"}, "invalid_client_id", "client identifier invalid"),
        ({"client_secret": "wrong"}, "invalid_client", "invalid client credentials"),
        ({"grant_type": "magic"}, "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_token_errors(
    sf_sandbox: SandboxServer, overrides: dict[str, str], error: str, description: str
) -> None:
    response = _password(sf_sandbox, **overrides)
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["Cache-Control"] == "no-store"


def test_client_credentials_flow(sf_sandbox: SandboxServer) -> None:
    response = _post(
        sf_sandbox,
        grant_type="client_credentials",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_format"] == "opaque" and body["scope"]
    with sf_sandbox.client(body["access_token"]) as http:
        assert http.get(f"{BASE}/limits").status_code == 200


def test_jwt_bearer_flow(sf_sandbox: SandboxServer) -> None:
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ok = _post(sf_sandbox, grant_type=grant, assertion=_assertion(sf_sandbox))
    assert ok.status_code == 200, ok.text
    assert "signature" not in ok.json() and ok.json()["scope"]
    with sf_sandbox.client(ok.json()["access_token"]) as http:
        assert http.get(f"{BASE}/limits").status_code == 200
    other_key, _ = generate_key_pair()
    cases = [
        (_assertion(sf_sandbox, key=other_key), "invalid_grant", "invalid assertion"),
        (
            _assertion(sf_sandbox, aud="https://evil.example.com"),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            _assertion(sf_sandbox, exp=int(sf_sandbox.sandbox.clock.timestamp()) - 10),
            "invalid_grant",
            "expired authorization code",
        ),
        (_assertion(sf_sandbox, iss="nobody"), "invalid_client_id", "client identifier invalid"),
        (
            _assertion(sf_sandbox, sub="ghost@example.com"),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        ("not-a-jwt", "invalid_grant", "invalid assertion"),
    ]
    for assertion, error, description in cases:
        response = _post(sf_sandbox, grant_type=grant, assertion=assertion)
        assert response.status_code == 400
        assert response.json() == {"error": error, "error_description": description}
    # The sandbox's own URL is an accepted audience too.
    own = _post(sf_sandbox, grant_type=grant, assertion=_assertion(sf_sandbox, aud=sf_sandbox.url))
    assert own.status_code == 200


def test_jwt_with_configured_certificate() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    from omsbridge_salesforce_sandbox import serve

    private_pem, _ = generate_key_pair()
    key = serialization.load_pem_private_key(private_pem.encode(), None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connected app")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    with serve(jwt_certificate_pem=pem) as server:
        assert server.sandbox.credentials["jwt_private_key_pem"] is None
        response = _post(
            server,
            grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer",
            assertion=_assertion(server, key=private_pem),
        )
        assert response.status_code == 200


def test_refresh_token_flow_and_rotation(sf_sandbox: SandboxServer) -> None:
    control = httpx.post(
        f"{sf_sandbox.url}/__sandbox__/refresh-token",
        json={"username": USERNAME, "client_id": CLIENT_ID},
    )
    refresh = control.json()["refresh_token"]
    ok = _post(
        sf_sandbox,
        grant_type="refresh_token",
        refresh_token=refresh,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert ok.status_code == 200 and "refresh_token" not in ok.json()
    wrong_secret = _post(
        sf_sandbox,
        grant_type="refresh_token",
        refresh_token=refresh,
        client_id=CLIENT_ID,
        client_secret="bad",
    )
    assert wrong_secret.json()["error"] == "invalid_client"
    unknown = _post(
        sf_sandbox,
        grant_type="refresh_token",
        refresh_token="5Aepnope",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert unknown.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    sf_sandbox.sandbox.auth.apps[CLIENT_ID].refresh_token_rotation = True
    rotated = _post(
        sf_sandbox,
        grant_type="refresh_token",
        refresh_token=refresh,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    ).json()
    assert rotated["refresh_token"] != refresh
    old = _post(
        sf_sandbox,
        grant_type="refresh_token",
        refresh_token=refresh,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert old.status_code == 400
    revoke = httpx.post(
        f"{sf_sandbox.url}/services/oauth2/revoke", data={"token": rotated["refresh_token"]}
    )
    assert revoke.status_code == 200
    revoked = _post(
        sf_sandbox,
        grant_type="refresh_token",
        refresh_token=rotated["refresh_token"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert revoked.status_code == 400


def test_tokens_expire_with_the_clock_and_rest_answers_401(sf_sandbox: SandboxServer) -> None:
    sandbox = sf_sandbox.sandbox
    sandbox.set_token_lifetime(60)
    token = sf_sandbox.token()["access_token"]
    with sf_sandbox.client(token) as http:
        assert http.get(f"{BASE}/limits").status_code == 200
        sandbox.clock.advance(61)
        expired = http.get(f"{BASE}/sobjects/Account")
        assert expired.status_code == 401
        assert expired.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
        for path in (
            "query?q=SELECT+Id+FROM+Account",
            "composite/graph",
            "commerce/order-management/order-summaries",
        ):
            method = "GET" if path.startswith("query") else "POST"
            assert http.request(method, f"{BASE}/{path}", json={}).status_code == 401
    fresh = sf_sandbox.token()["access_token"]
    with sf_sandbox.client(fresh) as http:
        assert http.get(f"{BASE}/limits").status_code == 200
    missing = httpx.get(f"{sf_sandbox.url}{BASE}/limits")
    assert missing.status_code == 401 and missing.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    revoke = httpx.post(f"{sf_sandbox.url}/services/oauth2/revoke", data={"token": fresh})
    assert revoke.status_code == 200
    with sf_sandbox.client(fresh) as http:
        assert http.get(f"{BASE}/limits").status_code == 401


def test_token_lifetime_control_endpoint(sf_sandbox: SandboxServer) -> None:
    response = httpx.post(f"{sf_sandbox.url}/__sandbox__/faults", json={"token_lifetime": 5})
    assert response.json()["token_lifetime"] == 5
    token = sf_sandbox.token()["access_token"]
    httpx.post(f"{sf_sandbox.url}/__sandbox__/clock", json={"advance": 6})
    with sf_sandbox.client(token) as http:
        assert http.get(f"{BASE}/limits").status_code == 401
