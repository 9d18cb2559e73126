"""A small Bayeux 1.0 (CometD) long-polling client on httpx, not tied to Salesforce.

It speaks the protocol any Bayeux server answers (Salesforce's ``/cometd/XX.X``, faye, the
CometD Java server): handshake, subscribe, connect, publish, disconnect, with extensions that
edit outgoing and see incoming messages. :meth:`BayeuxClient.receive` is one turn of the
connect loop and follows the server's ``advice``:

* ``reconnect: retry`` — connect again after ``interval`` ms;
* ``reconnect: handshake`` (or ``403::Unknown client``, or a Bayeux ``401`` whose advice is
  not ``none``, as faye says it) — handshake again and re-subscribe every channel;
* ``reconnect: none`` — stop; a ``401`` with it means the credentials are no longer accepted:
  ``on_unauthorized`` (re-authenticate) is called once, then the client handshakes again.

Network errors are raised as :class:`BayeuxTransportError`; the caller backs off (see
:func:`backoff_delays`). The client is used by one thread at a time except :meth:`disconnect`
and :meth:`close`, which may come from another thread to end a long poll.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from omsbridge_salesforce._tls import shared_tls

__all__ = [
    "BayeuxClient",
    "BayeuxSession",
    "BayeuxError",
    "BayeuxTransportError",
    "Extension",
    "backoff_delays",
]

log = logging.getLogger(__name__)

Message = dict[str, Any]

_DEFAULT_TIMEOUT_MS = 110_000
_MARGIN_S = 15.0  # the HTTP read timeout is the server's long-poll timeout plus this


class BayeuxError(Exception):
    """A meta reply that said ``successful: false`` (its ``error`` and ``advice`` kept)."""

    def __init__(self, reply: Message) -> None:
        self.reply = reply
        self.channel = str(reply.get("channel") or "")
        self.error = str(reply.get("error") or "unknown error")
        self.advice: dict[str, Any] = dict(reply.get("advice") or {})
        self.delivered: list[Message] = []
        """Data messages that came in the same answer as a failed connect."""
        super().__init__(f"{self.channel}: {self.error}")

    @property
    def code(self) -> int | None:
        """The numeric part of ``"403::Unknown client"`` (None when there is none)."""
        head = self.error.split(":", 1)[0].strip()
        return int(head) if head.isdigit() else None

    @property
    def text(self) -> str:
        """The error without its code: ``Unknown client``."""
        return self.error.split("::", 1)[-1].strip()

    @property
    def reconnect(self) -> str | None:
        """The advice's ``reconnect`` (retry, handshake, none), if the server gave one."""
        value = self.advice.get("reconnect")
        return str(value) if value is not None else None


class BayeuxTransportError(Exception):
    """The server could not be reached, or answered something that is not Bayeux."""


class Extension:
    """Sees every message: edit ``outgoing`` ones before they are sent, read ``incoming`` ones."""

    def outgoing(self, message: Message) -> None:
        """Called for each message about to be sent (may add ``ext``)."""

    def incoming(self, message: Message) -> None:
        """Called for each message received."""


def backoff_delays(initial: float = 0.5, maximum: float = 30.0) -> Iterator[float]:
    """Exponential delays (doubling, capped) for reconnecting after network errors."""
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * 2)


_OFFSET_KEPT = 60.0
"""Seconds a session keeps the clock offset it read from a ``Date`` header."""


@functools.lru_cache(maxsize=4)
def _server_time(date: str) -> datetime | None:
    """A ``Date`` header as an aware time (None if unreadable); every session of the process
    sees the same few values each second, parsed once."""
    try:
        server = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    return server if server.tzinfo is not None else None


class BayeuxSession:
    """The protocol state of one Bayeux session, shared by the blocking :class:`BayeuxClient`
    and the asyncio :class:`~omsbridge_salesforce.streaming.bayeux_async.AsyncBayeuxClient`:
    what goes into each message, how answers, replies and advice are read. No I/O here."""

    def __init__(
        self,
        url: str,
        extensions: Sequence[Extension],
        on_unauthorized: Callable[[], None] | None,
    ) -> None:
        self.url = url
        self.extensions = list(extensions)
        self.on_unauthorized = on_unauthorized
        self.client_id: str | None = None
        self.advice: dict[str, Any] = {"reconnect": "retry", "interval": 0}
        self.subscriptions: list[str] = []
        self._ids = itertools.count(1)
        self._needs_handshake = True
        self._retries = 0
        self.handshakes = 0
        """How many successful handshakes this client made (re-handshakes included)."""
        self.server_offset: timedelta | None = None
        """The org's clock minus ours, from the ``Date`` header of the last answer (None until
        an answer carried one); 1-second resolution."""
        self._last_date: str | None = None
        self._offset_due = 0.0  # time.monotonic() when server_offset is read again

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, client_id={self.client_id!r})"

    def _outgoing(self, message: Message) -> Message:
        """``message`` with its id, client id and every extension's additions."""
        message = dict(message)
        message.setdefault("id", str(next(self._ids)))
        if self.client_id is not None and message["channel"] != "/meta/handshake":
            message.setdefault("clientId", self.client_id)
        for extension in self.extensions:
            extension.outgoing(message)
        return message

    def _replies(
        self, channel: str, status: int, content: bytes, date: str | None
    ) -> list[Message]:
        """The messages of an HTTP answer (parsed once), seen by every extension."""
        self._note_server_time(date)
        if status != 200:
            text = content[:200].decode("utf-8", "replace")
            raise BayeuxTransportError(f"{channel}: HTTP {status}: {text}")
        try:
            replies = json.loads(content.decode())  # UTF-8 (RFC 8259): no encoding sniffing
        except ValueError:
            try:  # a BOM or UTF-16/32: json's own detection
                replies = json.loads(content)
            except ValueError as exc:
                raise BayeuxTransportError(f"{channel}: the answer is not JSON") from exc
        if isinstance(replies, dict):
            replies = [replies]
        if not isinstance(replies, list):
            raise BayeuxTransportError(f"{channel}: the answer is not a message list")
        replies = [r for r in replies if isinstance(r, dict)]
        for extension in self.extensions:
            for reply in replies:
                extension.incoming(reply)
        return replies

    def _note_server_time(self, date: str | None) -> None:
        if date is None or date == self._last_date:
            return  # the same second as the last answer: the same offset, near enough
        now = time.monotonic()
        if self.server_offset is not None and now < self._offset_due:
            # Read when a stream opens (catch-up bounds); a minute-old offset is as good, and
            # this runs once per event on the loop that carries every merchant.
            return
        server = _server_time(date)
        if server is None:
            return  # an unreadable Date header: keep the last offset known
        self._last_date = date
        self._offset_due = now + _OFFSET_KEPT
        self.server_offset = server - datetime.now(UTC)

    @staticmethod
    def _meta(replies: list[Message], channel: str) -> Message:
        for reply in replies:
            if reply.get("channel") == channel:
                return reply
        raise BayeuxTransportError(f"{channel}: no {channel} reply in the answer")

    _HANDSHAKE: Message = {
        "channel": "/meta/handshake",
        "version": "1.0",
        "minimumVersion": "1.0",
        "supportedConnectionTypes": ["long-polling"],
    }
    _CONNECT: Message = {"channel": "/meta/connect", "connectionType": "long-polling"}

    def _handshake_reply(self, replies: list[Message]) -> Message:
        reply = self._meta(replies, "/meta/handshake")
        if not reply.get("successful"):
            raise BayeuxError(reply)
        types = reply.get("supportedConnectionTypes") or ["long-polling"]
        if "long-polling" not in types:
            raise BayeuxTransportError(f"the server does not offer long-polling ({types})")
        self.client_id = str(reply["clientId"])
        self.advice = {**self.advice, **(reply.get("advice") or {})}
        self._needs_handshake = False
        self.handshakes += 1
        return reply

    def _reply_to(self, replies: list[Message], channel: str) -> Message:
        reply = self._meta(replies, channel)
        if not reply.get("successful"):
            raise BayeuxError(reply)
        return reply

    def _remember(self, channel: str) -> None:
        if channel not in self.subscriptions:
            self.subscriptions.append(channel)

    def _forget(self, channel: str) -> bool:
        """Drop ``channel``; whether the server must be told (a session is open)."""
        if channel in self.subscriptions:
            self.subscriptions.remove(channel)
        return self.client_id is not None and not self._needs_handshake

    def _read_timeout(self) -> float:
        """The HTTP read timeout of a connect: the server's long-poll timeout plus a margin."""
        timeout_ms = self.advice.get("timeout", _DEFAULT_TIMEOUT_MS)
        try:
            return float(timeout_ms) / 1000 + _MARGIN_S
        except (TypeError, ValueError):
            return _DEFAULT_TIMEOUT_MS / 1000 + _MARGIN_S

    def _connected(self, replies: list[Message]) -> list[Message]:
        """The data messages of a connect's answer; raises the connect's failure (with them)."""
        data = []
        failure: BayeuxError | None = None
        for reply in replies:
            channel = reply.get("channel")
            if channel == "/meta/connect":
                if reply.get("advice"):
                    self.advice = {**self.advice, **reply["advice"]}
                if not reply.get("successful") and failure is None:
                    failure = BayeuxError(reply)
            elif not str(channel or "").startswith("/meta/"):
                data.append(reply)
        if failure is not None:
            failure.delivered = data
            raise failure
        return data

    def _pause(self) -> float:
        """Seconds to wait before the next connect: the advice's interval, longer after failed
        retries."""
        interval = float(self.advice.get("interval") or 0) / 1000
        if self._retries:
            # A connect that keeps failing with "retry" must not spin against the server.
            interval = max(interval, min(30.0, 0.25 * 2 ** (self._retries - 1)))
        return interval

    def _after_failure(self, error: BayeuxError) -> bool:
        """Follow a failed connect's advice; True when the caller must re-authenticate (call
        ``on_unauthorized``) before the next handshake. Raises ``error`` when told to stop."""
        if error.code == 401 and error.reconnect == "none":
            log.info("Bayeux server says %s; re-authenticating", error.error)
            if self.on_unauthorized is None:
                raise error
            self._needs_handshake = True
            return True
        if error.reconnect == "handshake" or error.code in (401, 402, 403):
            log.info("Bayeux server says %s; handshaking again", error.error)
            self._needs_handshake = True
            return False
        if error.reconnect == "none":
            raise error
        # retry (or no advice): connect again, after a growing pause.
        self._retries += 1
        log.warning("/meta/connect failed (%s); retrying", error.error)
        return False

    def _refused_credentials(self, error: BayeuxError) -> bool:
        """Whether a refused handshake is worth a new token (a ``401``, or Salesforce's
        ``403::Handshake denied`` with ``failureReason 401``) and one can be had."""
        failure = str(((error.reply.get("ext") or {}).get("sfdc") or {}).get("failureReason"))
        unauthorized = error.code == 401 or failure.startswith("401")
        if not unauthorized or self.on_unauthorized is None:
            return False
        log.info("handshake refused (%s); re-authenticating once", failure or error.error)
        return True


class BayeuxClient(BayeuxSession):
    """One Bayeux session against ``url``, on blocking httpx.

    ``http`` is the httpx client to use (its cookies are kept, as Salesforce requires); ``auth``
    authenticates each request (e.g. a bearer token). ``on_unauthorized`` is called when the
    server says the credentials are no longer valid; it should fetch new ones.
    """

    def __init__(
        self,
        url: str,
        *,
        http: httpx.Client | None = None,
        auth: httpx.Auth | None = None,
        extensions: Sequence[Extension] = (),
        on_unauthorized: Callable[[], None] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__(url, extensions, on_unauthorized)
        self._own_http = http is None
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(30.0, connect=connect_timeout), verify=shared_tls()
        )
        self._auth = auth
        self._closed = threading.Event()

    # -- transport ------------------------------------------------------------------------------

    def _send(self, message: Message, *, timeout: float | None = None) -> list[Message]:
        message = self._outgoing(message)
        if self._closed.is_set():
            raise BayeuxTransportError("the client is closed")
        request_timeout = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        try:
            response = self._http.post(
                self.url,
                json=[message],
                auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
                timeout=request_timeout,
            )
        except (httpx.HTTPError, RuntimeError) as exc:
            # RuntimeError: the connection pool was closed by another thread (shutdown).
            raise BayeuxTransportError(f"{message['channel']}: {type(exc).__name__}") from exc
        return self._replies(
            message["channel"], response.status_code, response.content, response.headers.get("Date")
        )

    # -- protocol -------------------------------------------------------------------------------

    def handshake(self) -> Message:
        """Open a session; raises :class:`BayeuxError` when the server refuses it."""
        return self._handshake_reply(self._send(self._HANDSHAKE))

    def subscribe(self, channel: str) -> Message:
        """Subscribe to ``channel`` (kept for re-subscription after a re-handshake)."""
        self._remember(channel)
        return self._subscribe(channel)

    def _subscribe(self, channel: str) -> Message:
        replies = self._send({"channel": "/meta/subscribe", "subscription": channel})
        return self._reply_to(replies, "/meta/subscribe")

    def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``."""
        if self._forget(channel):
            replies = self._send({"channel": "/meta/unsubscribe", "subscription": channel})
            self._reply_to(replies, "/meta/unsubscribe")

    def publish(self, channel: str, data: Any) -> Message:
        """Publish ``data`` on ``channel`` (where the server allows clients to publish)."""
        if self._needs_handshake:
            self.handshake()
        replies = self._send({"channel": channel, "data": data})
        reply = next((r for r in replies if r.get("channel") == channel and "data" not in r), {})
        if reply and not reply.get("successful", True):
            raise BayeuxError(reply)
        return reply

    def _establish(self) -> None:
        self.handshake()
        for channel in self.subscriptions:
            self._subscribe(channel)

    def connect(self) -> list[Message]:
        """One ``/meta/connect`` (a long poll); returns the data messages it delivered."""
        return self._connected(self._send(self._CONNECT, timeout=self._read_timeout()))

    def receive(self, stop: threading.Event | None = None) -> list[Message]:
        """One turn of the connect loop, following the advice; returns delivered messages.

        Handshakes (and re-subscribes) first when needed. Raises :class:`BayeuxError` when the
        server says not to reconnect (and re-authentication did not help), and
        :class:`BayeuxTransportError` on network errors (the caller backs off).
        """
        stop = stop or threading.Event()
        if self._needs_handshake:
            self.establish()
        interval = self._pause()
        if interval and stop.wait(interval):
            return []
        try:
            messages = self.connect()
        except BayeuxError as error:
            if self._after_failure(error) and self.on_unauthorized is not None:
                self.on_unauthorized()
            return error.delivered
        self._retries = 0
        return messages

    def establish(self) -> None:
        """Handshake and (re-)subscribe every channel in :attr:`subscriptions`.

        When the server refuses the credentials (a ``401``, or Salesforce's ``403::Handshake
        denied`` with ``failureReason 401``), ``on_unauthorized`` is called and it is tried
        once more."""
        try:
            self._establish()
        except BayeuxError as error:
            if not self._refused_credentials(error) or self.on_unauthorized is None:
                raise
            self.on_unauthorized()
            self._establish()

    def disconnect(self) -> None:
        """End the session on the server (best effort: errors are logged, not raised)."""
        if self.client_id is None or self._needs_handshake:
            return
        try:
            self._send({"channel": "/meta/disconnect"}, timeout=5.0)
        except (BayeuxTransportError, httpx.HTTPError) as exc:
            log.debug("disconnect failed: %s", exc)
        self._needs_handshake = True

    def close(self) -> None:
        """Disconnect and release the HTTP connections (ends a long poll in another thread)."""
        self.disconnect()
        self._closed.set()
        if self._own_http:
            self._http.close()
