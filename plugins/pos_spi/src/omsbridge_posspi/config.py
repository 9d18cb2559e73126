"""Settings of the ``pos-spi`` backend: where the merchant's SPI lives and how to authenticate.

In the config file (secrets are always references, never literal values)::

    [merchants.SHOPNOW]
    backend = "pos-spi"

    [merchants.SHOPNOW.pos-spi]
    base_url = "https://oms.shopnow.example/pos-spi/v1"
    timeout = 10
    auth = { type = "api_key", api_key = { env = "SHOPNOW_SPI_KEY" } }
    # or OAuth2 client credentials:
    # auth = { type = "oauth2", token_url = "https://oms.shopnow.example/oauth/token",
    #          client_id = "pos", client_secret = { env = "SHOPNOW_SPI_SECRET" }, scope = "orders" }
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import attrs

from omsbridge import Secret
from omsbridge.errors import FieldError

__all__ = ["AuthMethod", "PosSpiConfig", "SpiAuth"]

_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def _http_url(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and attribute.default is None:
        return
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise FieldError(
            attribute.name,
            "must be an http:// or https:// URL such as "
            f"https://oms.example.com/pos-spi/v1, got {value!r}",
        )


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise FieldError(attribute.name, f"must be a number of seconds > 0, got {value!r}")


def _capabilities(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    from omsbridge.spi import Capability

    known = {c.value for c in Capability}
    wrong = [v for v in value if v not in known]
    if wrong:
        raise FieldError(
            attribute.name, f"unknown capabilities {wrong}; known: {', '.join(sorted(known))}"
        )


class AuthMethod(StrEnum):
    """How the POS proves who it is to the merchant's SPI."""

    API_KEY = "api_key"
    OAUTH2 = "oauth2"


@attrs.frozen
class SpiAuth:
    """Credentials for the SPI: an API key sent in a header, or OAuth2 client credentials.

    With ``type = "api_key"`` give ``api_key`` (and ``header`` if not ``X-API-Key``). With
    ``type = "oauth2"`` give ``token_url``, ``client_id``, ``client_secret`` and optionally
    ``scope``; the backend fetches a bearer token from ``token_url`` and refreshes it on 401.
    """

    type: AuthMethod = AuthMethod.API_KEY
    api_key: Secret | None = None
    header: str = "X-API-Key"
    token_url: str | None = attrs.field(default=None, validator=_http_url)
    client_id: str | None = None
    client_secret: Secret | None = None
    scope: str | None = None

    def __attrs_post_init__(self) -> None:
        problems: list[str] = []
        if self.type == AuthMethod.API_KEY:
            if not isinstance(self.api_key, Secret):
                problems.append('api_key is required with type = "api_key"')
            if not (isinstance(self.header, str) and _HEADER.match(self.header)):
                problems.append(f"header must be an HTTP header name, got {self.header!r}")
            extra = [
                n for n in ("token_url", "client_id", "client_secret", "scope") if getattr(self, n)
            ]
            if extra:
                problems.append(f'{", ".join(extra)} only apply with type = "oauth2"')
        else:
            for name in ("token_url", "client_id"):
                if not getattr(self, name):
                    problems.append(f'{name} is required with type = "oauth2"')
            if not isinstance(self.client_secret, Secret):
                problems.append('client_secret is required with type = "oauth2"')
            if self.api_key is not None:
                problems.append('api_key only applies with type = "api_key"')
        if problems:
            raise ValueError("; ".join(problems))


@attrs.frozen
class PosSpiConfig:
    """Where the merchant's Order SPI is and how to call it (the ``[merchants.ID.pos-spi]`` table)."""

    base_url: str = attrs.field(validator=_http_url)
    auth: SpiAuth
    timeout: float = attrs.field(default=10.0, validator=_positive)
    """Seconds to wait for an answer; past it the outcome of a post is unknown (retry is safe)."""
    verify_tls: bool = True
    max_event_wait: float = attrs.field(default=25.0, validator=_positive)
    """The longest long-poll ``events()`` asks the server for, in seconds."""
    capabilities: tuple[str, ...] | None = attrs.field(default=None, validator=_capabilities)
    """What the SPI behind ``base_url`` can do (``omni capabilities`` names, e.g.
    ``["post:sale", "order:detail"]``); None: everything. Set it when the SPI is
    ``omsbridge serve`` in front of a backend that declares less (Salesforce: no returns
    without receipt), so this backend declares the same."""
