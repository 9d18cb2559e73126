"""The Bayeux (CometD) client on asyncio: one event loop holds the long polls of every merchant.

The protocol is :class:`~omsbridge_salesforce.streaming.bayeux.BayeuxSession`'s, as the blocking
:class:`~omsbridge_salesforce.streaming.bayeux.BayeuxClient` speaks it (advice, re-handshake,
``403::Unknown client``, re-authentication on ``401``); only the I/O differs. Each session has
its own ``httpx.AsyncClient`` (its cookies are the session's: Salesforce's ``BAYEUX_BROWSER``
and load-balancer cookies must come back on every request) over its own
:class:`~omsbridge_salesforce.streaming.http1.LongPollTransport` (one kept-alive connection:
a long poll holds it for up to 110 s, so a pool shared by thousands of sessions would be
scanned on every request).

A request is written as the bytes ``AsyncClient.send`` would send and its answer read raw
(:meth:`LongPollTransport.exchange`): httpx's Request and Response objects, auth and redirect
loops and cookie jar per request were most of the CPU of a long poll. Cookies go through the
client's jar when an answer sets one (rare). With an HTTP proxy from the environment the
client's own ``send`` is used; with another transport (tests) its ``handle_async_request``.
``on_unauthorized`` (a blocking token request) runs on the loop's default executor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import zlib
from collections.abc import Callable, Sequence
from typing import Any
from urllib.request import getproxies

import httpx

from omsbridge_salesforce._tls import shared_tls
from omsbridge_salesforce.streaming.bayeux import (
    BayeuxError,
    BayeuxSession,
    BayeuxTransportError,
    Extension,
)
from omsbridge_salesforce.streaming.http1 import Answer, LongPollTransport, _Connection

__all__ = ["AsyncBayeuxClient"]

log = logging.getLogger(__name__)

Message = dict[str, Any]

_DEFAULT_TIMEOUT = 30.0
_CONNECT_HEAD = b'[{"channel":"/meta/connect","connectionType":"long-polling","id":"'

LEAN_TRANSPORT = True
"""Whether new sessions use :class:`~omsbridge_salesforce.streaming.http1.LongPollTransport`
(the default). HTTP recorders (vcrpy: the contract suite's cassettes) intercept httpx's own
transports only, and a replayed long poll blocks its caller until the cassette closes; so a
harness that records or replays HTTP turns this off: each request then goes through httpx's
blocking ``HTTPTransport`` on a worker thread of its own, never blocking the event loop."""

_recordable_pool: concurrent.futures.ThreadPoolExecutor | None = None


class _RecordableTransport(httpx.AsyncBaseTransport):
    """httpx's blocking transport on worker threads (see :data:`LEAN_TRANSPORT`)."""

    def __init__(self) -> None:
        self._sync = httpx.HTTPTransport(verify=shared_tls())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a worker thread; the answer comes back read."""
        global _recordable_pool
        if _recordable_pool is None:
            _recordable_pool = concurrent.futures.ThreadPoolExecutor(
                16, thread_name_prefix="bayeux-recorded"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_recordable_pool, self._exchange, request)

    def _exchange(self, request: httpx.Request) -> httpx.Response:
        response = self._sync.handle_request(request)
        try:
            raw = b"".join(response.iter_raw())
        finally:
            response.close()
        # A response over the blocking transport's stream refuses the async reads and close
        # the session makes: hand back the same answer with its body (still encoded as sent,
        # like its headers say) in memory.
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=raw,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close the connections."""
        self._sync.close()


class AsyncBayeuxClient(BayeuxSession):
    """One Bayeux session against ``url``, on asyncio (every coroutine runs on one loop).

    ``authorization`` returns the ``Authorization`` header's value for a request (None for
    none); it is called on the loop, so it must not block (return a cached token).
    ``on_unauthorized`` is called (on the loop's executor) when the server says the
    credentials are no longer valid; it should fetch new ones. ``transport`` replaces the
    network (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        authorization: Callable[[], str | None] | None = None,
        extensions: Sequence[Extension] = (),
        on_unauthorized: Callable[[], None] | None = None,
        connect_timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, extensions, on_unauthorized)
        self._authorization = authorization
        proxied = transport is None and bool(getproxies())
        if transport is None and not proxied:
            # A session's own keep-alive connections (a long poll, and a disconnect), with the
            # process's one TLS context.
            transport = (
                LongPollTransport(tls=shared_tls()) if LEAN_TRANSPORT else _RecordableTransport()
            )
        self._transport = None if proxied else transport
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(_DEFAULT_TIMEOUT, connect=connect_timeout),
            verify=shared_tls(),
            transport=transport,
        )
        """The session's httpx client (its cookie jar is the session's)."""
        self._url = httpx.URL(url)
        # The headers AsyncClient.send would put first, in its order (gzip and deflate only:
        # what the cheap path decodes).
        self._headers = [
            (b"Host", self._url.netloc),
            *(
                (name, b"gzip, deflate" if name.lower() == b"accept-encoding" else value)
                for name, value in self.http.headers.raw
            ),
        ]
        self._head = (
            b"POST "
            + self._url.raw_path
            + b" HTTP/1.1\r\n"
            + b"".join(name + b": " + value + b"\r\n" for name, value in self._headers)
            + b"Content-Type: application/json\r\n"
        )
        self._timeouts: dict[float, dict[str, float | None]] = {}
        self._connect_timeout = connect_timeout
        self._cookie: str | None = None  # the Cookie header, rebuilt when the jar changes
        self._closed = False
        self._inflight: _Connection | None = None  # the connection of connect_soon's poll
        self._connect_parts: tuple[str, bytes] | None = None  # see _connect_body

    # -- transport ------------------------------------------------------------------------------

    def _timeout(self, read: float) -> dict[str, float | None]:
        found = self._timeouts.get(read)
        if found is None:
            found = self._timeouts[read] = httpx.Timeout(
                read, connect=self._connect_timeout
            ).as_dict()
        return found

    def _prepare(
        self, message: Message, encode: Callable[[Message], bytes] | None = None
    ) -> tuple[str, bytes, str | None]:
        """The channel, JSON body and Authorization header of ``message`` about to be sent
        (``encode`` makes the body when given)."""
        message = self._outgoing(message)
        if self._closed:
            raise BayeuxTransportError("the client is closed")
        if encode is not None:
            body = encode(message)
        else:
            body = json.dumps([message], separators=(",", ":")).encode()
        authorization = self._authorization() if self._authorization is not None else None
        return message["channel"], body, authorization

    async def _send(self, message: Message, *, timeout: float | None = None) -> list[Message]:
        channel, body, authorization = self._prepare(message)
        read = _DEFAULT_TIMEOUT if timeout is None else timeout
        try:
            if isinstance(self._transport, LongPollTransport):
                answer = await self._transport.exchange(
                    self._url,
                    self._message(body, authorization),
                    connect_timeout=self._connect_timeout,
                    read_timeout=read,
                )
                return self._answered(channel, answer)
            response = await self._request(body, authorization, read)
        except (httpx.HTTPError, RuntimeError) as exc:
            # RuntimeError: the connection pool was closed (shutdown).
            raise BayeuxTransportError(f"{channel}: {type(exc).__name__}") from exc
        headers_in = response.headers
        if "set-cookie" in headers_in:
            self._keep_cookies(response)
        return self._replies(
            channel, response.status_code, response.content, headers_in.get("Date")
        )

    def _message(self, body: bytes, authorization: str | None) -> bytes:
        """The request's bytes as httpx would write them (the cheap path)."""
        head = self._head + b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        if authorization is not None:
            head += b"Authorization: " + authorization.encode() + b"\r\n"
        if self._cookie is not None:
            head += b"Cookie: " + self._cookie.encode() + b"\r\n"
        return head + b"\r\n" + body

    def _answered(self, channel: str, answer: Answer) -> list[Message]:
        """The messages of a raw answer: body decoded, cookies kept, Date noted."""
        content = answer.body
        date: str | None = None
        cookies = False
        for name, value in answer.headers:
            lower = name.lower()
            if lower == b"date":
                date = value.decode("latin-1")
            elif lower == b"set-cookie":
                cookies = True
            elif lower == b"content-encoding" and value.strip().lower() in (b"gzip", b"deflate"):
                try:
                    content = zlib.decompress(content, 47)  # gzip or zlib, by its header
                except zlib.error as exc:
                    raise httpx.DecodingError(f"{channel}: bad {value!r} body") from exc
        if cookies:  # rare (handshake, load balancer): through httpx's cookie jar
            self._keep_cookies(
                httpx.Response(
                    answer.status,
                    headers=answer.headers,
                    request=httpx.Request("POST", self._url),
                )
            )
        return self._replies(channel, answer.status, content, date)

    def connect_soon(
        self, done: Callable[[list[Message] | None, BaseException | None], None]
    ) -> bool:
        """Start a ``/meta/connect`` answered in the protocol's callback (no task woken per
        long poll) when the session is established, no pause is advised and a kept
        connection is ready; else False (nothing sent: use :meth:`receive`). ``done``, on
        the loop: ``(messages, None)`` after a successful connect; ``(None, error)`` with a
        :class:`BayeuxError` (give it to :meth:`connect_failed`) or the
        :class:`BayeuxTransportError` :meth:`receive` would raise; ``(None, None)`` when
        the kept connection had been closed by the server (call :meth:`receive`)."""
        transport = self._transport
        if (
            self._closed
            or self._needs_handshake
            or not isinstance(transport, LongPollTransport)
            or self._pause()
        ):
            return False
        channel = "/meta/connect"

        def message() -> bytes:
            _, body, authorization = self._prepare(self._CONNECT, self._connect_body)
            return self._message(body, authorization)

        def finished(answer: Answer | None, error: BaseException | None, retry: bool) -> None:
            self._inflight = None
            if answer is None:
                if retry:
                    done(None, None)
                else:
                    failure = BayeuxTransportError(f"{channel}: {type(error).__name__}")
                    failure.__cause__ = error
                    done(None, failure)
                return
            try:
                messages = self._connected(self._answered(channel, answer))
            except httpx.HTTPError as exc:
                failure = BayeuxTransportError(f"{channel}: {type(exc).__name__}")
                failure.__cause__ = exc
                done(None, failure)
                return
            except BaseException as exc:  # BayeuxError, BayeuxTransportError, or a bug
                done(None, exc)
                return
            self._retries = 0
            done(messages, None)

        self._inflight = transport.start(self._url, message, self._read_timeout(), finished)
        return self._inflight is not None

    def _connect_body(self, message: Message) -> bytes:
        """``json.dumps([message])`` of a connect, byte for byte, from parts made once per
        client id (the only parts that vary are the id and client id); any other shape (an
        extension added to it) goes through ``json.dumps``."""
        ident = message.get("id")
        client_id = message.get("clientId")
        if (
            len(message) == 4
            and message["channel"] == "/meta/connect"
            and message.get("connectionType") == "long-polling"
            and type(ident) is str
            and ident.isdigit()
            and ident.isascii()
            and type(client_id) is str
        ):
            parts = self._connect_parts
            if parts is None or parts[0] != client_id:
                parts = self._connect_parts = (
                    client_id,
                    b'","clientId":' + json.dumps(client_id).encode() + b"}]",
                )
            return _CONNECT_HEAD + ident.encode() + parts[1]
        return json.dumps([message], separators=(",", ":")).encode()

    def abandon(self) -> None:
        """Give up the connect started by :meth:`connect_soon` (its connection is closed)."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.abandon()

    async def _request(self, body: bytes, authorization: str | None, read: float) -> httpx.Response:
        """Through httpx's Request and Response: another transport (tests), or a proxy."""
        headers = [
            *self._headers,
            (b"Content-Length", str(len(body)).encode()),
            (b"Content-Type", b"application/json"),
        ]
        if authorization is not None:
            headers.append((b"Authorization", authorization.encode()))
        if self._cookie is not None:
            headers.append((b"Cookie", self._cookie.encode()))
        request = httpx.Request(
            "POST",
            self._url,
            headers=headers,
            content=body,
            extensions={"timeout": self._timeout(read)},
        )
        if self._transport is None:  # a proxy from the environment: the client routes it
            return await self.http.send(request)
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _keep_cookies(self, response: httpx.Response) -> None:
        jar = self.http.cookies
        jar.extract_cookies(response)
        probe = httpx.Request("POST", self._url)
        jar.set_cookie_header(probe)
        self._cookie = probe.headers.get("Cookie")

    # -- protocol -------------------------------------------------------------------------------

    async def handshake(self) -> Message:
        """Open a session; raises :class:`BayeuxError` when the server refuses it."""
        return self._handshake_reply(await self._send(self._HANDSHAKE))

    async def subscribe(self, channel: str) -> Message:
        """Subscribe to ``channel`` (kept for re-subscription after a re-handshake)."""
        self._remember(channel)
        return await self._subscribe(channel)

    async def _subscribe(self, channel: str) -> Message:
        replies = await self._send({"channel": "/meta/subscribe", "subscription": channel})
        return self._reply_to(replies, "/meta/subscribe")

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``."""
        if self._forget(channel):
            replies = await self._send({"channel": "/meta/unsubscribe", "subscription": channel})
            self._reply_to(replies, "/meta/unsubscribe")

    async def _establish(self) -> None:
        await self.handshake()
        for channel in self.subscriptions:
            await self._subscribe(channel)

    async def establish(self) -> None:
        """Handshake and (re-)subscribe every channel in :attr:`subscriptions`; a refusal of
        the credentials gets new ones (``on_unauthorized``) and is tried once more."""
        try:
            await self._establish()
        except BayeuxError as error:
            if not self._refused_credentials(error):
                raise
            await self._reauthenticate()
            await self._establish()

    async def _reauthenticate(self) -> None:
        if self.on_unauthorized is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.on_unauthorized)

    async def connect(self) -> list[Message]:
        """One ``/meta/connect`` (a long poll); returns the data messages it delivered."""
        return self._connected(await self._send(self._CONNECT, timeout=self._read_timeout()))

    async def receive(self) -> list[Message]:
        """One turn of the connect loop, following the advice; returns delivered messages.

        Handshakes (and re-subscribes) first when needed. Raises :class:`BayeuxError` when the
        server says not to reconnect (and re-authentication did not help), and
        :class:`BayeuxTransportError` on network errors (the caller backs off). Cancel the
        task to stop it (a long poll in flight is abandoned).
        """
        if self._needs_handshake:
            await self.establish()
        interval = self._pause()
        if interval:
            await asyncio.sleep(interval)
        try:
            messages = await self.connect()
        except BayeuxError as error:
            return await self.connect_failed(error)
        self._retries = 0
        return messages

    async def connect_failed(self, error: BayeuxError) -> list[Message]:
        """Follow a failed connect's advice (re-authenticating if told); the data messages
        that came with it. Raises ``error`` when the server says to stop."""
        if self._after_failure(error):
            await self._reauthenticate()
        return error.delivered

    async def disconnect(self) -> None:
        """End the session on the server (best effort: errors are logged, not raised)."""
        if self.client_id is None or self._needs_handshake:
            return
        self._needs_handshake = True
        try:
            await self._send({"channel": "/meta/disconnect"}, timeout=5.0)
        except (BayeuxTransportError, httpx.HTTPError) as exc:
            log.debug("disconnect failed: %s", exc)

    async def aclose(self) -> None:
        """Disconnect and release the HTTP connections."""
        self.abandon()
        await self.disconnect()
        self._closed = True
        await self.http.aclose()
