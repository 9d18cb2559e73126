"""Who is calling ``omsbridge serve``: API keys, OAuth2 client-credentials tokens, the admin key.

Keys and secrets are compared with :func:`hmac.compare_digest` (constant time) and never logged.
Bearer tokens are stateless: ``<client>.<expiry>.<HMAC>`` signed with a key derived from that
client's secret, so every worker process (and a restarted server) accepts the tokens of the
others, and changing a client's secret revokes its tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from omsbridge_posspi.serve.config import ServeClient, ServeConfig
from omsbridge_posspi.server.errors import ApiError, unauthorized

__all__ = ["API_KEY_HEADER", "Authenticator", "TokenGrant"]

API_KEY_HEADER = "X-API-Key"
_TOKEN_CONTEXT = b"omsbridge-serve-token-v1"


class TokenGrant:
    """An issued bearer token and its lifetime in seconds."""

    def __init__(self, token: str, expires_in: int) -> None:
        self.token = token
        self.expires_in = expires_in

    def __repr__(self) -> str:
        return f"TokenGrant(token=<hidden>, expires_in={self.expires_in})"


class Authenticator:
    """Finds the client of a request, and issues tokens for client credentials."""

    def __init__(self, config: ServeConfig, clock: Callable[[], float] = time.time) -> None:
        self._clients = config.clients
        self._by_client_id = {c.client_id: c for c in config.clients if c.client_id}
        self._by_name = {c.name: c for c in config.clients}
        self._admin = config.admin
        self._ttl = config.token_ttl
        self._clock = clock

    def client(self, headers: Mapping[str, str]) -> ServeClient:
        """The client an API key or bearer token names; 401 in the contract's shape if none."""
        key = headers.get(API_KEY_HEADER)
        if key:
            for client in self._clients:
                if client.api_key is not None and _same(client.api_key.reveal(), key):
                    return client
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            client, expired = self._check_token(token.strip())
            if client is not None:
                return client
            if expired:
                raise ApiError(401, "TOKEN_EXPIRED", "the bearer token has expired; get a new one")
        raise unauthorized(API_KEY_HEADER, "omsbridge-serve")

    def require_admin(self, headers: Mapping[str, str]) -> None:
        """Let only the ``[serve.admin]`` key through (401 otherwise, 404 with no admin set)."""
        if self._admin is None:
            raise ApiError(404, "NO_SUCH_ENDPOINT", "the outbox admin is off (no [serve.admin])")
        key = headers.get(API_KEY_HEADER) or ""
        if not _same(self._admin.api_key.reveal(), key):
            raise ApiError(401, "UNAUTHORIZED", f"send the admin key in {API_KEY_HEADER}")

    def grant(self, client_id: str | None, secret: str | None) -> TokenGrant | None:
        """A token for valid client credentials, None for an unknown client or a wrong secret."""
        client = self._by_client_id.get(client_id or "")
        if client is None or client.client_secret is None:
            _same("x" * 32, secret or "")  # spend the same time on unknown clients
            return None
        if not _same(client.client_secret.reveal(), secret or ""):
            return None
        expiry = int(self._clock()) + self._ttl
        body = f"{_b64(client.name.encode())}.{expiry}"
        return TokenGrant(f"{body}.{self._sign(client, body)}", self._ttl)

    def _check_token(self, token: str) -> tuple[ServeClient | None, bool]:
        """``(client, False)`` for a good token, ``(None, True)`` for an expired one."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None, False
        try:
            name = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)).decode()
        except ValueError:
            return None, False
        client = self._by_name.get(name)
        if client is None or client.client_secret is None:
            return None, False
        if not _same(self._sign(client, f"{parts[0]}.{parts[1]}"), parts[2]):
            return None, False
        if int(parts[1]) <= self._clock():
            return None, True
        return client, False

    @staticmethod
    def _sign(client: ServeClient, body: str) -> str:
        assert client.client_secret is not None
        key = hashlib.sha256(_TOKEN_CONTEXT + client.client_secret.reveal().encode()).digest()
        return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
