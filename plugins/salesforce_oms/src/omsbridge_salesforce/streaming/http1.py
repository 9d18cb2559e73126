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
import logging
import math
import ssl
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx

__all__ = ["Answer", "LongPollTransport"]

logger = logging.getLogger(__name__)

_MAX_HEAD = 64 * 1024  # bytes of status line and headers before the answer is refused
_MAX_BODY = 64 * 1024 * 1024  # bytes of body before the answer is refused (bounded memory)
_BLANKS = (0x20, 0x09)  # space and tab (as bytes' items)
_FRAMING_NAMES = {len(b"content-length"), len(b"transfer-encoding"), len(b"connection")}
_LENGTH, _CHUNKED, _TO_END = 0, 1, 2  # how an answer's body is delimited


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
    """One TCP (or TLS) connection that reads its answers as they arrive.

    The answer is parsed here, in ``data_received`` (status line and headers once, then the
    body as its framing says), and the reader's future is resolved once, when the whole answer
    is in: one wake-up of the reading task per answer, however many segments it came in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.received = False
        """Whether anything arrived since the last request was written."""
        self.segments = 0
        """How many reads brought bytes (the read timeout's measure of silence)."""
        self._watchdog: _Watchdog | None = None  # watching the read timeout of an answer
        self._loop_watchdog: _Watchdog | None = None  # its loop's, looked up once
        self.deadline = 0.0  # loop time the answer is due by (the watchdog's)
        self.timeout = 0.0
        self.seen = 0  # ``segments`` when the deadline was set
        self._pending: Callable[[tuple[Answer, bool] | None, BaseException | None], None] | None
        self._pending = None
        self._head_only = False
        self._head: tuple[int, str, list[tuple[bytes, bytes]]] | None = None
        self._framing = _LENGTH
        self._length = 0
        self._keep = True
        self._chunks: list[bytes] = []
        self._chunk = -2  # the chunk being read: -2 its size line, -1 trailers, else its size
        self._scanned = 0  # bytes of the buffer already searched for the end of the head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Keep the bytes; resolve the reader's answer when it is complete."""
        self.buffer += data
        self.received = True
        self.segments += 1
        if self._pending is not None:
            self._advance()

    def eof_received(self) -> bool:
        """The server closed its side."""
        self.eof = True
        if self._pending is not None:
            self._advance()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone."""
        self.eof = True
        self.error = exc
        if self._pending is not None:
            self._advance()

    def expect(
        self,
        head_only: bool,
        timeout: float | None,
        done: Callable[[tuple[Answer, bool] | None, BaseException | None], None],
    ) -> None:
        """Call ``done((answer, keep), None)`` once the next answer is all in (``keep``: the
        connection may be reused), or ``done(None, error)`` with an httpx error (a
        ``ReadTimeout`` after ``timeout`` seconds in which nothing arrived). ``done`` runs in
        the protocol's callback, on the loop."""
        self._pending = done
        self._head_only = head_only
        self._head = None
        self._scanned = 0
        if timeout is not None:
            watchdog = self._loop_watchdog
            if watchdog is None:
                watchdog = self._loop_watchdog = _watchdog(asyncio.get_running_loop())
            self._watchdog = watchdog
            watchdog.watch(self, timeout)
        if self.buffer or self.eof:
            self._advance()  # bytes (or the end) are already here

    def abandon(self) -> None:
        """Forget the answer expected (its reader is gone) and close the connection."""
        self._pending = None
        self._unwatch()
        self.close()

    def _unwatch(self) -> None:
        if self._watchdog is not None:
            self._watchdog.forget(self)
            self._watchdog = None

    def time_out(self) -> None:
        """The watchdog saw nothing arrive for the read timeout: fail the answer expected."""
        self._watchdog = None
        if self._pending is not None:
            self._finish(None, httpx.ReadTimeout(f"no answer within {self.timeout} s"))

    def _finish(self, result: tuple[Answer, bool] | None, error: BaseException | None) -> None:
        done = self._pending
        self._pending = None
        self._unwatch()
        if done is not None:
            done(result, error)

    def _advance(self) -> None:
        try:
            answer = self._parse()
        except httpx.HTTPError as exc:
            self._finish(None, exc)
            return
        if answer is not None:
            self._finish(answer, None)

    def _parse(self) -> tuple[Answer, bool] | None:
        """The answer if it is complete, None while more is due; raises httpx errors."""
        buffer = self.buffer
        while self._head is None:
            end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    raise httpx.RemoteProtocolError("the answer's headers are too long")
                self._scanned = len(buffer)
                return self._ended()
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            self._scanned = 0
            status, reason, headers, version = _parse_head(head)
            if 100 <= status < 200:
                continue  # 1xx answers (100 Continue) come before the real one
            self._head = (status, reason, headers)
            self._frame(status, headers, version)
        status, reason, headers = self._head
        framing = self._framing
        if framing == _LENGTH:
            if len(buffer) < self._length:
                return self._ended()
            body = bytes(buffer[: self._length])
            del buffer[: self._length]
        elif framing == _CHUNKED:
            body_or_none = self._parse_chunks()
            if body_or_none is None:
                return self._ended()
            body = body_or_none
        else:  # up to the end of the connection
            if len(buffer) > _MAX_BODY:
                raise httpx.RemoteProtocolError("the answer's body is too long")
            if not self.eof:
                return None
            if self.error is not None:
                raise httpx.ReadError(f"the connection broke: {self.error}")
            body = bytes(buffer)
            buffer.clear()
        return Answer(status, reason, headers, body), self._keep

    def _frame(self, status: int, headers: list[tuple[bytes, bytes]], version: bytes) -> None:
        """How the body of this answer is delimited (RFC 9112 section 6.3)."""
        lengths: set[bytes] = set()
        transfer: list[bytes] = []
        close = version != b"HTTP/1.1"
        for name, value in headers:
            if len(name) not in _FRAMING_NAMES:
                continue  # not one of the three (the lengths of their names differ)
            lower = name.lower()
            if lower == b"content-length":
                lengths.update(part.strip() for part in value.split(b","))
            elif lower == b"transfer-encoding":
                transfer.extend(part.strip().lower() for part in value.split(b","))
            elif lower == b"connection":
                tokens = value.lower()
                if b"close" in tokens:
                    close = True
                elif b"keep-alive" in tokens:
                    close = False
        self._keep = not close
        if self._head_only or status in (204, 304):
            self._framing, self._length = _LENGTH, 0
            return
        if transfer:
            # Transfer-Encoding wins over Content-Length; both at once may be an attempt at
            # response splitting, so the connection is not reused after it.
            if lengths:
                self._keep = False
            if transfer[-1] == b"chunked":
                self._framing, self._chunks, self._chunk = _CHUNKED, [], -2
                return
            self._framing, self._keep = _TO_END, False  # read until the server closes
            return
        if lengths:
            if len(lengths) != 1:
                raise httpx.RemoteProtocolError(f"conflicting Content-Length {sorted(lengths)}")
            text = lengths.pop()
            if not text.isdigit():
                raise httpx.RemoteProtocolError(f"bad Content-Length {text[:20]!r}")
            length = int(text)
            if length > _MAX_BODY:
                raise httpx.RemoteProtocolError(f"the answer's body is too long ({length} bytes)")
            self._framing, self._length = _LENGTH, length
            return
        self._framing, self._keep = _TO_END, False

    def _parse_chunks(self) -> bytes | None:
        """The chunked body once it is all in (None while more is due)."""
        buffer = self.buffer
        while True:
            if self._chunk == -2:  # a size line
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > _MAX_HEAD:
                        raise httpx.RemoteProtocolError("a chunk size line is too long")
                    return None
                size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16) if size_text.isalnum() else -1
                except ValueError:
                    size = -1
                if size < 0:
                    raise httpx.RemoteProtocolError(f"bad chunk size {size_text[:20]!r}")
                del buffer[: end + 2]
                if size + sum(map(len, self._chunks)) > _MAX_BODY:
                    raise httpx.RemoteProtocolError("the answer's body is too long")
                self._chunk = size if size else -1
            elif self._chunk == -1:  # trailers (usually none), up to an empty line
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > _MAX_HEAD:
                        raise httpx.RemoteProtocolError("the answer's trailers are too long")
                    return None
                del buffer[: end + 2]
                if end == 0:
                    self._chunk = -2
                    body = b"".join(self._chunks)
                    self._chunks = []
                    return body
            else:
                size = self._chunk
                if len(buffer) < size + 2:
                    return None
                if buffer[size : size + 2] != b"\r\n":
                    raise httpx.RemoteProtocolError("a chunk does not end with CRLF")
                self._chunks.append(bytes(buffer[:size]))
                del buffer[: size + 2]
                self._chunk = -2

    def _ended(self) -> None:
        """Raise if the connection ended before the answer did (else: more is due)."""
        if not self.eof:
            return None
        if self.error is not None:
            raise httpx.ReadError(f"the connection broke: {self.error}")
        raise httpx.RemoteProtocolError("the server closed the connection mid-answer")

    @property
    def usable(self) -> bool:
        """Open, and nothing unread on it."""
        return not self.eof and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()


class _Watchdog:
    """The read timeouts of every answer awaited on one loop, without a timer per request.

    One loop timer, set for the soonest deadline; when it fires, an answer that saw bytes
    since its deadline was set gets another ``timeout`` from then, one that saw none fails
    with ``ReadTimeout``. So a read times out after at least ``timeout`` seconds of silence
    (at most about twice that). Long polls end (and are forgotten) long before their
    deadline, so the timer seldom fires: a dict entry per request instead of a timer heap
    entry and its cancellation."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: dict[_Connection, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf

    def watch(self, connection: _Connection, timeout: float) -> None:
        """Watch ``connection``'s answer for ``timeout`` seconds of silence."""
        deadline = self._loop.time() + timeout
        connection.deadline = deadline
        connection.timeout = timeout
        connection.seen = connection.segments
        self._waiting[connection] = None
        if deadline < self._at:
            self._schedule(deadline)

    def forget(self, connection: _Connection) -> None:
        """Stop watching ``connection`` (its answer is in, or abandoned)."""
        self._waiting.pop(connection, None)

    def _schedule(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = at
        self._timer = self._loop.call_at(at, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._at = math.inf
        now = self._loop.time()
        soonest = math.inf
        expired = []
        for connection in self._waiting:
            if connection.deadline <= now:
                if connection.segments == connection.seen:
                    expired.append(connection)
                    continue
                connection.seen = connection.segments  # bytes came: not silent
                connection.deadline = now + connection.timeout
            soonest = min(soonest, connection.deadline)
        for connection in expired:
            self._waiting.pop(connection, None)
            try:
                connection.time_out()
            except Exception:
                logger.exception("a read timeout's handling failed")
        if soonest < self._at:
            self._schedule(soonest)


_WATCHDOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = (
    weakref.WeakKeyDictionary()
)


def _watchdog(loop: asyncio.AbstractEventLoop) -> _Watchdog:
    """The watchdog of ``loop`` (made on first use)."""
    found = _WATCHDOGS.get(loop)
    if found is None:
        found = _WATCHDOGS[loop] = _Watchdog(loop)
    return found


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
                answer, keep = await _answer(connection, head_only, read_timeout)
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

    def start(
        self,
        url: httpx.URL,
        message: Callable[[], bytes],
        read_timeout: float | None,
        done: Callable[[Answer | None, BaseException | None, bool], None],
    ) -> _Connection | None:
        """The callback path of :meth:`exchange`, for a chain of long polls without a task
        waking per answer: on a kept connection to ``url``'s server, write ``message()`` and
        return the connection (``abandon()`` it to give up); ``done(answer, None, False)`` is
        called from the protocol's callback when the answer is in, ``done(None, error,
        retry)`` on an httpx error (``retry``: a kept connection the server had closed,
        nothing received: send again, with :meth:`exchange`). None (nothing written) when no
        kept connection is ready: use :meth:`exchange`."""
        if self._closed:
            return None
        scheme = url.raw_scheme
        key = (scheme, url.raw_host, url.port or (443 if scheme == b"https" else 80))
        connection = self._take_idle(key)
        if connection is None:
            return None
        transport = connection.transport
        assert transport is not None

        def finished(result: tuple[Answer, bool] | None, error: BaseException | None) -> None:
            if result is None:
                connection.close()
                stale = isinstance(error, httpx.RemoteProtocolError | httpx.ReadError)
                done(None, error, stale and not connection.received)
                return
            answer, keep = result
            if keep and connection.usable and not connection.buffer:
                self._keep(key, connection)
            else:
                connection.close()
            done(answer, None, False)

        try:
            data = message()
        except BaseException:
            connection.close()
            raise
        connection.received = False
        transport.write(data)
        connection.expect(False, read_timeout, finished)
        return connection

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


async def _answer(
    connection: _Connection, head_only: bool, timeout: float | None
) -> tuple[Answer, bool]:
    """The next final answer on ``connection``, and whether the connection may be kept;
    ``httpx.ReadTimeout`` after ``timeout`` seconds in which nothing arrived."""
    future: asyncio.Future[tuple[Answer, bool]] = asyncio.get_running_loop().create_future()

    def done(result: tuple[Answer, bool] | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            assert result is not None
            future.set_result(result)

    connection.expect(head_only, timeout, done)
    try:
        return await future
    finally:
        if not future.done() or future.cancelled():
            connection.abandon()


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[bytes, bytes]], bytes]:
    """Status, reason, headers and HTTP version of an answer's head (without its blank line)."""
    status_line, *lines = head.split(b"\r\n")
    try:
        version, code, *rest = status_line.split(b" ", 2)
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ValueError(code)
        status = int(code)
    except ValueError:
        raise httpx.RemoteProtocolError(f"not an HTTP answer: {status_line[:80]!r}") from None
    headers: list[tuple[bytes, bytes]] = []
    folded = b"\r\n " in head or b"\r\n\t" in head  # rare: checked once per head
    for line in lines:
        if folded and line[:1] in (b" ", b"\t"):
            # obs-fold (RFC 9112 section 5.2): a continuation of the previous value, read as
            # one space.
            if not headers:
                raise httpx.RemoteProtocolError(f"bad header line {line[:80]!r}")
            name, value = headers[-1]
            headers[-1] = (name, (value + b" " + line.strip()).strip())
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or name[-1] in _BLANKS or name[0] in _BLANKS:
            raise httpx.RemoteProtocolError(f"bad header line {line[:80]!r}")
        headers.append((name, value.strip()))
    reason = rest[0].decode("latin-1") if rest else ""
    return status, reason, headers, version
