"""The Bayeux client against a server we did not write: faye (Node.js), on 127.0.0.1.

faye is installed with npm into a cache directory on first use (``OMSBRIDGE_TEST_CACHE``, by
default ``~/.cache/omsbridge-tests``). The test is skipped only when node or npm is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from omsbridge_salesforce.streaming import (
    AsyncBayeuxClient,
    BayeuxClient,
    BayeuxError,
    EventStream,
)

_SCRIPT = """
const http = require('http');
const faye = require(process.env.FAYE_DIR + '/node_modules/faye');
const bayeux = new faye.NodeAdapter({mount: '/bayeux', timeout: 1});
const server = http.createServer();
bayeux.attach(server);
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log('PORT ' + server.address().port);
});
"""


def _faye_dir() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the faye interoperability test")
    cache = Path(os.environ.get("OMSBRIDGE_TEST_CACHE", Path.home() / ".cache" / "omsbridge-tests"))
    target = cache / "faye"
    if not (target / "node_modules" / "faye" / "package.json").exists():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "faye@1",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(target),
            ],
            check=True,
            timeout=300,
            capture_output=True,
        )
    return target


class Faye:
    """A faye server in a node process; can be restarted on the same port."""

    def __init__(self, faye_dir: Path, script: Path) -> None:
        self.faye_dir = faye_dir
        self.script = script
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start node and wait for the port it listens on."""
        self.process = subprocess.Popen(
            ["node", str(self.script), str(self.port)],
            env={**os.environ, "FAYE_DIR": str(self.faye_dir)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])

    @property
    def url(self) -> str:
        """The Bayeux endpoint."""
        return f"http://127.0.0.1:{self.port}/bayeux"

    def stop(self) -> None:
        """Stop node (every client it knew is forgotten)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def faye(tmp_path: Path) -> Iterator[Faye]:
    script = tmp_path / "faye_server.js"
    script.write_text(_SCRIPT)
    server = Faye(_faye_dir(), script)
    server.start()
    yield server
    server.stop()


def _take(stream: EventStream, count: int, timeout: float = 10.0) -> list[dict]:
    got: list[dict] = []
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while len(got) < count and not deadline.is_set():
            got.extend(stream.take(0.5))
    finally:
        timer.cancel()
    return got


def test_subscribe_receive_publish_and_disconnect(faye: Faye) -> None:
    listener = EventStream(AsyncBayeuxClient(faye.url), "/orders/store-001")
    listener.open()
    publisher = BayeuxClient(faye.url)
    try:
        assert listener.client.client_id and listener.client.advice.get("reconnect") == "retry"
        publisher.publish("/orders/store-001", {"fo": "FO-1"})
        publisher.publish("/orders/store-002", {"fo": "elsewhere"})
        publisher.publish("/orders/store-001", {"fo": "FO-2"})
        messages = _take(listener, 2)
        assert [m["data"]["fo"] for m in messages] == ["FO-1", "FO-2"]
        assert listener.take(1.5) == []  # faye's 1 s long poll ends empty; still subscribed
    finally:
        client_id = listener.client.client_id
        listener.close()
        publisher.close()
    # A clean disconnect: faye no longer knows the client.
    answer = httpx.post(
        faye.url,
        json=[
            {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
        ],
    )
    (reply,) = answer.json()
    assert reply["successful"] is False and "Unknown client" in reply["error"]
    assert BayeuxError(reply).reconnect == "handshake"


def test_server_restart_re_handshakes_and_resubscribes(faye: Faye) -> None:
    listener = EventStream(AsyncBayeuxClient(faye.url), "/orders/store-001")
    listener.open()
    try:
        faye.stop()
        faye.start()  # same port, no memory of the client: "401::Unknown client", handshake
        publisher = BayeuxClient(faye.url)
        try:
            deadline = 50
            got: list[dict] = []
            while not got and deadline:
                publisher.publish("/orders/store-001", {"fo": "after restart"})
                got = listener.take(0.3)
                deadline -= 1
            assert got and got[0]["data"] == {"fo": "after restart"}
        finally:
            publisher.close()
        assert listener.client.handshakes >= 2
    finally:
        listener.close()
