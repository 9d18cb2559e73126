"""LongPollTransport, the lean HTTP/1.1 transport of CometD sessions, against a raw asyncio
server: the answer shapes HTTP/1.1 allows, kept connections, timeouts and cancellation."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from omsbridge_salesforce.streaming.http1 import LongPollTransport

Answer = Callable[[bytes], Awaitable[bytes | None]]


class RawServer:
    """Reads one request at a time per connection (head and Content-Length body) and writes
    what ``answer`` returns (None: close the connection without answering)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/cometd/62.0"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                out = await self.answer(head + body)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
                if b"Connection: close" in out:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


def run(answer: Answer, test: Callable[[LongPollTransport, str, RawServer], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = RawServer(answer)
        url = await server.start()
        transport = LongPollTransport()
        try:
            return await test(transport, url, server)
        finally:
            await transport.aclose()
            await server.stop()

    return asyncio.run(main())


def fixed(*answers: bytes) -> Answer:
    queue = list(answers)

    async def answer(request: bytes) -> bytes | None:
        return queue.pop(0) if queue else None

    return answer


async def post(transport: LongPollTransport, url: str, body: bytes = b"[]", **kw: Any) -> Any:
    request = httpx.Request("POST", url, content=body, extensions={"timeout": kw})
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


def test_content_length_chunked_and_gzip_answers_on_one_kept_connection() -> None:
    zipped = gzip.compress(b'[{"a":3}]')
    answers = fixed(
        b'HTTP/1.1 200 OK\r\nContent-Length: 9\r\nDate: x\r\n\r\n[{"a":1}]',
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[{"a\r\n5;x=y\r\n":2}]\r\n0\r\n\r\n',
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
        + str(len(zipped)).encode()
        + b"\r\n\r\n"
        + zipped,
    )

    async def test(transport: LongPollTransport, url: str, server: RawServer) -> list[Any]:
        out = [await post(transport, url, read=5) for _ in range(3)]
        assert server.connections == 1  # kept alive between the three
        return out

    first, second, third = run(answers, test)
    assert first.json() == [{"a": 1}] and first.headers["Date"] == "x"
    assert second.json() == [{"a": 2}]
    assert third.json() == [{"a": 3}]  # httpx decoded the gzip body


def test_the_request_goes_out_as_httpx_built_it() -> None:
    async def test(transport: LongPollTransport, url: str, server: RawServer) -> None:
        request = httpx.Request(
            "POST", url, content=b'[{"x":1}]', headers={"Authorization": "Bearer t"}
        )
        await transport.handle_async_request(request)

    run(fixed(b"HTTP/1.1 204 No Content\r\n\r\n"), lambda t, u, s: _check_sent(t, u, s, test))


async def _check_sent(transport: LongPollTransport, url: str, server: RawServer, test: Any) -> None:
    await test(transport, url, server)
    (sent,) = server.requests
    head, _, body = sent.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /cometd/62.0 HTTP/1.1"
    assert b"Authorization: Bearer t" in lines and b"Content-Length: 9" in lines
    assert lines[1].startswith(b"Host: 127.0.0.1:")
    assert body == b'[{"x":1}]'


def test_an_answer_without_length_ends_with_the_connection_which_is_not_kept() -> None:
    answers = fixed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[1]")

    async def answer(request: bytes) -> bytes | None:
        out = await answers(request)
        return out

    async def test(transport: LongPollTransport, url: str, server: RawServer) -> Any:
        first = await post(transport, url, read=5)
        server.answer = fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[2]")
        second = await post(transport, url, read=5)
        assert server.connections == 2
        return first, second

    # The server closes after the first answer (it returns None for the next request on it).
    first, second = run(answer, test)
    assert first.json() == [1] and second.json() == [2]


def test_a_kept_connection_the_server_closed_is_replaced_once() -> None:
    calls = {"n": 0}

    async def answer(request: bytes) -> bytes | None:
        calls["n"] += 1
        if calls["n"] == 2:
            return None  # drops the kept connection instead of answering the 2nd request
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"

    async def test(transport: LongPollTransport, url: str, server: RawServer) -> Any:
        await post(transport, url, read=5)
        response = await post(transport, url, read=5)
        assert server.connections == 2
        return response

    assert run(answer, test).json() == []


def test_silence_past_the_read_timeout_is_a_read_timeout() -> None:
    async def answer(request: bytes) -> bytes | None:
        await asyncio.sleep(5)
        return None

    async def test(transport: LongPollTransport, url: str, server: RawServer) -> None:
        with pytest.raises(httpx.ReadTimeout):
            await post(transport, url, read=0.2)

    run(answer, test)


def test_a_cancelled_long_poll_closes_its_connection() -> None:
    async def answer(request: bytes) -> bytes | None:
        await asyncio.sleep(5)
        return None

    async def test(transport: LongPollTransport, url: str, server: RawServer) -> None:
        task = asyncio.ensure_future(post(transport, url, read=30))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not transport._idle.get(
            (b"http", b"127.0.0.1", int(url.split(":")[2].split("/")[0]))
        )

    run(answer, test)


def test_unreachable_and_garbage_are_httpx_errors() -> None:
    async def test(transport: LongPollTransport, url: str, server: RawServer) -> None:
        with pytest.raises(httpx.ConnectError):
            await post(transport, "http://127.0.0.1:1/cometd", connect=2, read=2)
        with pytest.raises(httpx.RemoteProtocolError):
            await post(transport, url, read=2)

    run(fixed(b"SSH-2.0-OpenSSH\r\n\r\n"), test)


def test_a_bayeux_session_over_it_keeps_its_cookie_token_and_one_connection() -> None:
    from omsbridge_salesforce.streaming import AsyncBayeuxClient

    def ok(body: bytes, *headers: bytes) -> bytes:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += b"Date: Mon, 07 Dec 2026 02:00:00 GMT\r\n"
        head += b"".join(h + b"\r\n" for h in headers)
        return head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body

    async def answer(request: bytes) -> bytes | None:
        (message,) = json.loads(request.partition(b"\r\n\r\n")[2])
        channel = message["channel"]
        if channel == "/meta/handshake":
            reply = {"channel": channel, "successful": True, "clientId": "c1"}
            return ok(json.dumps([reply]).encode(), b"Set-Cookie: BAYEUX_BROWSER=b1; Path=/")
        if channel == "/meta/connect":
            zipped = gzip.compress(
                json.dumps(
                    [
                        {"channel": "/event/X", "data": {"n": 1}},
                        {"channel": channel, "successful": True},
                    ]
                ).encode()
            )
            return ok(zipped, b"Content-Encoding: gzip")
        return ok(json.dumps([{"channel": channel, "successful": True}]).encode())

    async def test(transport: LongPollTransport, url: str, server: RawServer) -> Any:
        client = AsyncBayeuxClient(url, authorization=lambda: "Bearer t1")
        client.subscriptions.append("/event/X")
        await client.establish()
        messages = await client.connect()
        await client.aclose()
        return client, messages, list(server.requests), server.connections

    client, messages, requests, connections = run(answer, test)
    assert messages == [{"channel": "/event/X", "data": {"n": 1}}]  # gzip decoded
    assert client.server_offset is not None  # read from the Date header
    # The request after the handshake carries the cookie it set, every one the token.
    handshake, subscribe, connect, disconnect = requests
    assert b"Cookie: BAYEUX_BROWSER=b1" not in handshake
    assert all(b"Cookie: BAYEUX_BROWSER=b1" in r for r in (subscribe, connect, disconnect))
    assert all(b"Authorization: Bearer t1" in r for r in requests)
    assert connections == 1  # all four on one kept-alive connection


def test_a_folded_header_line_is_read_as_one_value() -> None:
    # RFC 9112 section 5.2: a client replaces obs-fold with a space before interpreting.
    answers = fixed(b"HTTP/1.1 200 OK\r\nX-Note: one\r\n  two\r\nContent-Length: 2\r\n\r\n[]")

    async def test(transport: LongPollTransport, url: str, server: RawServer) -> Any:
        return await post(transport, url, read=5)

    response = run(answers, test)
    assert response.headers["X-Note"] == "one two" and response.json() == []


def test_transfer_encoding_wins_over_content_length_and_the_connection_is_not_kept() -> None:
    # RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length; both at once may be
    # response splitting, so the connection is not reused.
    answers = fixed(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\n[1,2]\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[3]",
    )

    async def test(transport: LongPollTransport, url: str, server: RawServer) -> Any:
        first = await post(transport, url, read=5)
        second = await post(transport, url, read=5)
        assert server.connections == 2
        return first, second

    first, second = run(answers, test)
    assert first.json() == [1, 2] and second.json() == [3]


def test_bad_or_conflicting_content_lengths_are_protocol_errors() -> None:
    for head in (
        b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n[1]",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n[1]",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n[1]",
    ):

        async def test(transport: LongPollTransport, url: str, server: RawServer) -> None:
            with pytest.raises(httpx.RemoteProtocolError):
                await post(transport, url, read=2)

        run(fixed(head), test)


class _Pieces(RawServer):
    """Answers the first request with ``pieces`` (separate writes, a pause between them), then
    waits ``linger`` seconds and closes the connection."""

    def __init__(self, pieces: list[bytes], linger: float = 0.0, pause: float = 0.02) -> None:
        super().__init__(fixed())
        self.pieces, self.linger, self.pause = pieces, linger, pause

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        for piece in self.pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(self.pause)
        await asyncio.sleep(self.linger)
        writer.close()


def _post_to(server: RawServer, read: float) -> Any:
    async def main() -> Any:
        url = await server.start()
        transport = LongPollTransport()
        try:
            return await post(transport, url, body=b"", read=read)
        finally:
            await transport.aclose()
            await server.stop()

    return asyncio.run(main())


def test_a_body_cut_short_by_the_connection_end_is_a_protocol_error() -> None:
    for cut in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[1,",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[1,",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            _post_to(_Pieces([cut]), read=2)


def test_an_answer_in_many_segments_is_read_whole() -> None:
    pieces = [b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 9\r\n\r", b'\n[{"a"', b":1}]"]
    assert _post_to(_Pieces(pieces, linger=1), read=5).content == b'[{"a":1}]'
    chunked = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3", b"\r\n[1,", b"\r"]
    chunked += [b"\n2\r\n2]\r\n0\r", b"\n\r\n"]
    assert _post_to(_Pieces(chunked, linger=1), read=5).json() == [1, 2]


def test_a_slow_answer_is_not_a_timeout_while_bytes_keep_coming() -> None:
    # The read timeout measures silence (as httpx's does), not the whole answer's time.
    pieces = [b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", b"[1", b",2", b"]\n"]
    assert _post_to(_Pieces(pieces, linger=1, pause=0.15), read=0.25).json() == [1, 2]


def test_an_event_stream_chains_its_connects_through_errors_and_advice() -> None:
    # The steady state runs in the connection's callbacks (no task per long poll); a closed
    # kept connection, `403::Unknown client` and the advice still go the usual way.
    from omsbridge_salesforce.streaming import AsyncBayeuxClient, EventStream
    from omsbridge_salesforce.streaming.hub import shared_hub

    state = {"connects": 0, "events": 0, "handshakes": 0}

    def ok(replies: list[dict[str, Any]]) -> bytes:
        body = json.dumps(replies).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def answer(request: bytes) -> bytes | None:
        (message,) = json.loads(request.partition(b"\r\n\r\n")[2])
        channel = message["channel"]
        if channel == "/meta/handshake":
            state["handshakes"] += 1
            client_id = f"c{state['handshakes']}"
            return ok([{"channel": channel, "successful": True, "clientId": client_id}])
        if channel != "/meta/connect":
            return ok([{"channel": channel, "successful": True}])
        assert message["clientId"] == f"c{state['handshakes']}"
        state["connects"] += 1
        if state["connects"] == 4:
            return None  # closes the kept connection instead of answering
        if state["connects"] == 7:
            refused = {"channel": channel, "successful": False, "error": "403::Unknown client"}
            return ok([{**refused, "advice": {"reconnect": "handshake"}}])
        if state["events"] >= 8:
            await asyncio.sleep(0.2)  # nothing more: an empty long poll
            return ok([{"channel": channel, "successful": True}])
        state["events"] += 1
        n = state["events"]
        event = {"channel": "/event/X", "data": {"n": n, "event": {"replayId": n}}}
        return ok([event, {"channel": channel, "successful": True}])

    hub = shared_hub()
    server = RawServer(answer)
    url = hub.submit(server.start()).result()
    client = AsyncBayeuxClient(url)
    receives = {"n": 0}
    receive = client.receive

    async def counting() -> Any:
        receives["n"] += 1
        return await receive()

    client.receive = counting  # type: ignore[method-assign]
    stream = EventStream(client, "/event/X", hub=hub)
    stream.open()
    got: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while len(got) < 8 and time.monotonic() < deadline:
            got += [m["data"]["n"] for m in stream.take(0.5)]
    finally:
        stream.close()
        hub.submit(server.stop()).result()
    assert got == [1, 2, 3, 4, 5, 6, 7, 8]
    assert state["handshakes"] == 2  # the Unknown client was handshaken again
    assert state["connects"] >= 10
    # The usual path only for the first connect, the closed connection and the re-handshake.
    assert receives["n"] <= 4


def test_read_timeouts_of_many_answers_on_one_loop_each_keep_their_own() -> None:
    # One watchdog per loop: a short timeout watched after a long one fires long before the
    # long one's deadline, and the long one is not cut short by it.
    release = asyncio.Event()

    async def answer(request: bytes) -> bytes | None:
        if request.endswith(b"slow"):
            await release.wait()
            return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"
        await asyncio.sleep(30)
        return None

    async def test(transport: LongPollTransport, url: str, server: RawServer) -> Any:
        other = LongPollTransport()
        try:
            slow = asyncio.ensure_future(post(transport, url, body=b"slow", read=30))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await post(other, url, body=b"never", read=0.2)
            waited = time.monotonic() - started
            release.set()
            return waited, (await slow).json()
        finally:
            await other.aclose()

    waited, slow = run(answer, test)
    assert waited < 15 and slow == []  # not held until the 30 s deadline of the first


def test_whitespace_between_a_header_name_and_its_colon_is_a_protocol_error() -> None:
    # RFC 9112 section 5.1: no whitespace is allowed there (a response-splitting vector).
    async def test(transport: LongPollTransport, url: str, server: RawServer) -> None:
        with pytest.raises(httpx.RemoteProtocolError):
            await post(transport, url, read=2)

    run(fixed(b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n[]"), test)


def test_a_bayeux_answer_with_a_byte_order_mark_or_in_utf16_is_still_read() -> None:
    from omsbridge_salesforce.streaming.bayeux import BayeuxSession

    session = BayeuxSession("http://x/cometd", [], None)
    text = json.dumps([{"channel": "/meta/connect", "successful": True}])
    for content in (b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16")):
        assert session._replies("/meta/connect", 200, content, None)[0]["successful"] is True
