"""The asyncio Bayeux client and its stream, against a scripted server on the shared event loop
(no sockets): advice, re-handshake, re-authentication, network retries, cookies, many merchants
on one loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from omsbridge_salesforce.streaming import (
    AsyncBayeuxClient,
    BayeuxError,
    BayeuxTransportError,
    EventStream,
    ReplayExtension,
)
from omsbridge_salesforce.streaming.hub import shared_hub

Reply = Callable[[dict[str, Any]], list[dict[str, Any]] | Exception]
URL = "http://bayeux.test/cometd/62.0"


class Script:
    """A Bayeux server answering connects from a list of handlers (an empty long poll of
    ``poll`` seconds when the list is empty); records what it got and the headers it saw."""

    def __init__(self, poll: float = 0.05) -> None:
        self.sent: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.connects: list[Reply] = []
        self.handshakes = 0
        self.poll = poll
        self.handshake_reply: Callable[[dict[str, Any]], list[dict[str, Any]] | None] = lambda m: (
            None
        )

    async def handler(self, request: httpx.Request) -> httpx.Response:
        (message,) = json.loads(request.content)
        self.sent.append(message)
        self.headers.append(request.headers)
        channel = message["channel"]
        base = {"channel": channel, "id": message["id"]}
        headers = {"Date": "Mon, 07 Dec 2026 01:00:00 GMT"}
        if channel == "/meta/handshake":
            refused = self.handshake_reply(message)
            if refused is not None:
                return httpx.Response(200, json=refused, headers=headers)
            self.handshakes += 1
            body: Any = [
                {
                    **base,
                    "successful": True,
                    "clientId": f"c{self.handshakes}",
                    "supportedConnectionTypes": ["long-polling"],
                    "version": "1.0",
                    "advice": {"reconnect": "retry", "interval": 0, "timeout": 110000},
                }
            ]
            headers["Set-Cookie"] = f"BAYEUX_BROWSER=b{self.handshakes}; Path=/"
        elif channel == "/meta/subscribe":
            body = [{**base, "successful": True, "subscription": message["subscription"]}]
        elif channel == "/meta/connect":
            if self.connects:
                reply = self.connects.pop(0)(message)
                if isinstance(reply, Exception):
                    raise reply
                body = reply
            else:
                await asyncio.sleep(self.poll)
                body = [{**base, "successful": True, "advice": {"reconnect": "retry"}}]
        else:
            body = [{**base, "successful": True}]
        return httpx.Response(200, json=body, headers=headers)

    def client(self, **kwargs: Any) -> AsyncBayeuxClient:
        return AsyncBayeuxClient(URL, transport=httpx.MockTransport(self.handler), **kwargs)

    def stream(self, channel: str = "/event/X", **kwargs: Any) -> EventStream:
        return EventStream(self.client(**kwargs.pop("client", {})), channel, **kwargs)


def fail(error: str, advice: dict[str, Any] | None = None) -> Reply:
    def reply(message: dict[str, Any]) -> list[dict[str, Any]]:
        out = {"channel": "/meta/connect", "id": message["id"], "successful": False, "error": error}
        if advice is not None:
            out["advice"] = advice
        return [out]

    return reply


def event(replay_id: int, channel: str = "/event/X") -> Reply:
    def reply(message: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"channel": channel, "data": {"payload": {}, "event": {"replayId": replay_id}}},
            {"channel": "/meta/connect", "id": message["id"], "successful": True},
        ]

    return reply


def take(stream: EventStream, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(stream.take(0.2))
    return got


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def run(coro: Any) -> Any:
    return shared_hub().submit(coro).result(10)


def test_unknown_client_re_handshakes_and_resubscribes_from_the_last_event() -> None:
    script = Script()
    replay = ReplayExtension()
    replay.set("/event/X", 10)
    stream = script.stream(client={"extensions": [replay]})
    script.connects += [event(17), fail("403::Unknown client", {"reconnect": "handshake"})]
    script.connects += [event(18)]
    stream.open()
    try:
        got = take(stream, 2)
        assert [m["data"]["event"]["replayId"] for m in got] == [17, 18]
    finally:
        stream.close()
    subscribes = [m for m in script.sent if m["channel"] == "/meta/subscribe"]
    assert [m["ext"]["replay"]["/event/X"] for m in subscribes] == [10, 17]
    assert script.handshakes == 2 and stream.client.client_id == "c2"
    # Each session sends back the cookie its handshake set (Salesforce requires it).
    connects = [
        h
        for m, h in zip(script.sent, script.headers, strict=True)
        if m["channel"] == "/meta/connect"
    ]
    assert connects[0]["Cookie"] == "BAYEUX_BROWSER=b1"
    assert connects[-1]["Cookie"] == "BAYEUX_BROWSER=b2"
    assert script.sent[-1]["channel"] == "/meta/disconnect"  # a clean close


def test_the_connect_follows_the_advised_interval_and_timeout() -> None:
    script = Script()
    client = script.client()
    run(client.establish())
    script.connects.append(
        lambda m: [
            {
                "channel": "/meta/connect",
                "id": m["id"],
                "successful": True,
                "advice": {"reconnect": "retry", "interval": 300, "timeout": 20000},
            }
        ]
    )
    run(client.receive())
    assert client._read_timeout() == 35.0  # the advised 20 s long poll, plus a margin
    started = time.monotonic()
    run(client.receive())
    assert time.monotonic() - started >= 0.3  # waited the advised interval before connecting
    run(client.aclose())


def test_401_with_reconnect_none_re_authenticates_then_handshakes() -> None:
    script = Script()
    calls: list[str] = []
    tokens = iter(["t1", "t2"])
    current = {"token": next(tokens)}

    def refresh() -> None:
        calls.append(threading.current_thread().name)
        current["token"] = next(tokens)

    stream = script.stream(
        client={
            "on_unauthorized": refresh,
            "authorization": lambda: f"Bearer {current['token']}",
        }
    )
    script.connects += [fail("401::Authentication invalid", {"reconnect": "none"}), event(5)]
    stream.open()
    try:
        assert [m["data"]["event"]["replayId"] for m in take(stream, 1)] == [5]
    finally:
        stream.close()
    assert len(calls) == 1 and calls[0] != "streams-hub"  # the token request left the loop
    assert script.handshakes == 2
    auths = [h["Authorization"] for h in script.headers]
    assert auths[0] == "Bearer t1" and auths[-2] == "Bearer t2"


def test_401_without_a_way_to_re_authenticate_reaches_the_reader() -> None:
    script = Script()
    stream = script.stream()
    script.connects.append(fail("401::Authentication invalid", {"reconnect": "none"}))
    stream.open()
    with pytest.raises(BayeuxError) as caught:
        take(stream, 1)
    assert caught.value.code == 401 and stream.dead
    stream.close()


def test_events_before_a_failure_are_taken_first() -> None:
    script = Script()
    stream = script.stream()

    def both(message: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"channel": "/event/X", "data": {"event": {"replayId": 3}}},
            {
                "channel": "/meta/connect",
                "id": message["id"],
                "successful": False,
                "error": "400::bad",
                "advice": {"reconnect": "none"},
            },
        ]

    script.connects.append(both)
    stream.open()
    eventually(lambda: stream._failure is not None)
    assert [m["data"]["event"]["replayId"] for m in stream.take(0)] == [3]
    assert not stream.dead
    with pytest.raises(BayeuxError):
        stream.take(0)
    assert stream.dead
    stream.close()


def test_retry_backs_off_and_network_errors_are_retried_then_reported() -> None:
    script = Script()
    stream = script.stream(network_retries=2, backoff_initial=0.01)
    script.connects += [fail("500::busy", {"reconnect": "retry"})]
    script.connects += [lambda m: httpx.ConnectError("down")] * 10
    stream.open()
    with pytest.raises(BayeuxTransportError):
        for _ in range(50):
            stream.take(0.1)
    assert stream.dead
    stream.close()
    connects = [m for m in script.sent if m["channel"] == "/meta/connect"]
    assert len(connects) == 4  # the refused one, then the first try and two retries


def test_handshake_refused_for_credentials_re_authenticates_once() -> None:
    script = Script()
    refused = {"n": 0}

    def refuse(message: dict[str, Any]) -> list[dict[str, Any]] | None:
        if refused["n"]:
            return None
        refused["n"] += 1
        return [
            {
                "channel": "/meta/handshake",
                "successful": False,
                "error": "403::Handshake denied",
                "ext": {"sfdc": {"failureReason": "401::Authentication invalid"}},
                "advice": {"reconnect": "none"},
            }
        ]

    script.handshake_reply = refuse
    calls: list[str] = []
    client = script.client(on_unauthorized=lambda: calls.append("auth"))
    run(client.establish())
    assert calls == ["auth"] and client.client_id == "c1"
    run(client.aclose())


def test_a_refused_subscription_raises_from_open() -> None:
    script = Script()

    async def refuse(request: httpx.Request) -> httpx.Response:
        (message,) = json.loads(request.content)
        if message["channel"] == "/meta/subscribe":
            return httpx.Response(
                200,
                json=[
                    {
                        "channel": "/meta/subscribe",
                        "successful": False,
                        "error": "400::The replayId {5} you provided was invalid",
                    }
                ],
            )
        return await script.handler(request)

    stream = EventStream(AsyncBayeuxClient(URL, transport=httpx.MockTransport(refuse)), "/event/X")
    with pytest.raises(BayeuxError) as caught:
        stream.open()
    assert caught.value.channel == "/meta/subscribe"
    stream.close()


class Orgs:
    """Many orgs' Bayeux endpoints (``/org/<i>/cometd``) whose long polls wait on the loop for
    events published to their org."""

    def __init__(self, poll: float = 2.0) -> None:
        self.poll = poll
        self.waiting: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.org_of: dict[str, int] = {}
        self.ids = 0

    async def handler(self, request: httpx.Request) -> httpx.Response:
        (message,) = json.loads(request.content)
        org = int(request.url.path.split("/")[2])
        channel = message["channel"]
        base = {"channel": channel, "id": message["id"], "successful": True}
        if channel == "/meta/handshake":
            self.ids += 1
            client_id = f"o{org}-{self.ids}"
            self.waiting[client_id] = asyncio.Queue()
            self.org_of[client_id] = org
            body: list[dict[str, Any]] = [
                {**base, "clientId": client_id, "supportedConnectionTypes": ["long-polling"]}
            ]
        elif channel == "/meta/connect":
            queue = self.waiting[message["clientId"]]
            body = []
            try:
                body.append(await asyncio.wait_for(queue.get(), self.poll))
                while not queue.empty():
                    body.append(queue.get_nowait())
            except TimeoutError:
                pass
            body.append({**base, "advice": {"reconnect": "retry", "interval": 0}})
        else:
            body = [base]
        return httpx.Response(200, json=body)

    def publish(self, org: int, data: dict[str, Any]) -> None:
        for client_id, queue in list(self.waiting.items()):
            if self.org_of[client_id] == org:
                shared_hub().loop.call_soon_threadsafe(
                    queue.put_nowait, {"channel": "/event/X", "data": data}
                )


def test_two_hundred_merchants_streams_on_one_loop_without_a_thread_each() -> None:
    orgs = Orgs()
    shared_hub()  # the process's loop thread, started once whatever the merchants
    before = threading.active_count()
    ready: list[int] = []
    streams = []
    for i in range(200):
        client = AsyncBayeuxClient(
            f"http://bayeux.test/org/{i}/cometd/62.0", transport=httpx.MockTransport(orgs.handler)
        )
        stream = EventStream(client, "/event/X")
        stream.on_ready = lambda i=i: ready.append(i)
        stream.open()
        streams.append(stream)
    try:
        threads = threading.active_count()
        for i in range(200):
            orgs.publish(i, {"org": i, "event": {"replayId": i}})
        got = [take(stream, 1) for stream in streams]
    finally:
        for stream in streams:
            stream.close()
    # No thread per merchant: at most the loop's two token fetchers came on top.
    assert threads - before <= 2, threads - before
    assert [[m["data"]["org"] for m in messages] for messages in got] == [[i] for i in range(200)]
    assert sorted(set(ready)) == list(range(200))  # each woke the listener pool


def test_the_connect_body_made_from_parts_is_what_json_dumps_makes() -> None:
    client = AsyncBayeuxClient(
        "http://bayeux.test/cometd/62.0", transport=httpx.MockTransport(None)
    )  # type: ignore[arg-type]
    for client_id in ("abc123", 'we"ird\\id', "ünïcode"):
        client.client_id = client_id
        message = client._outgoing(client._CONNECT)
        assert (
            client._connect_body(message) == json.dumps([message], separators=(",", ":")).encode()
        )
    message["ext"] = {"x": 1}  # another shape (an extension's): json.dumps itself
    assert json.loads(client._connect_body(message)) == [message]
