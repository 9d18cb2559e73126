"""DirectClient sends what httpx.Client.request would send (same bytes), straight to the transport."""

from __future__ import annotations

from collections.abc import Generator

import httpx
import pytest

from omsbridge.http_direct import DirectClient


def _wire(request: httpx.Request) -> tuple[str, str, list[tuple[bytes, bytes]], bytes, object]:
    return (
        request.method,
        str(request.url),
        list(request.headers.raw),
        request.read(),
        request.extensions.get("timeout"),
    )


class _Recorder:
    """A transport that records every request and answers from a script."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.seen: list[httpx.Request] = []
        self.auth: list[str | None] = []  # as sent (the auth flow reuses the request object)
        self.answers = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        self.auth.append(request.headers.get("Authorization"))
        if self.answers:
            return self.answers.pop(0)
        return httpx.Response(200, json={"ok": True}, headers={"Set-Cookie": "sid=abc; Path=/"})


def _pair(**kwargs: object) -> tuple[DirectClient, _Recorder, DirectClient, _Recorder]:
    mine, theirs = _Recorder(), _Recorder()
    direct = DirectClient(transport=httpx.MockTransport(mine), **kwargs)  # type: ignore[arg-type]
    plain = DirectClient(transport=httpx.MockTransport(theirs), **kwargs)  # type: ignore[arg-type]
    return direct, mine, plain, theirs


@pytest.mark.parametrize(
    ("method", "url", "content", "headers", "timeout"),
    [
        ("POST", "orders", b'{"a":1}', {"Idempotency-Key": "T-1", "X-API-Key": "k"}, 7.5),
        ("GET", "/orders/O-1", None, None, None),
        ("POST", "https://other.example/abs", None, {"Content-Type": "text/plain"}, 2.0),
        ("PATCH", "orders/a%20b", b"x", None, None),
    ],
)
def test_same_request_as_client_request(
    method: str,
    url: str,
    content: bytes | None,
    headers: dict[str, str] | None,
    timeout: float | None,
) -> None:
    direct, mine, plain, theirs = _pair(
        base_url="https://spi.example/v1/",
        headers={"Accept": "application/json", "User-Agent": "omsbridge-test"},
        timeout=httpx.Timeout(10.0, connect=3.0),
    )
    for _ in range(2):  # the second time: URL from the cache, and the cookie the first set
        direct.request(method, url, content=content, headers=headers, timeout=timeout)
        kwargs = {} if timeout is None else {"timeout": timeout}
        plain.client.request(method, url, content=content, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert [_wire(r) for r in mine.seen] == [_wire(r) for r in theirs.seen]
    assert b"cookie" in [k.lower() for k, _ in mine.seen[1].headers.raw]


class _Bearer(httpx.Auth):
    """A token auth that renews once on 401, as the Salesforce client's does."""

    requires_response_body = True

    def __init__(self) -> None:
        self.tokens = iter(["one", "two"])

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {next(self.tokens)}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {next(self.tokens)}"
            yield request


def test_auth_flow_renews_and_replays_once() -> None:
    recorder = _Recorder(httpx.Response(401, json=[{"errorCode": "INVALID_SESSION_ID"}]))
    client = DirectClient(auth=_Bearer(), transport=httpx.MockTransport(recorder), timeout=5.0)
    response = client.request("POST", "https://x.example/services/data", content=b"{}")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert recorder.auth == ["Bearer one", "Bearer two"]
    assert response.request is recorder.seen[-1]


def test_params_and_forms_go_through_the_client() -> None:
    recorder = _Recorder()
    client = DirectClient(
        base_url="https://x.example/", transport=httpx.MockTransport(recorder), timeout=5.0
    )
    client.request("GET", "search", params={"q": "a b"})
    client.request("POST", "token", data={"grant_type": "client_credentials"})
    assert str(recorder.seen[0].url) == "https://x.example/search?q=a+b"
    assert recorder.seen[1].read() == b"grant_type=client_credentials"


def test_a_proxy_from_the_environment_keeps_the_client_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    client = DirectClient(timeout=5.0)
    try:
        assert client._transport is None  # every request through Client.request (its proxy)
    finally:
        client.close()
    monkeypatch.delenv("HTTPS_PROXY")
    for name in ("HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = DirectClient(timeout=5.0)
    try:
        assert client._transport is not None
    finally:
        client.close()
