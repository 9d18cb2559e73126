"""OAuth flows, re-authentication on 401 (once, single flight), no secret in errors."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sf_backend_helpers import config

from omsbridge import AuthFailed, RateLimited, Secret, TransientBackendError
from omsbridge_salesforce.auth import SalesforceAuth
from omsbridge_salesforce.client import SalesforceClient

URL = "https://ps--uat.my.salesforce.com"


class FakeOrg:
    """Token endpoint + one REST resource; tokens expire when told to."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.valid: set[str] = set()
        self.token_status = 200
        self.lock = threading.Lock()
        self.slow_token = 0.0
        self.refuse_all = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            with self.lock:
                self.forms.append(form)
                n = len(self.forms)
            time.sleep(self.slow_token)
            if self.token_status != 200:
                return httpx.Response(
                    self.token_status,
                    json={"error": "invalid_grant", "error_description": "authentication failure"},
                )
            token = f"00Dx!token{n}"
            self.valid.add(token)
            return httpx.Response(
                200,
                json={
                    "access_token": token,
                    "instance_url": URL,
                    "token_type": "Bearer",
                    "issued_at": "1",
                },
            )
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid or self.refuse_all:
            return httpx.Response(
                401,
                json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
            )
        return httpx.Response(
            200,
            json={"totalSize": 0, "done": True, "records": []},
            headers={"Sforce-Limit-Info": "api-usage=7/15000"},
        )


def make(org: FakeOrg, **overrides: object) -> SalesforceClient:
    return SalesforceClient(config(URL, **overrides), transport=httpx.MockTransport(org))


def test_password_flow_appends_security_token() -> None:
    org = FakeOrg()
    client = make(org, security_token=Secret("SECTOKEN", "t"))
    client.query("SELECT Id FROM Account")
    (form,) = org.forms
    assert form["grant_type"] == "password"
    assert form["password"] == "sandbox-passwordSECTOKEN"
    assert form["client_id"] == "3MVG9omsbridgeSandboxConsumerKey"
    assert client.api_usage == (7, 15000)


def test_client_credentials_flow() -> None:
    org = FakeOrg()
    client = make(org, auth_flow="client_credentials", username=None, password=None)
    client.query("SELECT Id FROM Account")
    assert org.forms[0] == {
        "grant_type": "client_credentials",
        "client_id": "3MVG9omsbridgeSandboxConsumerKey",
        "client_secret": "sandbox-consumer-secret",
    }


def test_jwt_bearer_flow_signs_rs256() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    org = FakeOrg()
    cfg = config(
        URL,
        auth_flow="jwt_bearer",
        password=None,
        client_secret=None,
        private_key=Secret(pem, "t"),
        audience="https://test.salesforce.com",
    )
    auth = SalesforceAuth(cfg, transport=httpx.MockTransport(org), clock=lambda: 1_800_000_000)
    auth.token()
    form = org.forms[0]
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"],
        key.public_key(),
        algorithms=["RS256"],
        audience="https://test.salesforce.com",
        options={"verify_exp": False},
    )
    assert claims == {
        "iss": cfg.client_id,
        "sub": cfg.username,
        "aud": "https://test.salesforce.com",
        "exp": 1_800_000_180,
    }


def test_expired_token_reauthenticates_once_and_replays() -> None:
    org = FakeOrg()
    client = make(org)
    client.query("SELECT Id FROM Account")
    org.valid.clear()  # the session expired
    client.query("SELECT Id FROM Account")
    assert len(org.forms) == 2
    assert client.requests_sent == 2


def test_second_401_is_auth_failed() -> None:
    org = FakeOrg()
    client = make(org)
    client.auth.token()
    org.refuse_all = True
    with pytest.raises(AuthFailed) as info:
        client.query("SELECT Id FROM Account")
    assert info.value.code == "INVALID_SESSION_ID"
    assert info.value.status == 401
    assert len(org.forms) == 2  # one re-authentication, no loop


def test_concurrent_401s_share_one_reauthentication() -> None:
    org = FakeOrg()
    client = make(org)
    client.auth.token()
    org.valid.clear()
    org.slow_token = 0.05
    errors: list[BaseException] = []

    def run() -> None:
        try:
            client.query("SELECT Id FROM Account")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(org.forms) == 2  # the first token and ONE refresh for all eight threads


def test_refused_credentials_are_auth_failed_without_secrets() -> None:
    org = FakeOrg()
    org.token_status = 400
    client = make(org)
    with pytest.raises(AuthFailed) as info:
        client.query("SELECT Id FROM Account")
    text = str(info.value) + repr(info.value)
    assert info.value.code == "invalid_grant" and info.value.backend == "salesforce"
    for secret in ("sandbox-password", "sandbox-consumer-secret"):
        assert secret not in text
    assert "sandbox-password" not in repr(client.auth)


def test_token_endpoint_down_is_transient() -> None:
    org = FakeOrg()
    org.token_status = 503
    with pytest.raises(TransientBackendError):
        make(org).auth.token()

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    auth = SalesforceAuth(config(URL), transport=httpx.MockTransport(boom))
    with pytest.raises(TransientBackendError) as info:
        auth.token()
    assert info.value.code == "CONNECTION"


def test_token_rate_limit() -> None:
    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "error": "rate_limit_exceeded",
                "error_description": "ip/user rate limit exceeded",
            },
        )

    with pytest.raises(RateLimited):
        SalesforceAuth(config(URL), transport=httpx.MockTransport(limited)).token()
