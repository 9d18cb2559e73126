"""Test helpers for the outgoing webhooks: a receiver on 127.0.0.1 that verifies every request
with the reference library (``standardwebhooks``) and answers as a script says, and the stores
(SQLite, and PostgreSQL through core's test server)."""

from __future__ import annotations

import http.server
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

CORE_TESTS = Path(__file__).resolve().parents[3] / "core" / "tests"

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""The secret of the specification's reference test vectors."""


class Received:
    """One request as the receiver saw it."""

    def __init__(self, headers: dict[str, str], body: bytes, verified: bool) -> None:
        self.headers = headers
        self.body = body
        self.verified = verified
        self.message_id = headers.get("webhook-id", "")


class Receiver:
    """A webhook receiver on a free loopback port.

    ``script`` is a list of answers, one per request, then 200 for every other one:
    an int status, ``("retry-after", status, seconds)``, ``"timeout"`` (answers after
    ``slow`` seconds), ``"drop"`` (reads the request, records it, closes without answering: a
    lost answer) or ``"hold"`` (records it, then waits for :attr:`release` before answering 200).
    """

    def __init__(self, secret: str = SECRET) -> None:
        self.verifier = Webhook(secret)
        self.script: list[object] = []
        self.received: list[Received] = []
        self.slow = 2.0
        self.arrived = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    receiver.verifier.verify(body, headers)
                    verified = True
                except Exception:
                    verified = False
                receiver.received.append(Received(headers, body, verified))
                receiver.arrived.set()
                answer = receiver.script.pop(0) if receiver.script else 200
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if answer == "timeout":
                    time.sleep(receiver.slow)
                    answer = 200
                if answer == "hold":
                    receiver.release.wait(30)
                    answer = 200
                extra: dict[str, str] = {}
                if isinstance(answer, tuple):
                    _, answer, seconds = answer
                    extra["Retry-After"] = str(seconds)
                assert isinstance(answer, int)
                try:
                    self.send_response(answer)
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up (timeout) or was killed

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def ids(self) -> list[str]:
        """The webhook-id of every request, in order."""
        return [r.message_id for r in self.received]

    def stop(self) -> None:
        """Stop serving."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A verifying webhook receiver on 127.0.0.1."""
    found = Receiver()
    yield found
    found.stop()


@pytest.fixture(scope="session")
def pg_server():
    """Core's throwaway PostgreSQL server (skipped without PostgreSQL, a failure in CI)."""
    import os

    sys.path.insert(0, str(CORE_TESTS))
    from pgserver import PgServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL is not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PgServer(bin_dir)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    """A ``[store]`` table's content for SQLite or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f'path = "{tmp_path / "store.db"}"'
    return f'url = "{request.getfixturevalue("pg_server").new_database()}"'
