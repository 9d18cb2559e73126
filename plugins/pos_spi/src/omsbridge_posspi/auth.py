"""Credentials for the SPI: which headers a request carries, and the OAuth2 token cache.

No HTTP happens here: :mod:`omsbridge_posspi.client` asks for headers, fetches tokens when told
to, and reports a 401 so a cached token can be dropped. Secret values never leave these objects
except into request headers or the token request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from omsbridge.errors import AuthFailed
from omsbridge_posspi.config import AuthMethod, SpiAuth

__all__ = ["ApiKeyCredentials", "Credentials", "OAuth2Credentials", "credentials_for"]

TokenFetcher = Callable[[str, Mapping[str, str]], Mapping[str, Any]]
"""POSTs a form to a token URL and returns the JSON answer (the client's job)."""

_EXPIRY_MARGIN = 30.0  # seconds: renew a little early so a token never expires in flight


class Credentials:
    """What a request needs to be accepted by the SPI."""

    refreshable = False
    """True when a 401 may be cured by fetching a new token and sending the request again."""

    def headers(self, fetch: TokenFetcher) -> dict[str, str]:
        """Headers to add to a request (may fetch a token first)."""
        raise NotImplementedError

    def invalidate(self, headers: Mapping[str, str]) -> None:
        """Forget the token that ``headers`` carried, because the server refused it."""


class ApiKeyCredentials(Credentials):
    """A static API key sent in one header on every request."""

    def __init__(self, settings: SpiAuth) -> None:
        assert settings.api_key is not None
        self._header = settings.header
        self._key = settings.api_key

    def headers(self, fetch: TokenFetcher) -> dict[str, str]:
        """The API-key header."""
        return {self._header: self._key.reveal()}

    def __repr__(self) -> str:
        return f"ApiKeyCredentials(header={self._header!r}, api_key={self._key!r})"


class OAuth2Credentials(Credentials):
    """OAuth2 client credentials: one cached bearer token, shared by every thread of a backend."""

    refreshable = True

    def __init__(self, settings: SpiAuth) -> None:
        assert settings.token_url and settings.client_id and settings.client_secret is not None
        self._settings = settings
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def headers(self, fetch: TokenFetcher) -> dict[str, str]:
        """An ``Authorization: Bearer`` header, fetching a token when none is cached or it expired."""
        # One thread fetches while the others wait for its token rather than fetching their own.
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._token, self._expires_at = self._fetch(fetch)
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self, headers: Mapping[str, str]) -> None:
        """Drop the cached token if it is the one that was refused (another thread may have
        replaced it already)."""
        with self._lock:
            if self._token is not None and headers.get("Authorization") == f"Bearer {self._token}":
                self._token = None

    def _fetch(self, fetch: TokenFetcher) -> tuple[str, float]:
        s = self._settings
        assert s.token_url and s.client_id and s.client_secret is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": s.client_id,
            "client_secret": s.client_secret.reveal(),
        }
        if s.scope:
            form["scope"] = s.scope
        answer = fetch(s.token_url, form)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthFailed(
                "the token endpoint answered without an access_token",
                code="INVALID_TOKEN_RESPONSE",
                backend="pos-spi",
            )
        expires_in = answer.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        margin = min(_EXPIRY_MARGIN, lifetime / 2)
        return token, time.monotonic() + max(0.0, lifetime - margin)

    def __repr__(self) -> str:
        s = self._settings
        return (
            f"OAuth2Credentials(token_url={s.token_url!r}, client_id={s.client_id!r}, "
            f"client_secret={s.client_secret!r})"
        )


def credentials_for(settings: SpiAuth) -> Credentials:
    """The credentials object for a merchant's ``auth`` settings."""
    if settings.type == AuthMethod.OAUTH2:
        return OAuth2Credentials(settings)
    return ApiKeyCredentials(settings)
