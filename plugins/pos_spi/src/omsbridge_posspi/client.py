"""The HTTP client of the backend: the only module that talks HTTP (httpx).

It adds credentials, replays a request once after a 401 when a fresh OAuth2 token may cure it,
turns timeouts and transport failures into :class:`~omsbridge.errors.TransientBackendError`
and error answers into the core taxonomy (:mod:`omsbridge_posspi.errors`). It never logs
headers or bodies, so no secret reaches a log line.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import attrs
import httpx

from omsbridge.errors import AuthFailed, TransientBackendError
from omsbridge.http_direct import DirectClient
from omsbridge_posspi.auth import Credentials, credentials_for
from omsbridge_posspi.config import PosSpiConfig
from omsbridge_posspi.errors import BACKEND, error_for_status

__all__ = ["SpiClient", "SpiResponse", "segment"]

log = logging.getLogger(__name__)


@functools.cache
def _tls(verify: bool) -> ssl.SSLContext:
    """One TLS context per setting, shared by every merchant's client: each context loads the
    CA bundle (about 0.5 MB), which thousands of merchants in one worker cannot afford."""
    return httpx.create_ssl_context(verify=verify)


def segment(value: str) -> str:
    """Quote an id for use as one URL path segment."""
    return quote(value, safe="")


@attrs.frozen
class SpiResponse:
    """A successful SPI answer: status and parsed JSON body (numbers as Decimal)."""

    status: int
    data: Any
    headers: Mapping[str, str]


class SpiClient:
    """Calls one merchant's SPI. Thread-safe: one connection pool shared by all threads."""

    def __init__(self, config: PosSpiConfig) -> None:
        self._config = config
        self._credentials: Credentials = credentials_for(config.auth)
        # Sends through httpx without Client.send's per-request work (omsbridge.http_direct).
        self._direct = DirectClient(
            base_url=config.base_url.rstrip("/") + "/",
            timeout=config.timeout,
            verify=_tls(config.verify_tls),
            headers={"Accept": "application/json", "User-Agent": "omsbridge-posspi/0.1"},
        )
        self._http = self._direct.client

    def __repr__(self) -> str:
        return f"<SpiClient {self._config.base_url} auth={self._credentials!r}>"

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json_body: Any = None,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> SpiResponse:
        """Send one SPI request; return the answer or raise the mapped core error.

        ``operation`` names the call in errors and logs (``SEARCH_ORDER``...). The JSON body is
        ``json_body`` (plain data, encoded here) or ``body`` (JSON already encoded, UTF-8).
        """
        content = body if json_body is None else json.dumps(json_body).encode("utf-8")
        base_headers = {**(headers or {})}
        if content is not None:
            base_headers["Content-Type"] = "application/json"
        attempts = 2 if self._credentials.refreshable else 1
        for attempt in range(1, attempts + 1):
            auth_headers = self._credentials.headers(self._fetch_token)
            response = self._send(
                method,
                path,
                operation=operation,
                content=content,
                params=params,
                headers={**base_headers, **auth_headers},
                timeout=timeout,
            )
            if response.status_code == 401 and attempt < attempts:
                # The token may have expired or been revoked: fetch a new one and replay once.
                log.info("%s: token refused, fetching a new one and retrying once", operation)
                self._credentials.invalidate(auth_headers)
                continue
            break
        body = _parse_body(response)
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code,
                body,
                operation=operation,
                retry_after=response.headers.get("Retry-After"),
            )
        # httpx.Headers is a Mapping (case-insensitive lookups): no copy per answer.
        return SpiResponse(response.status_code, body, response.headers)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        started = time.monotonic()
        limit = timeout if timeout is not None else self._config.timeout
        try:
            response = self._direct.request(
                method,
                url,
                content=content,
                data=data,
                params=params,
                headers=headers,
                timeout=limit,
            )
        except httpx.TimeoutException:
            raise TransientBackendError(
                f"{operation}: no answer within {limit:g}s; the outcome is unknown "
                "(sending the same request again is safe)",
                code="TIMEOUT",
                backend=BACKEND,
            ) from None
        except httpx.TransportError as exc:
            raise TransientBackendError(
                f"{operation}: cannot reach the SPI: {type(exc).__name__}",
                code="CONNECTION_ERROR",
                backend=BACKEND,
            ) from None
        if log.isEnabledFor(logging.DEBUG):  # the URL's path is decoded only to be logged
            log.debug(
                "%s %s %s -> %s in %.0f ms",
                operation,
                method,
                response.request.url.path,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
        return response

    def _fetch_token(self, url: str, form: Mapping[str, str]) -> Mapping[str, Any]:
        response = self._send("POST", url, operation="OAUTH_TOKEN", data=form)
        body = _parse_body(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise error_for_status(
                response.status_code,
                body,
                operation="OAUTH_TOKEN",
                retry_after=response.headers.get("Retry-After"),
            )
        if response.status_code >= 400 or not isinstance(body, Mapping):
            # RFC 6749 errors carry "error" and "error_description" rather than code/message.
            fields = body if isinstance(body, Mapping) else {}
            code = str(fields.get("error") or fields.get("code") or f"HTTP_{response.status_code}")
            raise AuthFailed(
                f"OAUTH_TOKEN: {response.status_code} {code}: the token endpoint refused the "
                "client credentials",
                code=code,
                status=response.status_code,
                backend=BACKEND,
            )
        return body


# One decoder for every answer: json.loads(..., parse_float=Decimal) builds a new one per call.
_JSON = json.JSONDecoder(parse_float=Decimal)


def _parse_body(response: httpx.Response) -> Any:
    content = response.content
    if not content:
        return None
    if "json" not in response.headers.get("Content-Type", ""):
        return response.text
    try:
        # What json.loads does with bytes: UTF-8, -16 or -32, told apart by the first bytes.
        return _JSON.decode(content.decode(json.detect_encoding(content), "surrogatepass"))
    except ValueError:
        return response.text
