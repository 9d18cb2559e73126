"""The blocking Bayeux client's reactions to advice and errors, against a scripted server (no
sockets). The asyncio client and the stream: test_omni_bayeux_async.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from omsbridge_salesforce.streaming import (
    BayeuxClient,
    BayeuxError,
    ReplayExtension,
)

Reply = Callable[[dict[str, Any]], list[dict[str, Any]] | Exception]


class Script:
    """A Bayeux server answering from a list of per-channel handlers; records what it got."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.connects: list[Reply] = []
        self.handshakes = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        (message,) = json.loads(request.content)
        self.sent.append(message)
        channel = message["channel"]
        base = {"channel": channel, "id": message["id"]}
        if channel == "/meta/handshake":
            self.handshakes += 1
            body = [
                {
                    **base,
                    "successful": True,
                    "clientId": f"c{self.handshakes}",
                    "supportedConnectionTypes": ["long-polling"],
                    "version": "1.0",
                }
            ]
        elif channel == "/meta/subscribe":
            body = [{**base, "successful": True, "subscription": message["subscription"]}]
        elif channel == "/meta/connect":
            reply = (
                self.connects.pop(0)(message)
                if self.connects
                else [{**base, "successful": True, "advice": {"reconnect": "retry", "interval": 0}}]
            )
            if isinstance(reply, Exception):
                raise reply
            body = reply
        else:
            body = [{**base, "successful": True}]
        return httpx.Response(200, json=body)

    def client(self, **kwargs: Any) -> BayeuxClient:
        http = httpx.Client(transport=httpx.MockTransport(self.handler))
        return BayeuxClient("http://bayeux.test/cometd/62.0", http=http, **kwargs)


def fail(error: str, advice: dict[str, Any] | None = None) -> Reply:
    def reply(message: dict[str, Any]) -> list[dict[str, Any]]:
        out = {"channel": "/meta/connect", "id": message["id"], "successful": False, "error": error}
        if advice is not None:
            out["advice"] = advice
        return [out]

    return reply


def event(replay_id: int) -> Reply:
    def reply(message: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"channel": "/event/X", "data": {"payload": {}, "event": {"replayId": replay_id}}},
            {"channel": "/meta/connect", "id": message["id"], "successful": True},
        ]

    return reply


def test_replay_position_follows_events_and_is_used_on_resubscribe() -> None:
    script = Script()
    replay = ReplayExtension()
    replay.set("/event/X", 10)
    client = script.client(extensions=[replay])
    client.handshake()
    client.subscribe("/event/X")
    script.connects += [event(17), fail("403::Unknown client", {"reconnect": "handshake"})]
    assert [m["data"]["event"]["replayId"] for m in client.receive()] == [17]
    assert client.receive() == []  # unknown client: handshake next time
    client.receive()
    subscribes = [m for m in script.sent if m["channel"] == "/meta/subscribe"]
    assert [m["ext"]["replay"]["/event/X"] for m in subscribes] == [10, 17]
    assert script.handshakes == 2 and client.client_id == "c2"


def test_401_with_reconnect_none_re_authenticates_then_handshakes() -> None:
    script = Script()
    calls: list[str] = []
    client = script.client(on_unauthorized=lambda: calls.append("auth"))
    client.subscriptions.append("/event/X")
    client.establish()
    script.connects.append(fail("401::Authentication invalid", {"reconnect": "none"}))
    client.receive()
    client.receive()
    assert calls == ["auth"] and script.handshakes == 2


def test_401_without_a_way_to_re_authenticate_raises() -> None:
    script = Script()
    client = script.client()
    client.establish()
    script.connects.append(fail("401::Authentication invalid", {"reconnect": "none"}))
    with pytest.raises(BayeuxError) as caught:
        client.receive()
    assert caught.value.code == 401 and caught.value.text == "Authentication invalid"


def test_reconnect_none_stops_and_retry_backs_off() -> None:
    script = Script()
    client = script.client()
    client.establish()
    script.connects += [
        fail("500::busy", {"reconnect": "retry"}),
        fail("400::bad", {"reconnect": "none"}),
    ]
    stop = threading.Event()
    client.receive(stop)
    waits: list[float] = []
    stop.wait = lambda t=None: waits.append(t) or False  # type: ignore[method-assign,func-returns-value]
    with pytest.raises(BayeuxError):
        client.receive(stop)
    assert waits == [0.25]  # one failed retry: a short pause before connecting again


def test_handshake_refused_for_credentials_re_authenticates_once() -> None:
    script = Script()
    refused = {"n": 0}
    original = script.handler

    def handler(request: httpx.Request) -> httpx.Response:
        (message,) = json.loads(request.content)
        if message["channel"] == "/meta/handshake" and refused["n"] == 0:
            refused["n"] += 1
            return httpx.Response(
                200,
                json=[
                    {
                        "channel": "/meta/handshake",
                        "successful": False,
                        "error": "403::Handshake denied",
                        "ext": {"sfdc": {"failureReason": "401::Authentication invalid"}},
                        "advice": {"reconnect": "none"},
                    }
                ],
            )
        return original(request)

    calls: list[str] = []
    client = BayeuxClient(
        "http://bayeux.test/cometd/62.0",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        on_unauthorized=lambda: calls.append("auth"),
    )
    client.establish()
    assert calls == ["auth"] and client.client_id == "c1"


def test_the_server_clock_offset_is_read_once_a_minute_per_session(monkeypatch: Any) -> None:
    # Once per event on the loop that carries every merchant: a new Date header each second
    # is not parsed again until the offset is a minute old (it is read when a stream opens).
    from omsbridge_salesforce.streaming import bayeux

    now = [1000.0]
    monkeypatch.setattr(bayeux.time, "monotonic", lambda: now[0])
    session = bayeux.BayeuxSession("http://x/cometd", [], None)
    session._replies("/meta/connect", 200, b"[]", "Mon, 07 Dec 2026 05:00:00 GMT")
    first = session.server_offset
    assert first is not None
    now[0] += 30
    session._replies("/meta/connect", 200, b"[]", "Mon, 07 Dec 2026 06:00:00 GMT")
    assert session.server_offset == first  # within the minute: kept
    now[0] += 31
    session._replies("/meta/connect", 200, b"[]", "Mon, 07 Dec 2026 06:00:00 GMT")
    assert session.server_offset is not None
    assert session.server_offset - first > bayeux.timedelta(minutes=59)  # read again
