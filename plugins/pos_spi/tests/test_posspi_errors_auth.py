"""Error mapping into the core taxonomy, authentication, and secrets kept out of sight."""

from __future__ import annotations

import logging
import socket
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from posspi_support import make_backend, oauth_settings, sale

from omsbridge import Secret
from omsbridge.errors import (
    AuthFailed,
    Conflict,
    InvalidTransaction,
    NotFound,
    RateLimited,
    Rejected,
    TransientBackendError,
)
from omsbridge.model import OrderQuery
from omsbridge_posspi import PosSpiBackend
from omsbridge_posspi.errors import error_for_status, parse_retry_after
from omsbridge_posspi.server import DEFAULT_API_KEY, DEFAULT_CLIENT_SECRET, ServerHandle, SpiApp

QUERY = OrderQuery(customer_id="C-7")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(backend: PosSpiBackend, app: SpiApp, status: int) -> None:
    app.inject_fault("error", status=status)
    with pytest.raises(TransientBackendError) as caught:
        backend.search_orders(QUERY)
    assert caught.value.status == status
    assert caught.value.code == "SERVER_ERROR"
    assert caught.value.retryable is True
    assert caught.value.backend == "pos-spi"
    assert backend.search_orders(QUERY).hits == ()  # the fault was for one request only


def test_fault_counts_and_path_filters(backend: PosSpiBackend, app: SpiApp) -> None:
    app.inject_fault("error", count=2, method="POST", path_prefix="/orders")
    backend.search_orders(QUERY)  # a GET: not affected
    for _ in range(2):
        with pytest.raises(TransientBackendError):
            backend.post(sale("T-1"))
    assert backend.post(sale("T-1")).created is True


def test_rate_limit_carries_retry_after(backend: PosSpiBackend, app: SpiApp) -> None:
    app.inject_fault("rate_limit", retry_after=7)
    with pytest.raises(RateLimited) as caught:
        backend.search_orders(QUERY)
    assert caught.value.retry_after == 7
    assert (caught.value.status, caught.value.code) == (429, "RATE_LIMITED")


def test_timeout_is_transient(server: ServerHandle, app: SpiApp) -> None:
    slow = make_backend(server.url, timeout=0.2)
    app.inject_fault("timeout", delay=0.5)
    with pytest.raises(TransientBackendError) as caught:
        slow.search_orders(QUERY)
    assert caught.value.code == "TIMEOUT"
    slow.close()


def test_unreachable_server_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spi = make_backend(f"http://127.0.0.1:{port}", timeout=1)
    with pytest.raises(TransientBackendError) as caught:
        spi.search_orders(QUERY)
    assert caught.value.code == "CONNECTION_ERROR"


def test_wrong_api_key_is_auth_failed(server: ServerHandle) -> None:
    spi = make_backend(server.url, api_key=Secret("wrong-key", "test"))
    with pytest.raises(AuthFailed) as caught:
        spi.search_orders(QUERY)
    assert (caught.value.status, caught.value.code) == (401, "UNAUTHORIZED")


def test_api_key_401_is_not_retried(backend: PosSpiBackend, app: SpiApp) -> None:
    app.inject_fault("unauthorized")
    with pytest.raises(AuthFailed):
        backend.search_orders(QUERY)
    assert len(app.requests) == 1


def test_custom_api_key_header(server: ServerHandle, app: SpiApp) -> None:
    spi = make_backend(server.url, api_key=Secret(DEFAULT_API_KEY, "t"), header="X-Other")
    with pytest.raises(AuthFailed):
        spi.search_orders(QUERY)  # the reference server reads X-API-Key only


def test_oauth_token_is_fetched_once_and_shared_by_threads(
    server: ServerHandle, app: SpiApp
) -> None:
    spi = make_backend(server.url, **oauth_settings(url=server.url))
    errors: list[BaseException] = []

    def search() -> None:
        try:
            spi.search_orders(QUERY)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert app.tokens_issued == 1
    assert len(app.requests) == 10


def test_oauth_refreshes_once_on_401_and_replays(server: ServerHandle, app: SpiApp) -> None:
    spi = make_backend(server.url, **oauth_settings(url=server.url))
    spi.post(sale("T-1"))
    app.expire_tokens()
    assert spi.post(sale("T-2")).created is True
    assert app.tokens_issued == 2
    assert [m for m, _ in app.requests] == ["POST", "POST", "POST"]  # T-1, refused T-2, T-2


def test_oauth_gives_up_after_one_refresh(server: ServerHandle, app: SpiApp) -> None:
    spi = make_backend(server.url, **oauth_settings(url=server.url))
    app.inject_fault("unauthorized", count=2)
    with pytest.raises(AuthFailed):
        spi.search_orders(QUERY)
    assert app.tokens_issued == 2
    assert len(app.requests) == 2


def test_oauth_bad_client_secret(server: ServerHandle, app: SpiApp) -> None:
    spi = make_backend(server.url, **oauth_settings("not-the-secret", url=server.url))
    with pytest.raises(AuthFailed) as caught:
        spi.search_orders(QUERY)
    assert caught.value.code == "invalid_client"
    assert app.requests == []


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidTransaction),
        (401, AuthFailed),
        (403, AuthFailed),
        (404, NotFound),
        (409, Conflict),
        (422, Rejected),
        (429, RateLimited),
        (500, TransientBackendError),
        (503, TransientBackendError),
        (418, Rejected),
    ],
)
def test_status_mapping_table(status: int, cls: type[Exception]) -> None:
    body = {"code": "SOME_CODE", "message": "went wrong", "field": "lines[0].sku"}
    error = error_for_status(status, body, operation="OP")
    assert type(error) is cls
    assert (error.code, error.status, error.backend) == ("SOME_CODE", status, "pos-spi")
    if isinstance(error, InvalidTransaction):
        assert error.issues[0].path == "lines[0].sku"


def test_error_without_json_body() -> None:
    error = error_for_status(502, "<html>Bad gateway</html>", operation="OP")
    assert isinstance(error, TransientBackendError)
    assert error.code == "HTTP_502"
    assert "Bad gateway" in error.message


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("12") == 12
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (parse_retry_after(later) or 0) <= 30


def test_secrets_never_in_reprs_logs_or_errors(
    server: ServerHandle, app: SpiApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_backend = make_backend(server.url)
    oauth_backend = make_backend(server.url, **oauth_settings(url=server.url))
    bad_backend = make_backend(server.url, **oauth_settings("wrong-secret-123", url=server.url))
    seen: list[str] = []
    for spi in (key_backend, oauth_backend, bad_backend):
        seen += [repr(spi), repr(spi.config), str(spi.config), repr(spi._client)]
        try:
            spi.post(sale("T-1"))
            app.inject_fault("unauthorized", count=2)
            spi.search_orders(QUERY)
        except Exception as exc:
            seen += [str(exc), repr(exc), repr(exc.args)]
    seen.append(caplog.text)
    text = "\n".join(seen)
    assert "Secret(<test>)" in text  # the reprs were there to look at
    tokens = list(app._tokens)
    assert tokens
    for secret in (DEFAULT_API_KEY, DEFAULT_CLIENT_SECRET, "wrong-secret-123", *tokens):
        assert secret not in text
