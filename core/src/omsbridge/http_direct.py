"""An httpx client whose common requests skip ``Client.send``'s per-request machinery.

A backend sends thousands of small JSON requests through one ``httpx.Client``. Per request,
``Client.request`` parses and merges the URL, merges headers and cookies, runs the auth and
redirect loops, extracts cookies and wraps the answer's stream; on loopback that is about a
third of httpx's CPU per request. :class:`DirectClient` sends the same request (same method,
URL, headers in the same order, cookies, timeouts, auth flow) straight to the client's
transport, and keeps ``Client.request`` for everything it does not handle the same way
(query parameters, form bodies, an HTTP proxy from the environment).

The transport is called through its public ``handle_request``; what goes on the wire is what
``Client.request`` would send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.request import getproxies

import httpx

__all__ = ["DirectClient"]

_httpx_log = logging.getLogger("httpx")
_MAX_URLS = 256  # cached URL objects: paths with record ids vary, keep the cache small


class DirectClient:
    """One ``httpx.Client`` (``.client``) and a cheaper way to send through it (``request``).

    Takes the ``httpx.Client`` arguments the backends use. ``transport`` replaces the network
    (tests); without it, the client's own default transport is built here, so that requests
    can be handed to it directly.
    """

    def __init__(
        self,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float,
        verify: Any = True,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # An HTTP proxy from the environment is mounted by the client only when it builds its
        # own transport: then every request goes through the client, or it would bypass it.
        proxied = transport is None and bool(getproxies())
        if transport is None and not proxied:
            transport = httpx.HTTPTransport(verify=verify)  # what the client would build
        self._transport = None if proxied else transport
        self.client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            verify=verify,
            auth=auth,
            transport=transport,
        )
        self._auth = auth
        self._timeouts: dict[float | None, dict[str, Any]] = {None: self.client.timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request and read its answer, as ``Client.request`` would."""
        transport = self._transport
        if transport is None or params is not None or data is not None:
            if timeout is None:
                return self.client.request(
                    method, url, content=content, params=params, headers=headers, data=data
                )
            return self.client.request(
                method,
                url,
                content=content,
                params=params,
                headers=headers,
                data=data,
                timeout=timeout,
            )
        client = self.client
        target = self._urls.get(url)
        if target is None:
            if len(self._urls) >= _MAX_URLS:
                self._urls.clear()
            # build_request merges a relative URL with base_url exactly as request() does.
            target = self._urls[url] = client.build_request("GET", url).url
        merged = client.headers
        if headers:
            merged = httpx.Headers(merged)
            merged.update(headers)
        extensions = self._timeouts.get(timeout)
        if extensions is None:
            extensions = self._timeouts[timeout] = httpx.Timeout(timeout).as_dict()
        request = httpx.Request(
            method,
            target,
            headers=merged,
            cookies=client.cookies or None,
            content=content,
            extensions={"timeout": extensions},
        )
        if self._auth is None:
            return self._exchange(transport, request)
        flow = self._auth.sync_auth_flow(request)
        request = next(flow)
        while True:
            response = self._exchange(transport, request)
            try:
                request = flow.send(response)
            except StopIteration:
                return response

    def _exchange(self, transport: httpx.BaseTransport, request: httpx.Request) -> httpx.Response:
        response = transport.handle_request(request)
        response.request = request
        try:
            response.read()
        finally:
            response.close()
        if "set-cookie" in response.headers:
            self.client.cookies.extract_cookies(response)
        if _httpx_log.isEnabledFor(logging.INFO):  # the line Client.send logs
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return response
