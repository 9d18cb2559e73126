"""OAuth 2.0 for the Salesforce REST API, as an :class:`httpx.Auth`.

Three flows (auth.md): ``password`` (username-password, how the seed configures it),
``client_credentials`` and ``jwt_bearer`` (RS256 assertion). None of them issues a refresh
token and Salesforce sends no ``expires_in``, so a token is used until a request answers 401
(``INVALID_SESSION_ID``); then the token is fetched again once — by one thread for all of them —
and the request replayed once. A second 401 is the caller's :class:`~omsbridge.AuthFailed`.

No secret ever appears in a log line, a repr or an error message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import attrs
import httpx

from omsbridge import AuthFailed, RateLimited, TransientBackendError
from omsbridge_salesforce._tls import shared_tls
from omsbridge_salesforce.config import SalesforceConfig

__all__ = ["BACKEND", "SalesforceAuth", "Token"]

BACKEND = "salesforce"
log = logging.getLogger(__name__)

_JWT_LIFETIME = 180  # seconds; Salesforce wants exp within ~3 minutes


@attrs.frozen
class Token:
    """An access token and the instance every API call must go to."""

    access_token: str = attrs.field(repr=False)
    instance_url: str
    obtained_at: float
    org_id: str = ""
    """The org's id (from the token response's identity URL ``.../id/ORG/USER``): the
    ``tenantid`` of Pub/Sub calls."""

    def __str__(self) -> str:
        return f"<token for {self.instance_url}>"


class SalesforceAuth(httpx.Auth):
    """Bearer-token auth shared by every thread of one merchant's client.

    ``transport`` (tests) replaces the network for token requests; ``clock`` gives epoch
    seconds for the JWT ``exp`` claim.
    """

    requires_response_body = True  # the 401 body tells INVALID_SESSION_ID apart

    def __init__(
        self,
        config: SalesforceConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._http = httpx.Client(
            transport=transport,
            verify=shared_tls(),
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            headers={"Accept": "application/json"},
        )
        self.token_requests = 0
        """How many tokens were fetched (for tests and metrics)."""

    def __repr__(self) -> str:
        return f"SalesforceAuth(flow={self._config.auth_flow!r}, url={self._config.url_base!r})"

    # -- httpx.Auth ---------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send with the current token; on 401 get a new one (once) and replay the request once."""
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code == 401:
            log.info("Salesforce answered 401 (%s); re-authenticating once", _error_code(response))
            fresh = self.refresh(token)
            request.headers["Authorization"] = f"Bearer {fresh.access_token}"
            yield request

    # -- tokens -------------------------------------------------------------------------------

    def token(self) -> Token:
        """The current token, fetched on first use."""
        token = self._token
        if token is not None:
            return token
        with self._lock:
            if self._token is None:
                self._token = self._fetch()
            return self._token

    def refresh(self, stale: Token | None = None) -> Token:
        """A new token, unless another thread already replaced ``stale`` (single flight)."""
        with self._lock:
            if self._token is None or self._token is stale or stale is None:
                self._token = self._fetch()
            return self._token

    def invalidate(self) -> None:
        """Forget the token (the next request fetches one)."""
        with self._lock:
            self._token = None

    @property
    def instance_url(self) -> str:
        """Base URL of API calls (the token response's ``instance_url``)."""
        return self.token().instance_url

    def close(self) -> None:
        """Close the token endpoint's connections."""
        self._http.close()

    def _form(self) -> dict[str, str]:
        cfg = self._config
        if cfg.auth_flow == "password":
            assert cfg.password is not None and cfg.client_secret is not None  # config checks
            password = cfg.password.reveal()
            if cfg.security_token is not None:
                password += cfg.security_token.reveal()
            return {
                "grant_type": "password",
                "client_id": cfg.client_id or "",
                "client_secret": cfg.client_secret.reveal(),
                "username": cfg.username or "",
                "password": password,
            }
        if cfg.auth_flow == "client_credentials":
            assert cfg.client_secret is not None
            return {
                "grant_type": "client_credentials",
                "client_id": cfg.client_id or "",
                "client_secret": cfg.client_secret.reveal(),
            }
        return {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": self._assertion(),
        }

    def _assertion(self) -> str:
        import jwt

        cfg = self._config
        assert cfg.private_key is not None
        claims = {
            "iss": cfg.client_id,
            "sub": cfg.username,
            "aud": cfg.audience,
            "exp": int(self._clock()) + _JWT_LIFETIME,
        }
        return jwt.encode(claims, cfg.private_key.reveal(), algorithm="RS256")

    def _fetch(self) -> Token:
        cfg = self._config
        url = cfg.effective_token_url
        try:
            response = self._http.post(url, data=self._form())
        except httpx.TimeoutException:
            raise TransientBackendError(
                f"timed out requesting a Salesforce token from {url}",
                code="TIMEOUT",
                backend=BACKEND,
            ) from None
        except httpx.HTTPError as exc:
            raise TransientBackendError(
                f"cannot reach the Salesforce token endpoint {url}: {type(exc).__name__}",
                code="CONNECTION",
                backend=BACKEND,
            ) from None
        self.token_requests += 1
        body = _json(response)
        if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
            log.info("got a Salesforce token (flow=%s)", cfg.auth_flow)
            return Token(
                access_token=str(body["access_token"]),
                instance_url=str(body.get("instance_url") or cfg.url_base).rstrip("/"),
                obtained_at=time.monotonic(),
                org_id=_org_of(body.get("id")),
            )
        error = body.get("error") if isinstance(body, dict) else None
        described = body.get("error_description") if isinstance(body, dict) else None
        code = str(error or f"HTTP_{response.status_code}")
        message = f"Salesforce token request failed ({cfg.auth_flow} flow): {code}" + (
            f": {described}" if described else ""
        )
        if response.status_code >= 500:
            raise TransientBackendError(
                message, code=code, status=response.status_code, backend=BACKEND
            )
        if error == "rate_limit_exceeded":
            raise RateLimited(message, code=code, status=response.status_code, backend=BACKEND)
        raise AuthFailed(message, code=code, status=response.status_code, backend=BACKEND)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_code(response: httpx.Response) -> str:
    body = _json(response)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode", "?"))
    return "?"


def _org_of(identity: Any) -> str:
    """The org id of an identity URL ``https://login.salesforce.com/id/ORG/USER``."""
    if not isinstance(identity, str) or "/id/" not in identity:
        return ""
    return identity.split("/id/", 1)[1].split("/", 1)[0]
