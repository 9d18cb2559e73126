"""Platform events and the CometD (Bayeux long-polling) endpoint ``/cometd/XX.X``.

:class:`EventBus` keeps published events with increasing, non-contiguous replay ids for the
retention window (72 h by default, against the sandbox clock). :class:`CometD` serves
handshake / subscribe / connect / unsubscribe / disconnect with the replay extension
(``-1`` new only, ``-2`` everything retained, or an explicit replay id), Salesforce's
``advice``, ``403::Unknown client`` for clients it does not know (e.g. after a restart) and
``401::Authentication invalid`` when the token stops being valid. Long polls wait on a
condition variable outside the sandbox lock, so they never hold up other requests.
"""

from __future__ import annotations

import random
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .clock import Clock


class StreamingOptions(Protocol):
    """Options CometD reads at each request (they can change at run time)."""

    long_poll_timeout: float
    reconnect_timeout: float


#: Channels of the standard Order Management events the sandbox can publish.
CHANNELS = (
    "/event/FOStatusChangedEvent",
    "/event/OrderSummaryCreatedEvent",
    "/event/OrderSumStatusChangedEvent",
    "/event/ProcessExceptionEvent",
)
_SCHEMAS = {
    "/event/FOStatusChangedEvent": "k4x9FOStatusChgEvt_sbx1",
    "/event/OrderSummaryCreatedEvent": "q2pOrderSumCreatedEvt_sbx1",
    "/event/OrderSumStatusChangedEvent": "m7rOrderSumStatusChg_sbx1",
    "/event/ProcessExceptionEvent": "p3eProcessExceptionEvt_sbx1",
}
_INVALID_REPLAY = (
    "The replayId {{{id}}} you provided was invalid.  Please provide a valid ID, "
    "-2 to replay all events, or -1 to replay only new events."
)


@dataclass
class Event:
    """One published platform event."""

    channel: str
    replay_id: int
    payload: dict[str, Any]
    published_at: float

    def message(self) -> dict[str, Any]:
        """The Bayeux message delivering this event."""
        return {
            "data": {
                "schema": _SCHEMAS.get(self.channel, "sandboxSchema"),
                "payload": self.payload,
                "event": {"EventUuid": self.payload.get("EventUuid"), "replayId": self.replay_id},
            },
            "channel": self.channel,
        }


class EventBus:
    """Retained platform events, with blocking waits for new ones."""

    def __init__(self, clock: Clock, retention_seconds: float, seed: int = 0) -> None:
        self.clock = clock
        self.retention_seconds = retention_seconds
        self._events: list[Event] = []
        self._last_replay = 1000
        self._pruned_up_to = 0  # highest replay id that fell out of retention
        self._rng = random.Random(seed)
        self.cond = threading.Condition()
        self.closed = False
        self.on_publish: list[Any] = []

    def publish(self, channel: str, payload: dict[str, Any]) -> Event:
        """Append an event (replay ids grow by a random step, like Salesforce's)."""
        with self.cond:
            self._last_replay += self._rng.randint(1, 9)
            event = Event(channel, self._last_replay, dict(payload), self.clock.timestamp())
            self._events.append(event)
            self.cond.notify_all()
        for hook in self.on_publish:
            hook()
        return event

    def _prune(self) -> None:
        horizon = self.clock.timestamp() - self.retention_seconds
        while self._events and self._events[0].published_at < horizon:
            self._pruned_up_to = self._events.pop(0).replay_id

    def retained(self, channel: str | None = None) -> list[Event]:
        """Events still within retention (optionally of one channel)."""
        with self.cond:
            self._prune()
            return [e for e in self._events if channel is None or e.channel == channel]

    @property
    def tip(self) -> int:
        """The latest replay id handed out."""
        with self.cond:
            return self._last_replay

    def valid_replay(self, replay_id: int) -> bool:
        """Whether resuming after *replay_id* loses no event (it must be inside retention)."""
        with self.cond:
            self._prune()
            return self._pruned_up_to <= replay_id <= self._last_replay

    def after(self, channel: str, replay_id: int) -> list[Event]:
        """Retained events of *channel* with a replay id above *replay_id*."""
        return [e for e in self.retained(channel) if e.replay_id > replay_id]

    def wake(self) -> None:
        """Wake every waiting long poll (shutdown, restart)."""
        with self.cond:
            self.cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """Persistable state."""
        with self.cond:
            return {
                "last": self._last_replay,
                "pruned": self._pruned_up_to,
                "events": [e.__dict__ for e in self._events],
            }

    def restore(self, state: dict[str, Any] | None) -> None:
        """Restore a :meth:`snapshot`."""
        with self.cond:
            if not state:
                self._events = []
                self._last_replay = 1000
                self._pruned_up_to = 0
                return
            self._last_replay = state["last"]
            self._pruned_up_to = state["pruned"]
            self._events = [Event(**e) for e in state["events"]]


@dataclass
class _Client:
    id: str
    subscriptions: dict[str, int] = field(default_factory=dict)
    last_seen: float = 0.0
    connected: bool = False


def _client_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(26))


class CometD:
    """The Bayeux server for ``/cometd/XX.X``."""

    def __init__(
        self,
        events: EventBus,
        options: StreamingOptions,
        clock: Clock,
        check_token: Callable[[str | None], Any],
    ) -> None:
        self._events = events
        self._options = options
        self._clock = clock
        self._check_token = check_token
        self._clients: dict[str, _Client] = {}
        self._lock = threading.Lock()

    @property
    def client_count(self) -> int:
        """Connected CometD clients."""
        with self._lock:
            return len(self._clients)

    def drop_all(self) -> None:
        """Forget every client (what a server restart does)."""
        with self._lock:
            self._clients.clear()
        self._events.wake()

    def _advice(self) -> dict[str, Any]:
        return {
            "interval": 0,
            "timeout": int(self._options.long_poll_timeout * 1000),
            "reconnect": "retry",
        }

    def handle(
        self, messages: list[dict[str, Any]], auth_header: str | None
    ) -> list[dict[str, Any]]:
        """Process one POSTed batch of Bayeux messages and return the reply array."""
        replies: list[dict[str, Any]] = []
        for msg in messages:
            if not isinstance(msg, dict):
                replies.append({"successful": False, "error": "400::Invalid message"})
                continue
            channel = msg.get("channel")
            base = {"channel": channel, "id": msg.get("id")}
            if channel == "/meta/handshake":
                replies.append(self._handshake(msg, base, auth_header))
            elif channel == "/meta/connect":
                replies.extend(self._connect(msg, base, auth_header))
            elif channel in ("/meta/subscribe", "/meta/unsubscribe"):
                replies.append(self._subscription(msg, base, auth_header))
            elif channel == "/meta/disconnect":
                with self._lock:
                    self._clients.pop(str(msg.get("clientId")), None)
                replies.append({**base, "clientId": msg.get("clientId"), "successful": True})
            else:
                replies.append(
                    {
                        **base,
                        "clientId": msg.get("clientId"),
                        "successful": False,
                        "error": "403::Publish denied",
                    }
                )
        return replies

    def _auth_error(self, auth_header: str | None) -> str | None:
        if not auth_header:
            return "401::Request requires authentication"
        try:
            self._check_token(auth_header)
        except Exception:
            return "401::Authentication invalid"
        return None

    def _handshake(
        self, msg: dict[str, Any], base: dict[str, Any], auth_header: str | None
    ) -> dict[str, Any]:
        failure = self._auth_error(auth_header)
        if failure:
            return {
                **base,
                "ext": {"sfdc": {"failureReason": failure}, "replay": True, "payload.format": True},
                "advice": {"reconnect": "none"},
                "error": "403::Handshake denied",
                "successful": False,
            }
        types = msg.get("supportedConnectionTypes") or ["long-polling"]
        if "long-polling" not in types:
            return {**base, "error": "400::Invalid connection type", "successful": False}
        client = _Client(_client_id(), last_seen=self._clock.timestamp())
        with self._lock:
            self._clients[client.id] = client
        return {
            **base,
            "ext": {"replay": True, "payload.format": True},
            "minimumVersion": "1.0",
            "clientId": client.id,
            "supportedConnectionTypes": ["long-polling"],
            "version": "1.0",
            "successful": True,
            "reestablish": False,
        }

    def _client(self, msg: dict[str, Any]) -> _Client | None:
        with self._lock:
            client = self._clients.get(str(msg.get("clientId")))
            if client is None:
                return None
            # A client that stays away longer than the reconnect timeout is expired.
            if self._clock.timestamp() - client.last_seen > self._options.reconnect_timeout:
                self._clients.pop(client.id, None)
                return None
            return client

    def _unknown(self, base: dict[str, Any], msg: dict[str, Any]) -> dict[str, Any]:
        return {
            **base,
            "clientId": msg.get("clientId"),
            "successful": False,
            "error": "403::Unknown client",
            "advice": {"reconnect": "handshake", "interval": 0},
        }

    def _subscription(
        self, msg: dict[str, Any], base: dict[str, Any], auth_header: str | None
    ) -> dict[str, Any]:
        subscription = msg.get("subscription")
        reply = {**base, "clientId": msg.get("clientId"), "subscription": subscription}
        failure = self._auth_error(auth_header)
        if failure:
            return {
                **reply,
                "successful": False,
                "error": failure,
                "advice": {"reconnect": "none", "interval": 0},
            }
        client = self._client(msg)
        if client is None:
            return self._unknown(base, msg) | {"subscription": subscription}
        if base["channel"] == "/meta/unsubscribe":
            with self._lock:
                client.subscriptions.pop(str(subscription), None)
            return {**reply, "successful": True}
        if subscription not in CHANNELS:
            return {
                **reply,
                "successful": False,
                "error": "400::The channel you requested to subscribe to does not exist "
                f"{{{subscription}}}",
            }
        replay_ext = (msg.get("ext") or {}).get("replay") or {}
        replay = replay_ext.get(subscription, -1)
        try:
            replay = int(replay)
        except (TypeError, ValueError):
            replay = None
        events = self._events
        if replay == -1:
            cursor = events.tip
        elif replay == -2:
            cursor = 0
        elif replay is not None and replay >= 0 and events.valid_replay(replay):
            cursor = replay
        else:
            return {
                **reply,
                "successful": False,
                "error": "400::" + _INVALID_REPLAY.format(id=replay_ext.get(subscription)),
            }
        with self._lock:
            client.subscriptions[str(subscription)] = cursor
        return {**reply, "successful": True}

    def _pending(self, client: _Client) -> list[dict[str, Any]]:
        out = []
        for channel, cursor in list(client.subscriptions.items()):
            events = self._events.after(channel, cursor)
            if events:
                client.subscriptions[channel] = events[-1].replay_id
                out.extend(events)
        out.sort(key=lambda e: e.replay_id)
        return [e.message() for e in out]

    def _connect(
        self, msg: dict[str, Any], base: dict[str, Any], auth_header: str | None
    ) -> list[dict[str, Any]]:
        failure = self._auth_error(auth_header)
        if failure:
            # The session is gone: the client must re-authenticate, then handshake again.
            with self._lock:
                self._clients.pop(str(msg.get("clientId")), None)
            return [
                {
                    **base,
                    "clientId": msg.get("clientId"),
                    "successful": False,
                    "error": failure,
                    "advice": {"reconnect": "none", "interval": 0},
                }
            ]
        client = self._client(msg)
        if client is None:
            return [self._unknown(base, msg)]
        bus = self._events
        deadline = time.monotonic() + (self._options.long_poll_timeout if client.connected else 0.0)
        client.connected = True
        with bus.cond:
            while True:
                delivered = self._pending(client)
                if delivered or bus.closed:
                    break
                with self._lock:
                    alive = client.id in self._clients
                if not alive:
                    return [self._unknown(base, msg)]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                bus.cond.wait(timeout=min(remaining, 0.5))
        client.last_seen = self._clock.timestamp()
        reply = {**base, "clientId": client.id, "successful": True, "advice": self._advice()}
        return [*delivered, reply]
