"""A lean HTTP/1.1 keep-alive transport for ``httpx.AsyncClient``, made for long polls.

A CometD session is one request at a time on one kept-alive connection: a long poll, its
answer, the next long poll. httpx's default async transport (httpcore over anyio, h11) spends
most of a loop's CPU per round trip on machinery a long poll does not need: a pool with locks
and cancel scopes per request, stream wrappers, per-header validation. This transport writes
the request httpx built as it is and reads the answer straight off an asyncio protocol:
status line, headers, then a ``Content-Length`` body, a chunked body, or a body up to the end
of the connection. httpx still makes the ``Response`` (and decodes gzip/deflate).

Connections are kept per (scheme, host, port) while the server allows it (HTTP/1.1 without
``Connection: close``), at most ``max_idle`` of them. TLS uses the given context. Errors are
httpx's (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``, ``ReadError``,
``RemoteProtocolError``), so callers treat them like any httpx transport's. A cancelled request
closes its connection (a long poll in flight is abandoned).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, NamedTuple

import httpx

__all__ = ["Answer", "LongPollTransport"]

_MAX_HEAD = 64 * 1024  # bytes of status line and headers before the answer is refused


class Answer(NamedTuple):
    """An HTTP answer: status, reason phrase, headers (as sent), body (as sent)."""

    status: int
    reason: str
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: collects what arrives and wakes the reader."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.received = False
        """Whether anything arrived since the last request was written."""
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Keep the bytes; wake the reader."""
        self.buffer += data
        self.received = True
        self._wake()

    def eof_received(self) -> bool:
        """The server closed its side."""
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone."""
        self.eof = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def more(self, timeout: float | None) -> None:
        """Wait for more bytes (or the end); ``httpx.ReadTimeout`` after ``timeout`` seconds
        of silence."""
        if self.eof:
            if self.error is not None:
                raise httpx.ReadError(f"the connection broke: {self.error}")
            raise httpx.RemoteProtocolError("the server closed the connection mid-answer")
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, waiter.cancel) if timeout is not None else None
        try:
            await waiter
        except asyncio.CancelledError:
            if timer is not None and waiter.cancelled() and not _cancelling():
                raise httpx.ReadTimeout(f"no answer within {timeout} s") from None
            raise
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    @property
    def usable(self) -> bool:
        """Open, and nothing unread on it."""
        return not self.eof and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()


def _cancelling() -> bool:
    """Whether the running task is being cancelled (rather than our timer firing)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class LongPollTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` for one Bayeux session (see the module doc)."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, max_idle: int = 2) -> None:
        self._tls = tls
        self._max_idle = max_idle
        self._idle: dict[tuple[bytes, bytes, int], list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the whole answer (httpx's transport interface)."""
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        answer = await self.exchange(
            request.url,
            _head(request) + await request.aread(),
            connect_timeout=timeouts.get("connect"),
            read_timeout=timeouts.get("read"),
            head_only=request.method == "HEAD",
        )
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=httpx.ByteStream(answer.body),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason},
        )

    async def exchange(
        self,
        url: httpx.URL,
        message: bytes,
        *,
        connect_timeout: float | None,
        read_timeout: float | None,
        head_only: bool = False,
    ) -> Answer:
        """Write ``message`` (a whole HTTP/1.1 request: head and body) to ``url``'s server and
        read the answer: the cheap path, without httpx's Request and Response objects. The
        body is as sent (not decoded)."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        scheme = url.raw_scheme
        port = url.port or (443 if scheme == b"https" else 80)
        key = (scheme, url.raw_host, port)
        connection = self._take_idle(key)
        while True:
            reused = connection is not None
            if connection is None:
                connection = await self._open(url, port, connect_timeout)
            done = False
            try:
                assert connection.transport is not None
                connection.received = False
                connection.transport.write(message)
                answer, keep = await _read_answer(connection, head_only, read_timeout)
                done = True
                break
            except (httpx.RemoteProtocolError, httpx.ReadError):
                if not reused or connection.received:
                    raise
                # A kept connection the server had just closed: once more on a new one.
                connection.close()
                connection = None
            finally:
                if not done and connection is not None:
                    connection.close()  # an error or a cancellation: its state is unknown
        if keep and connection.usable and not connection.buffer:
            self._keep(key, connection)
        else:
            connection.close()
        return answer

    def _take_idle(self, key: tuple[bytes, bytes, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.usable and not connection.buffer:
                return connection
            connection.close()
        return None

    def _keep(self, key: tuple[bytes, bytes, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self._max_idle or self._closed:
            connection.close()
        else:
            idle.append(connection)

    async def _open(self, url: httpx.URL, port: int, timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = url.scheme == "https"
        if tls and self._tls is None:
            self._tls = httpx.create_ssl_context()
        host = url.host
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    _Connection,
                    host,
                    port,
                    ssl=self._tls if tls else None,
                    server_hostname=host if tls else None,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port}") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"connecting to {host}:{port}: {exc}") from exc
        return connection

    async def aclose(self) -> None:
        """Close every kept connection."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _head(request: httpx.Request) -> bytes:
    target = request.url.raw_path
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    lines.extend(name + b": " + value for name, value in request.headers.raw)
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_answer(
    connection: _Connection, head_only: bool, timeout: float | None
) -> tuple[Answer, bool]:
    """The next final answer on ``connection``, and whether the connection may be kept."""
    while True:
        status, reason, headers, version = await _read_head(connection, timeout)
        if not 100 <= status < 200:
            break  # 1xx answers (100 Continue) come before the real one
    length: int | None = None
    chunked = False
    close = version != b"HTTP/1.1"
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise httpx.RemoteProtocolError(f"bad Content-Length {value!r}") from None
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lower == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                close = True
            elif b"keep-alive" in tokens:
                close = False
    if head_only or status in (204, 304):
        return Answer(status, reason, headers, b""), not close
    if chunked:
        body = await _read_chunked(connection, timeout)
    elif length is not None:
        body = await _read_exactly(connection, length, timeout)
    else:
        body = await _read_to_end(connection, timeout)
        close = True
    return Answer(status, reason, headers, body), not close


async def _read_head(
    connection: _Connection, timeout: float | None
) -> tuple[int, str, list[tuple[bytes, bytes]], bytes]:
    buffer = connection.buffer
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(buffer) > _MAX_HEAD:
            raise httpx.RemoteProtocolError("the answer's headers are too long")
        await connection.more(timeout)
    head = bytes(buffer[:end])
    del buffer[: end + 4]
    status_line, *lines = head.split(b"\r\n")
    try:
        version, code, *rest = status_line.split(b" ", 2)
        status = int(code)
    except ValueError:
        raise httpx.RemoteProtocolError(f"not an HTTP answer: {status_line[:80]!r}") from None
    headers = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError(f"bad header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    reason = rest[0].decode("latin-1") if rest else ""
    return status, reason, headers, version


async def _read_exactly(connection: _Connection, length: int, timeout: float | None) -> bytes:
    buffer = connection.buffer
    while len(buffer) < length:
        await connection.more(timeout)
    body = bytes(buffer[:length])
    del buffer[:length]
    return body


async def _read_to_end(connection: _Connection, timeout: float | None) -> bytes:
    while not connection.eof:
        await connection.more(timeout)
    body = bytes(connection.buffer)
    connection.buffer.clear()
    return body


async def _read_chunked(connection: _Connection, timeout: float | None) -> bytes:
    buffer = connection.buffer
    parts: list[bytes] = []
    while True:
        while (end := buffer.find(b"\r\n")) < 0:
            await connection.more(timeout)
        size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise httpx.RemoteProtocolError(f"bad chunk size {size_text[:20]!r}") from None
        del buffer[: end + 2]
        if size == 0:
            # Trailers (usually none), up to an empty line.
            while True:
                while (end := buffer.find(b"\r\n")) < 0:
                    await connection.more(timeout)
                line = bytes(buffer[:end])
                del buffer[: end + 2]
                if not line:
                    return b"".join(parts)
        while len(buffer) < size + 2:
            await connection.more(timeout)
        parts.append(bytes(buffer[:size]))
        del buffer[: size + 2]
