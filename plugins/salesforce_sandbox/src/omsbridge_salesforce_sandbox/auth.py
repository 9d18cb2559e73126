"""OAuth 2.0 token endpoint and bearer-token checks, as Salesforce answers them.

Flows: username-password, client credentials, JWT bearer (RS256 assertion verified against
the connected app's certificate / public key with PyJWT) and refresh token. Errors use the
``{"error", "error_description"}`` body with HTTP 400. Access tokens expire after the
configured lifetime (read against the sandbox clock); then every REST call answers 401
``INVALID_SESSION_ID``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import SalesforceError

if TYPE_CHECKING:
    from .clock import Clock


class TokenOptions(Protocol):
    """The option Auth reads at each token issue (it can change at run time)."""

    token_lifetime: float


JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass
class User:
    """An org user who can log in."""

    id: str
    username: str
    password: str
    security_token: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""


@dataclass
class ConnectedApp:
    """A connected app (consumer key/secret, certificate for JWT, allowed flows)."""

    client_id: str
    client_secret: str
    name: str = "omsbridge"
    certificate_pem: str | None = None
    client_credentials_user: str | None = None
    preauthorized_users: set[str] = field(default_factory=set)
    refresh_token_rotation: bool = False
    flows: set[str] = field(
        default_factory=lambda: {"password", "client_credentials", JWT_GRANT, "refresh_token"}
    )


@dataclass
class Token:
    """An issued access or refresh token."""

    value: str
    kind: str
    user_id: str
    client_id: str
    issued_at: float
    expires_at: float | None

    def to_json(self) -> dict[str, Any]:
        """Persistable form."""
        return self.__dict__.copy()


class OAuthError(Exception):
    """A token-endpoint refusal: ``{"error", "error_description"}`` with HTTP 400."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """The JSON error body."""
        return {"error": self.error, "error_description": self.description}


def generate_key_pair() -> tuple[str, str]:
    """A fresh RSA key pair as (private key PEM, public key PEM), for JWT bearer tests."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def _public_key(pem: str) -> Any:
    data = pem.encode()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return serialization.load_pem_public_key(data)


class Auth:
    """Users, connected apps and tokens of one sandbox org."""

    def __init__(
        self,
        clock: Clock,
        org_id: str,
        options: TokenOptions,
        persist_tokens: Callable[[], None],
    ) -> None:
        self._clock = clock
        self._org_id = org_id
        self._options = options
        self._persist_tokens = persist_tokens
        self.users: dict[str, User] = {}
        self.apps: dict[str, ConnectedApp] = {}
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    # --- set-up -----------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        """Register a user who can log in."""
        self.users[user.username.lower()] = user

    def add_app(self, app: ConnectedApp) -> None:
        """Register a connected app."""
        self.apps[app.client_id] = app

    def clear_tokens(self) -> None:
        """Forget every issued token."""
        with self._lock:
            self._tokens.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        """Issued tokens, for persistence across a restart."""
        with self._lock:
            return [t.to_json() for t in self._tokens.values()]

    def restore(self, tokens: list[dict[str, Any]]) -> None:
        """Restore tokens saved by :meth:`snapshot`."""
        with self._lock:
            self._tokens = {t["value"]: Token(**t) for t in tokens}

    # --- tokens --------------------------------------------------------------------------

    def _issue(self, kind: str, user: User, app: ConnectedApp) -> Token:
        now = self._clock.timestamp()
        org15 = self._org_id[:15]
        if kind == "access":
            value = f"{org15}!AQ{secrets.token_urlsafe(72)}"
            lifetime = self._options.token_lifetime
            expires = now + lifetime if lifetime else None
        else:
            value = f"5Aep{secrets.token_urlsafe(60)}"
            expires = None
        token = Token(value, kind, user.id, app.client_id, now, expires)
        with self._lock:
            self._tokens[value] = token
        self._persist_tokens()
        return token

    def issue_refresh_token(self, username: str, client_id: str) -> str:
        """A refresh token for *username* via *client_id*, as an interactive (web-server) login
        would give one; the sandbox has no browser flow, so tests get it from here."""
        user = self.users.get(username.lower())
        app = self.apps.get(client_id)
        if user is None or app is None:
            raise OAuthError("invalid_grant", "authentication failure")
        return self._issue("refresh", user, app).value

    def check(self, header: str | None) -> Token:
        """The access token of an ``Authorization: Bearer|OAuth`` header, or 401."""
        if not header:
            raise SalesforceError("INVALID_SESSION_ID", "Session expired or invalid", status=401)
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not value.strip():
            raise SalesforceError("INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE", status=401)
        token = self.lookup(value.strip())
        if token is None:
            raise SalesforceError("INVALID_SESSION_ID", "Session expired or invalid", status=401)
        return token

    def lookup(self, value: str) -> Token | None:
        """The live access token *value*, or None if unknown, revoked or expired."""
        with self._lock:
            token = self._tokens.get(value)
        if token is None or token.kind != "access":
            return None
        if token.expires_at is not None and self._clock.timestamp() >= token.expires_at:
            return None
        return token

    def revoke(self, value: str) -> bool:
        """Revoke an access or refresh token (refresh revocation also kills its access
        tokens' owner sessions for that app, as Salesforce does)."""
        with self._lock:
            token = self._tokens.pop(value, None)
            if token is not None and token.kind == "refresh":
                for other in list(self._tokens.values()):
                    if other.client_id == token.client_id and other.user_id == token.user_id:
                        self._tokens.pop(other.value, None)
        self._persist_tokens()
        return token is not None

    # --- the token endpoint ------------------------------------------------------------------

    def token_endpoint(self, form: dict[str, str], instance_url: str) -> dict[str, Any]:
        """Handle ``POST /services/oauth2/token``; raises OAuthError on refusal."""
        grant = form.get("grant_type", "")
        if grant == "password":
            app = self._client(form)
            user = self.users.get(form.get("username", "").lower())
            password = form.get("password", "")
            if user is None or password not in (user.password, user.password + user.security_token):
                raise OAuthError("invalid_grant", "authentication failure")
            self._allowed(app, grant)
            return self._response(self._issue("access", user, app), app, instance_url)
        if grant == "client_credentials":
            app = self._client(form)
            self._allowed(app, grant)
            if not app.client_credentials_user:
                raise OAuthError("invalid_grant", "no client credentials user enabled")
            user = self.users[app.client_credentials_user.lower()]
            return self._response(
                self._issue("access", user, app),
                app,
                instance_url,
                scope="api",
                token_format="opaque",
            )
        if grant == JWT_GRANT:
            return self._jwt(form, instance_url)
        if grant == "refresh_token":
            app = self._client(form, secret_required=bool(form.get("client_secret")))
            with self._lock:
                refresh = self._tokens.get(form.get("refresh_token", ""))
            if refresh is None or refresh.kind != "refresh" or refresh.client_id != app.client_id:
                raise OAuthError("invalid_grant", "expired access/refresh token")
            user = next(u for u in self.users.values() if u.id == refresh.user_id)
            body = self._response(
                self._issue("access", user, app), app, instance_url, scope="api refresh_token"
            )
            if app.refresh_token_rotation:
                self.revoke(refresh.value)
                body["refresh_token"] = self._issue("refresh", user, app).value
            return body
        raise OAuthError("unsupported_grant_type", "grant type not supported")

    def _client(self, form: dict[str, str], *, secret_required: bool = True) -> ConnectedApp:
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if secret_required and not hmac.compare_digest(
            form.get("client_secret", ""), app.client_secret
        ):
            raise OAuthError("invalid_client", "invalid client credentials")
        return app

    @staticmethod
    def _allowed(app: ConnectedApp, grant: str) -> None:
        if grant not in app.flows:
            raise OAuthError("unsupported_grant_type", "grant type not supported")

    def _jwt(self, form: dict[str, str], instance_url: str) -> dict[str, Any]:
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        app = self.apps.get(str(unverified.get("iss", "")))
        if app is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        self._allowed(app, JWT_GRANT)
        if not app.certificate_pem:
            raise OAuthError("invalid_grant", "invalid assertion")
        audiences = [*JWT_AUDIENCES, instance_url.rstrip("/")]
        try:
            claims = jwt.decode(
                assertion,
                _public_key(app.certificate_pem),
                algorithms=["RS256"],
                audience=audiences,
                options={"verify_exp": False, "require": ["exp", "sub"]},
            )
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", "audience is invalid") from None
        except jwt.MissingRequiredClaimError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        # Expiry is read against the sandbox clock, not the host's, so tests can move time.
        if float(claims["exp"]) <= self._clock.timestamp():
            raise OAuthError("invalid_grant", "expired authorization code")
        user = self.users.get(str(claims["sub"]).lower())
        if user is None or (
            app.preauthorized_users and user.username.lower() not in app.preauthorized_users
        ):
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return self._response(
            self._issue("access", user, app), app, instance_url, scope="api", sign=False
        )

    def _response(
        self,
        token: Token,
        app: ConnectedApp,
        instance_url: str,
        *,
        scope: str | None = None,
        token_format: str | None = None,
        sign: bool = True,
    ) -> dict[str, Any]:
        issued_at = str(int(token.issued_at * 1000))
        identity = f"{instance_url.rstrip('/')}/id/{self._org_id}/{token.user_id}"
        body: dict[str, Any] = {
            "access_token": token.value,
            "instance_url": instance_url.rstrip("/"),
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
        if sign:
            digest = hmac.new(
                app.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
            body["signature"] = base64.b64encode(digest).decode()
        if scope:
            body["scope"] = scope
        if token_format:
            body["token_format"] = token_format
        return body

    def identity(self, token: Token, instance_url: str) -> dict[str, Any]:
        """The identity URL's body for the token's user."""
        user = next(u for u in self.users.values() if u.id == token.user_id)
        base = instance_url.rstrip("/")
        return {
            "id": f"{base}/id/{self._org_id}/{user.id}",
            "asserted_user": True,
            "user_id": user.id,
            "organization_id": self._org_id,
            "username": user.username,
            "display_name": f"{user.first_name} {user.last_name}".strip(),
            "email": user.email,
            "active": True,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "urls": {
                "rest": f"{base}/services/data/v{{version}}/",
                "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
                "query": f"{base}/services/data/v{{version}}/query/",
            },
        }
